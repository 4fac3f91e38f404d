"""The anonymous pages at /s/<token>/ (any text without a slash, so that a mistyped link gets the
share 404 page too), and the owner's actions under the video's pages."""

from django.urls import path

from sharing import views

app_name = "sharing"
urlpatterns = [
    path("s/<str:token>/", views.shared_page, name="page"),
    path("s/<str:token>/video.mp4", views.shared_file, name="file"),
    path("videos/<int:pk>/share-links/", views.create, name="create"),
    path("videos/<int:pk>/share-links/<int:link_id>/revoke/", views.revoke, name="revoke"),
]
