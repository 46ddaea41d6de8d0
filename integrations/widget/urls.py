from django.urls import path

from . import views

app_name = "widget"
urlpatterns = [
    path("v1/<str:public_key>/session", views.session, name="session"),
    path("v1/<str:public_key>/attachments", views.upload, name="upload"),
]
