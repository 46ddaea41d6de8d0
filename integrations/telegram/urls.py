from django.urls import path

from . import views

app_name = "telegram"
urlpatterns = [path("<str:public_key>/", views.webhook, name="webhook")]
