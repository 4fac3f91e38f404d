"""Runway's API paths, at the site's root under /v1/ (runway_project/urls.py)."""

from django.urls import path, re_path

from api import v1
from videos import catalog

app_name = "api_v1"
urlpatterns = [
    *(path(endpoint, v1.create, {"endpoint": endpoint}, name=endpoint) for endpoint in catalog.ENDPOINTS),
    path("uploads", v1.uploads, name="uploads"),
    path("uploads/<uuid:upload_id>/file", v1.upload_file, name="upload_file"),
    path("tasks/<str:task_id>", v1.task, name="task"),
    path("organization", v1.organization, name="organization"),
    path("outputs/<uuid:public_id>.mp4", v1.output, name="output"),
    path("openapi.json", v1.openapi_document, name="openapi"),
    re_path(r"^(?P<rest>.*)$", v1.not_found),
]
