from django.urls import path

from api import views

app_name = "api"
urlpatterns = [
    path("", views.keys_page, name="keys"),
    path("<int:pk>/revoke/", views.revoke, name="revoke"),
]
