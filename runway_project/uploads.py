"""A cap on the size of a request's body, enforced before any of it is read: an upload larger
than the largest clip the form takes is refused with a clear page (HTTP 413) while it is still on
the wire, not after the server has stored it. Django's own limits cover the rest: the fields
without files (DATA_UPLOAD_MAX_MEMORY_SIZE) and the file fields' count."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string


def too_large_message() -> str:
    limit = settings.REQUEST_MAX_BYTES / 1e6
    return f"The upload is larger than {limit:.0f} MB, the most this site takes in one request. Nothing was saved."


class RequestSizeLimitMiddleware:
    """Answer 413 to a request whose Content-Length is over REQUEST_MAX_BYTES, without reading its body."""

    def __init__(self, get_response):  # type: ignore[no-untyped-def]
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.REQUEST_MAX_BYTES:
            message = too_large_message()
            if "application/json" in request.headers.get("Accept", ""):
                return JsonResponse({"errors": {"image": [{"message": message, "code": "too_large"}]}}, status=413)
            return HttpResponse(render_to_string("413.html", {"message": message}), status=413)
        response: HttpResponse = self.get_response(request)
        return response
