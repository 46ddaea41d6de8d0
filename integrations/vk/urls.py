from django.urls import path

from . import views

app_name = "vk"
urlpatterns = [path("<str:public_key>/", views.callback, name="callback")]
