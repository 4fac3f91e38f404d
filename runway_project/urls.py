from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from django.views.generic import RedirectView

from videos.healthz import healthz

urlpatterns = [
    path("", login_required(RedirectView.as_view(pattern_name="videos:dashboard")), name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("videos/", include("videos.urls")),
    # Monitors and load balancers probe it over plain HTTP: settings.SECURE_REDIRECT_EXEMPT.
    path("healthz", healthz, name="healthz"),
]

# A database outage met outside a view answers the 503 page too (runway_project/errors.py).
handler500 = "runway_project.errors.server_error"
