"""Runway's API at our site's root (/v1/...), for scripts and Runway's own SDKs: each endpoint
checks the key, the version header and the key's rate, reads the request, and hands the work to
api/tasks_service.py; answers are in Runway's shapes (api/answers.py).

No endpoint waits on Runway: a create stores the job and the worker sends it, as for the form.
"""

import json
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from api import answers, links, openapi, wire
from api.media import upload_uri
from api.models import ApiKey
from api.services import api_key_authenticate
from api.tasks_service import (
    InvalidRequest,
    UploadRefused,
    api_task,
    api_task_create,
    api_task_delete,
    api_upload_receive,
    api_upload_start,
    upload_token,
)
from runway_project import ratelimit
from videos import serving
from videos.models import Status, VideoGeneration
from videos.services import creation

View = Callable[..., HttpResponseBase]


def runway_endpoint(*methods: str) -> Callable[[View], View]:
    """An endpoint of Runway's API: the methods it answers, then Bearer key, X-Runway-Version and
    the key's rate checked as Runway checks them (401, 400, 429); the view gets the key."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                return answers.not_allowed(request.method, methods)
            scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                return answers.error(401, "Missing API key: send Authorization: Bearer <key>.")
            api_key = api_key_authenticate(secret.strip())
            if api_key is None:
                return answers.error(401, "Invalid API key.")
            if request.headers.get("X-Runway-Version") != settings.RUNWAY_API_VERSION:
                return answers.error(400, f"The X-Runway-Version header must be {settings.RUNWAY_API_VERSION}.")
            wait = _rate_wait(api_key)
            if wait is not None:
                limit = settings.API_RATE_LIMIT_PER_MINUTE
                return answers.error(429, f"Too many requests: this key may make {limit} a minute.", retry_after=wait)
            return view(request, api_key, *args, **kwargs)

        return wrapped

    return decorate


def _rate_wait(api_key: ApiKey) -> int | None:
    """Seconds until the key may ask again when it is over API_RATE_LIMIT_PER_MINUTE this minute;
    None while it is under. Counted in Django's cache, one counter per key and minute."""
    return ratelimit.minute_wait(
        f"api-rate:{api_key.prefix}", limit=settings.API_RATE_LIMIT_PER_MINUTE, now=time.time()
    )


def _json_body(request: HttpRequest) -> tuple[object, bytes]:
    """The request's JSON body, and its bytes; InvalidRequest when it is not JSON, or holds text no
    database can store."""
    raw = request.read()  # not request.body: a data URI may be larger than DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest([((), "Invalid JSON in the request body.")]) from None
    issues = wire.text_issues(body)
    if issues:
        raise InvalidRequest(issues)
    return body, raw


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _retry_count(request: HttpRequest) -> int:
    try:
        return int(request.headers.get("X-Stainless-Retry-Count", "0"))
    except ValueError:
        return 0


@runway_endpoint("POST")
def create(request: HttpRequest, api_key: ApiKey, endpoint: str) -> HttpResponse:
    """POST /v1/text_to_video, image_to_video, video_to_video, video_upscale, character_performance."""
    try:
        body, raw = _json_body(request)
        generation = api_task_create(
            api_key=api_key,
            endpoint=endpoint,
            body=body,
            raw_body=raw,
            idempotency_key=request.headers.get("Idempotency-Key", "").strip(),
            retry_count=_retry_count(request),
            base_url=_base_url(request),
        )
    except InvalidRequest as exc:
        return answers.error(400, str(exc), issues=exc.issues)
    except creation.LimitReached as exc:
        return answers.error(429, " ".join(exc.messages), retry_after=exc.retry_after)
    job = VideoGeneration.objects.with_cost().get(pk=generation.pk)  # with its reserved cost
    return JsonResponse(answers.created(job))


@runway_endpoint("GET", "DELETE")
def task(request: HttpRequest, api_key: ApiKey, task_id: str) -> HttpResponse:
    """GET /v1/tasks/{id}: the task, with fresh output links; DELETE: cancel it if running, then delete it."""
    if request.method == "DELETE":
        if not api_task_delete(api_key=api_key, task_id=task_id):
            return answers.error(404, "Task not found.")
        return HttpResponse(status=204)
    generation = api_task(api_key=api_key, task_id=task_id)
    if generation is None:
        return answers.error(404, "Task not found.")
    return JsonResponse(answers.task(generation, base_url=_base_url(request)))


@runway_endpoint("GET")
def organization(request: HttpRequest, api_key: ApiKey) -> HttpResponse:
    """GET /v1/organization: the caller's own budget, spend, limits and today's usage."""
    return JsonResponse(answers.organization(user_id=api_key.user_id))


@runway_endpoint("POST")
def uploads(request: HttpRequest, api_key: ApiKey) -> HttpResponse:
    """POST /v1/uploads: where to send one file, and the runway:// URI it is then used by."""
    try:
        body, _ = _json_body(request)
        fields = body if isinstance(body, dict) else {}
        upload = api_upload_start(api_key=api_key, filename=fields.get("filename"), kind=fields.get("type"))
    except InvalidRequest as exc:
        return answers.error(400, str(exc), issues=exc.issues)
    upload_url = request.build_absolute_uri(reverse("api_v1:upload_file", args=[upload.id]))
    return JsonResponse(
        {"uploadUrl": upload_url, "fields": {"token": upload_token(upload)}, "runwayUri": upload_uri(upload)}
    )


@csrf_exempt
def upload_file(request: HttpRequest, upload_id: Any) -> HttpResponse:
    """The upload URL: a multipart POST of the handed-out fields and the file (no key: the token is
    the credential), answered 204 as an S3 presigned POST is."""
    if request.method != "POST":
        return answers.not_allowed(request.method, ("POST",))
    try:
        api_upload_receive(upload_id=upload_id, token=request.POST.get("token", ""), file=request.FILES.get("file"))
    except UploadRefused as exc:
        return answers.error(exc.status, str(exc))
    return HttpResponse(status=204)


def output(request: HttpRequest, public_id: Any) -> HttpResponseBase:
    """A task's output link: our stored copy, for anyone holding a link that is signed and unexpired."""
    if request.method not in ("GET", "HEAD"):
        return answers.not_allowed(request.method, ("GET", "HEAD"))
    if not links.link_valid(public_id, request.GET.get("expires", ""), request.GET.get("signature", "")):
        return answers.error(403, "This link is invalid or has expired: GET the task again for a new one.")
    generation = VideoGeneration.objects.visible().filter(public_id=public_id, status=Status.SUCCEEDED).first()
    if generation is None:
        return answers.error(404, "Task not found.")
    name = serving.download_name(generation.prompt, generation.pk, "mp4")
    return serving.file_serve(request, file=generation.video_file, content_type="video/mp4", filename=name)


def openapi_document(request: HttpRequest) -> HttpResponse:
    """GET /v1/openapi.json: this API's OpenAPI 3.1 document (no key needed)."""
    return JsonResponse(openapi.document())


def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under /v1/: Runway's 404."""
    return answers.error(404, "Not found.")
