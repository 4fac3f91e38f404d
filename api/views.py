"""The owner's "API keys" page: their keys by prefix, a new one shown once, revoking one, and the
last deliveries to their webhooks with each attempt's answer."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from api import services
from api.forms import ApiKeyForm
from api.models import ApiKey, WebhookDelivery
from videos.views import AuthenticatedRequest

DELIVERIES_SHOWN = 20


@login_required
@never_cache  # a new key is on the page once: no cache may keep it
@require_http_methods(["GET", "POST"])
def keys_page(request: AuthenticatedRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    made = None
    if request.method == "POST" and form.is_valid():
        try:
            made = services.api_key_create(
                user=request.user,
                name=form.cleaned_data["name"],
                webhook_url=form.cleaned_data["webhook_url"],
            )
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                for problem in problems:
                    form.add_error(field, problem)
        else:
            form = ApiKeyForm()
    keys = ApiKey.objects.filter(user=request.user).order_by("-created_at")
    deliveries = (
        WebhookDelivery.objects.filter(api_key__user=request.user)
        .select_related("api_key")
        .prefetch_related("attempt_log")[:DELIVERIES_SHOWN]
    )
    status = 400 if form.errors else 200
    context = {"form": form, "keys": keys, "made": made, "deliveries": deliveries}
    return render(request, "api/keys.html", context, status=status)


@login_required
@require_POST
def revoke(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk, user=request.user)  # another user's key: as if none
    key.revoke()
    messages.success(request, f"Key {key.prefix}… revoked: it no longer works.")
    return redirect("api:keys")
