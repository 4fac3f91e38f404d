"""The only code that speaks HTTP to Runway's developer API.

Every failure becomes a `RunwayError` that says whether trying again could help, and whether a
create request may have reached Runway (and so may already be paid for).
"""

import email.utils
import hashlib
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from runway_project import metrics
from videos import catalog

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
MESSAGE_MAX = 500
RETRY_AFTER_MAX = 3600.0  # a Retry-After beyond an hour is not taken at its word


class RunwayError(Exception):
    """A Runway call that did not give the answer we needed.

    `permanent` failures will fail again if repeated (bad input, bad key); temporary ones may
    pass later. `may_have_created` is set when a create request might have reached Runway
    although we have no task id, so repeating it could pay for a second video.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        status: int | None = None,
        retry_after: float | None = None,
        may_have_created: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after
        self.may_have_created = may_have_created

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class CreatedTask:
    """Runway's answer to a create: its task id, and the most credits the task may charge
    (`estimatedCost.credits`; None when the answer had no usable figure)."""

    id: str
    estimated_credits: int | None = None


@dataclass(frozen=True)
class TaskState:
    """One answer of GET /v1/tasks/{id}. `estimated_credits` comes with an unfinished task, `cost_credits`
    (what Runway charged) with a finished one; each is None when the answer had no usable figure."""

    id: str
    status: str
    progress: float | None = None
    output: list[str] = field(default_factory=list)
    failure: str = ""
    failure_code: str = ""
    estimated_credits: int | None = None
    cost_credits: int | None = None


@dataclass(frozen=True)
class UsedCredits:
    """One line of Runway's usage: what the organization spent on `model` on `day` (UTC), net of refunds."""

    day: date
    model: str
    credits: int


def build_payload(
    *,
    model: str,
    prompt_text: str,
    params: dict[str, Any],
    prompt_image: str | None = None,
    media: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The camelCase body of a create request: the model, the prompt and image where given, other
    media by their field's name (a clip's `videoUri` or `promptVideo`), and the job's settings
    (`params`, already named as Runway names them)."""
    payload: dict[str, Any] = {"model": model}
    if prompt_text:
        payload["promptText"] = prompt_text
    if prompt_image:
        payload["promptImage"] = prompt_image
    payload.update(media or {})
    payload.update(params)
    return payload


class RunwayClient:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        version: str,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        if not api_key:
            raise RunwayError("Runway API key is not configured", permanent=True)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {api_key}",
                "X-Runway-Version": version,
                "Accept": "application/json",
            }
        )
        # The environment's proxy and CA bundle settings, read once here rather than on every
        # request (requests scans os.environ and looks for ~/.netrc each time, which cost more than
        # the rest of a poll). A .netrc entry can then never replace the Authorization header.
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            self.session.verify = ca_bundle

    def __repr__(self) -> str:
        return f"<RunwayClient {self.base_url}>"

    def create_video(self, *, endpoint: str, payload: dict[str, Any]) -> CreatedTask:
        """Start a generation; return Runway's task id and estimate. Never retried here: it costs money."""
        # On a new connection: one kept open from an earlier call may turn out to have been closed
        # by the server only as this request goes out, and then nobody knows whether it arrived.
        self.session.close()
        route = f"/v1/{endpoint}" if endpoint in catalog.ENDPOINTS else "/v1/{endpoint}"
        body = self._request("POST", f"/v1/{endpoint}", json=payload, route=route)
        task_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise RunwayError(
                "Runway accepted the request but its answer had no task id",
                permanent=False,
                may_have_created=True,
            )
        return CreatedTask(id=task_id, estimated_credits=credits_in(body, "estimatedCost", task_id=task_id))

    def upload_ephemeral(self, *, filename: str, data: bytes, content_type: str) -> str:
        """Put a file in Runway's ephemeral storage (POST /v1/uploads, then the file to the URL it
        names); return the runway:// URI that stands for it in a create for 24 hours.

        Nothing is billed for an upload, so a failed one may be tried again; every error it raises
        says no task was created.
        """
        try:
            body = self._request("POST", "/v1/uploads", json={"filename": filename, "type": "ephemeral"})
        except RunwayError as exc:
            raise RunwayError(
                exc.message, permanent=exc.permanent, status=exc.status, retry_after=exc.retry_after
            ) from None
        upload_url, fields, uri = _upload_slot(body)
        try:
            # Not the session: the storage host (S3's, at Runway) gets no API key, and no redirect is followed.
            response = requests.post(
                upload_url,
                data=fields,
                files={"file": (filename, data, content_type)},
                timeout=UPLOAD_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise RunwayError(f"Could not upload the input to Runway ({_describe(exc)})", permanent=False) from None
        if not 200 <= response.status_code < 300:
            raise RunwayError(
                f"Runway's storage refused the upload (HTTP {response.status_code})",
                permanent=False,
                status=response.status_code,
            )
        logger.info("Runway upload %s: %d bytes stored", uri, len(data))
        return uri

    def get_task(self, task_id: str) -> TaskState:
        return _task_state(self._request("GET", f"/v1/tasks/{task_id}", route=TASK_ROUTE), task_id)

    def delete_task(self, task_id: str) -> None:
        """Cancel a running task or delete a finished one. A task already gone counts as done."""
        try:
            self._request("DELETE", f"/v1/tasks/{task_id}", route=TASK_ROUTE)
        except RunwayError as exc:
            if exc.status != 404:
                raise

    def get_usage(self, *, start: date, before: date) -> list[UsedCredits]:
        """Credits the organization spent per day (UTC) and model, from `start` to the day before
        `before` (at most 90 days): POST /v1/organization/usage, with Runway's net figures (a day's
        refunds taken off)."""
        body = self._request(
            "POST", "/v1/organization/usage", json={"startDate": start.isoformat(), "beforeDate": before.isoformat()}
        )
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise RunwayError("Runway's answer about usage had no results", permanent=False)
        return [used for result in results for used in _used_credits(result)]

    def get_organization(self) -> dict[str, Any]:
        body = self._request("GET", "/v1/organization")
        if not isinstance(body, dict):
            raise RunwayError("Runway's answer about the organization was not an object", permanent=False)
        return body

    def _request(self, method: str, path: str, *, route: str = "", **kwargs: Any) -> Any:
        """`route` names the request in the metrics (`path` less any id): `path` when it has none."""
        started = time.monotonic()
        try:
            response = self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            _observe(route or path, method, _failure_outcome(exc), started)
            sent = _may_have_been_sent(exc)
            logger.warning("Runway %s %s failed: %s", method, path, type(exc).__name__)
            raise RunwayError(
                f"Could not reach Runway ({_describe(exc)})",
                permanent=False,
                may_have_created=sent and method == "POST",
            ) from None
        _observe(route or path, method, metrics.outcome_of(response.status_code), started)
        # Polls (a GET every interval for every job) only at DEBUG; what costs or frees money at INFO.
        logger.log(
            logging.DEBUG if method == "GET" else logging.INFO,
            "Runway %s %s -> %s in %.0f ms",
            method,
            path,
            response.status_code,
            1000 * (time.monotonic() - started),
        )
        if response.status_code >= 400:
            raise _error_from(response, may_have_created=method == "POST")
        if response.status_code == 204 or not response.content:
            if method == "DELETE":
                return None
            raise RunwayError(
                f"Runway answered {response.status_code} with an empty body",
                permanent=False,
                may_have_created=method == "POST",
            )
        try:
            return response.json()
        except ValueError:
            raise RunwayError(
                f"Runway answered {response.status_code} with something that is not JSON",
                permanent=False,
                may_have_created=method == "POST",
            ) from None


TASK_ROUTE = "/v1/tasks/{id}"


def _observe(route: str, method: str, outcome: str, started: float) -> None:
    metrics.runway_request_observe(endpoint=route, method=method, outcome=outcome, seconds=time.monotonic() - started)


def _failure_outcome(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection_error"
    return "error"


UPLOAD_TIMEOUT = (5.0, 120.0)  # (connect, read) seconds: the storage answers once the whole file is in


def _upload_slot(body: Any) -> tuple[str, dict[str, str], str]:
    """Where POST /v1/uploads says to send the file, with which form fields, and the URI it will have."""
    url = body.get("uploadUrl") if isinstance(body, dict) else None
    fields = body.get("fields") if isinstance(body, dict) else None
    uri = body.get("runwayUri") if isinstance(body, dict) else None
    fields_ok = isinstance(fields, dict) and all(isinstance(v, str) for v in fields.values())
    if not (isinstance(url, str) and url.startswith(("https://", "http://")) and fields_ok and isinstance(uri, str)):
        raise RunwayError("Runway's answer to an upload had no usable upload URL", permanent=False)
    assert isinstance(fields, dict)
    return url, fields, uri


def _used_credits(result: Any) -> list[UsedCredits]:
    """One day of Runway's usage answer; a line that is not a model and a whole number is left out (logged)."""
    try:
        day = date.fromisoformat(result["date"])
        lines = list(result["usedCredits"])
    except (KeyError, TypeError, ValueError):
        logger.warning("Runway's usage answer had a malformed day: %s", _clip(repr(result)))
        return []
    used = []
    for line in lines:
        model = line.get("model") if isinstance(line, dict) else None
        amount = line.get("amount") if isinstance(line, dict) else None
        if isinstance(model, str) and isinstance(amount, int) and not isinstance(amount, bool):
            used.append(UsedCredits(day, model, amount))
        else:
            logger.warning("Runway's usage answer for %s had a malformed line: %s", day, _clip(repr(line)))
    return used


def _task_state(body: Any, task_id: str) -> TaskState:
    """Runway's answer about a task, with anything missing or of the wrong type left out."""
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, str) or not status:
        raise RunwayError("Runway's answer about the task had no status", permanent=False)
    progress = body.get("progress")
    final = status in catalog.FINAL_TASK_STATES
    return TaskState(
        id=str(body.get("id") or task_id),
        status=status,
        progress=float(progress) if isinstance(progress, int | float) else None,
        output=_urls(body.get("output")),
        failure=str(body.get("failure") or ""),
        failure_code=str(body.get("failureCode") or ""),
        estimated_credits=None if final else credits_in(body, "estimatedCost", task_id=task_id),
        cost_credits=credits_in(body, "cost", task_id=task_id) if final else None,
    )


def credits_in(body: dict[str, Any], key: str, *, task_id: str) -> int | None:
    """`body[key]["credits"]` as a whole number of credits, 0 or more (an estimate rounded up); None
    (and a warning for staff) when it is missing or malformed, so that the caller keeps the estimate it had."""
    value = body.get(key)
    credits = value.get("credits") if isinstance(value, dict) else None
    # An estimate may be fractional (runwayml 5.24): rounded up, so what is held back is never less.
    # A cost is a whole number; a whole float is read as one.
    if isinstance(credits, float) and _whole_or_estimate(credits, estimate=key == "estimatedCost"):
        credits = math.ceil(credits)
    if isinstance(credits, int) and not isinstance(credits, bool) and credits >= 0:
        return credits
    logger.warning(
        "Runway task %s: %s.credits missing or malformed (%s); keeping the estimate", task_id, key, _clip(repr(value))
    )
    return None


def _whole_or_estimate(credits: float, *, estimate: bool) -> bool:
    """Whether a float of credits is read as credits: a whole one, or any estimate, not below 0."""
    return math.isfinite(credits) and credits >= 0 and (credits.is_integer() or estimate)


def _urls(output: Any) -> list[str]:
    return [url for url in output if isinstance(url, str)] if isinstance(output, list) else []


DOWNLOAD_SECONDS = 600.0  # 200 MB at a slow 3 Mbit/s, with room to spare


def download_output(
    url: str,
    destination: IO[bytes],
    *,
    max_bytes: int,
    timeout: tuple[float, float] = (5.0, 60.0),
    total_seconds: float = DOWNLOAD_SECONDS,
) -> int:
    """Stream a finished task's MP4 from its signed URL into `destination`; return its size.

    Not the client's session: the output host gets no API key. `timeout` bounds
    the connection and each read; `total_seconds` the whole download, since the worker's thread
    pool cannot stop a step that overruns Celery's time limits, and a server trickling one byte a
    minute would otherwise hold a thread for good.
    """
    written, head = 0, b""
    deadline = time.monotonic() + total_seconds
    try:
        with _download_session(url).get(url, stream=True, timeout=timeout) as response:
            if response.status_code in (401, 403, 404, 410):
                raise RunwayError(
                    f"Runway's link to the video no longer works ({response.status_code})", permanent=False
                )
            if response.status_code >= 400:
                raise RunwayError(f"Downloading the video failed ({response.status_code})", permanent=False)
            announced = response.headers.get("Content-Length", "")
            if announced.isdigit() and int(announced) > max_bytes:
                raise RunwayError(f"The video is larger than the {max_bytes // 1_000_000} MB allowed", permanent=True)
            for chunk in response.iter_content(chunk_size=64 * 1024):
                written += len(chunk)
                if written > max_bytes:
                    raise RunwayError(
                        f"The video is larger than the {max_bytes // 1_000_000} MB allowed", permanent=True
                    )
                if len(head) < 12:
                    head += chunk[: 12 - len(head)]
                destination.write(chunk)
                if time.monotonic() > deadline:
                    raise RunwayError(f"Downloading the video took longer than {total_seconds:.0f} s", permanent=False)
    except requests.RequestException as exc:
        raise RunwayError(f"Could not download the video ({_describe(exc)})", permanent=False) from None
    if head[4:8] != b"ftyp":
        raise RunwayError("Runway's output is not an MP4 video", permanent=True)
    return written


_per_thread = threading.local()


def _download_session(url: str) -> requests.Session:
    """This thread's session for Runway's output links: no API key, its connections kept for the
    next video, and the environment's proxy settings for the link's host read once, as the client
    reads them (a new session per download scanned the environment and opened a connection each time)."""
    session: requests.Session | None = getattr(_per_thread, "downloads", None)
    if session is None:
        session = _per_thread.downloads = requests.Session()
        session.trust_env = False
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            session.verify = ca_bundle
        _per_thread.download_proxies = {}
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    proxies: dict[str, dict[str, str]] = _per_thread.download_proxies
    if origin not in proxies:
        proxies[origin] = requests.utils.get_environ_proxies(url)
    session.proxies = proxies[origin]
    return session


def get_client() -> RunwayClient:
    """The client for the configured account, one per thread, so that its connections are reused
    from one step to the next; raises a permanent RunwayError when there is no key."""
    config = (settings.RUNWAY_API_KEY, settings.RUNWAY_API_BASE_URL, settings.RUNWAY_API_VERSION)
    # A digest, so the key is kept nowhere new (not even in a cache's key).
    digest = hashlib.sha256("\n".join(config).encode()).digest()
    client: RunwayClient | None = getattr(_per_thread, "client", None)
    if client is None or _per_thread.digest != digest:
        client = RunwayClient(api_key=config[0], base_url=config[1], version=config[2])
        _per_thread.client, _per_thread.digest = client, digest
    return client


def _may_have_been_sent(exc: requests.RequestException) -> bool:
    """Whether the request may have reached Runway before the failure."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        return not isinstance(reason, NewConnectionError | NameResolutionError)
    return True


def _describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


def _error_from(response: requests.Response, *, may_have_created: bool) -> RunwayError:
    """The error for a 4xx/5xx answer. For a create, only 429 and 503 say for sure that no task was made."""
    status = response.status_code
    detail = _error_detail(response)
    retry_after = _retry_after(response.headers.get("Retry-After"))
    if status == 400:
        return RunwayError(
            _clip(f"Runway rejected the request: {detail or 'invalid input'}"), permanent=True, status=status
        )
    if status == 401:
        return RunwayError("Runway rejected the API key", permanent=True, status=status)
    if status == 404:
        return RunwayError("Runway has no such task", permanent=True, status=status)
    if status == 429:
        return RunwayError(
            _clip(f"Runway is at its limit for now (429){': ' + detail if detail else ''}"),
            permanent=False,
            status=status,
            retry_after=retry_after,
        )
    if status >= 500:
        # A gateway error (502, 504) or a crash (500) may come after Runway made the task.
        return RunwayError(
            f"Runway is unavailable ({status})",
            permanent=False,
            status=status,
            retry_after=retry_after,
            may_have_created=may_have_created and status != 503,
        )
    return RunwayError(
        _clip(f"Runway refused the request ({status}){': ' + detail if detail else ''}"), permanent=True, status=status
    )


def _error_detail(response: requests.Response) -> str:
    """Runway's own words from a JSON error body; nothing from an HTML page."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body["error"])] if body.get("error") else []
    for issue in body.get("issues") or []:
        if isinstance(issue, dict) and issue.get("message"):
            path = ".".join(str(p) for p in issue.get("path") or [])
            parts.append(f"{path}: {issue['message']}" if path else str(issue["message"]))
    return "; ".join(parts)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return min(max(0.0, seconds), RETRY_AFTER_MAX) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when.timestamp() - time.time()), RETRY_AFTER_MAX)


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"
