from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import Http404, HttpRequest, HttpResponseBase, HttpResponsePermanentRedirect
from django.urls import include, path
from django.views.decorators.http import require_safe
from django.views.generic import RedirectView

from videos.healthz import healthz
from videos.metrics import metrics_view


def if_email_configured(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """A password-reset page answers 404 unless mail can be sent (settings.EMAIL_URL)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not settings.PASSWORD_RESET_ENABLED:
            raise Http404("Password reset needs email, which is not configured.")
        return view(request, *args, **kwargs)

    return wrapped


class LoginView(auth_views.LoginView):
    """Django's, with a link to the password reset when there is one."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "password_reset_enabled": settings.PASSWORD_RESET_ENABLED}


# django.contrib.auth.urls, with the password-reset pages behind EMAIL_URL.
account_urls = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password_reset/", if_email_configured(auth_views.PasswordResetView.as_view()), name="password_reset"),
    path(
        "password_reset/done/",
        if_email_configured(auth_views.PasswordResetDoneView.as_view()),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        if_email_configured(auth_views.PasswordResetConfirmView.as_view()),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        if_email_configured(auth_views.PasswordResetCompleteView.as_view()),
        name="password_reset_complete",
    ),
]


@require_safe
def favicon(request: HttpRequest) -> HttpResponseBase:
    """/favicon.ico, which browsers ask for whatever a page links to: the static file's (hashed) URL."""
    return HttpResponsePermanentRedirect(staticfiles_storage.url("favicon.ico"))


urlpatterns = [
    path("", login_required(RedirectView.as_view(pattern_name="videos:dashboard")), name="home"),
    path("favicon.ico", favicon),
    path("accounts/", include(account_urls)),
    path("admin/", admin.site.urls),
    path("videos/", include("videos.urls")),
    # Share links: the anonymous /s/<token>/ pages, and their owner's actions under /videos/<pk>/.
    path("", include("sharing.urls")),
    path("keys/", include("api.urls")),
    # Runway's API, served to scripts with our keys (api/v1.py).
    path("v1/", include("api.v1_urls")),
    # Monitors and load balancers probe it over plain HTTP: settings.SECURE_REDIRECT_EXEMPT.
    path("healthz", healthz, name="healthz"),
    # Prometheus scrapes it with METRICS_TOKEN, over plain HTTP too (settings: Monitoring).
    path("metrics", metrics_view, name="metrics"),
]

# A database outage met outside a view answers the 503 page too (runway_project/errors.py).
handler500 = "runway_project.errors.server_error"
