"""Security headers on every page: Content-Security-Policy, Referrer-Policy, Permissions-Policy."""

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.test import Client

from runway_project.errors import CSRF_FAILURE_MESSAGE
from videos.models import Status

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


class InlineCode(HTMLParser):
    """Whatever in a page a CSP without 'unsafe-inline' refuses: inline scripts, styles, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "style":
            self.found.append("<style>")
        if tag == "script" and "src" not in names and names.get("type") != "application/json":
            self.found.append("inline <script>")
        self.found += [f"{tag} {name}=" for name in names if name == "style" or name.startswith("on")]


def inline_code(html: bytes) -> list[str]:
    parser = InlineCode()
    parser.feed(html.decode())
    return parser.found


def test_pages_allow_only_their_own_scripts_and_styles(client):
    response = client.get("/accounts/login/")
    policy = directives(response)

    assert response.status_code == 200
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "unsafe" not in response.headers["Content-Security-Policy"]


def test_pages_send_referrer_and_permissions_policies(client):
    response = client.get("/accounts/login/")

    assert response.headers["Referrer-Policy"] == "same-origin"
    features = dict(item.split("=") for item in response.headers["Permissions-Policy"].split(", "))
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert features[feature] == "()"


def test_errors_and_json_answers_carry_the_headers_too(alice):
    response = alice.get("/videos/999999/")

    assert response.status_code == 404
    assert "Content-Security-Policy" in response.headers
    assert "Permissions-Policy" in response.headers


def test_no_page_has_inline_code_the_policy_would_refuse(alice, make_job, admin_client):
    running = make_job(status=Status.RUNNING, progress=40, runway_task_id="t-1")
    make_job(status=Status.FAILED, message="Runway refused it.")
    pages = {
        "login": alice.get("/accounts/login/"),
        "dashboard": alice.get("/videos/"),
        "detail": alice.get(f"/videos/{running.pk}/"),
        "admin index": admin_client.get("/admin/"),
        "admin list": admin_client.get("/admin/videos/videogeneration/"),
        "admin change": admin_client.get(f"/admin/videos/videogeneration/{running.pk}/change/"),
    }

    for name, response in pages.items():
        assert response.status_code == 200, name
        assert inline_code(response.content) == [], name
    # The dashboard's data for its pickers is a JSON block, which no browser runs as a script.
    assert re.search(rb'<script id="pickers" type="application/json">', pages["dashboard"].content)


class Loads(HTMLParser):
    """What a page loads or sends a form to, each with the policy's directive that governs it."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name: value or "" for name, value in attrs}
        rel = names.get("rel", "").split()
        if tag == "script" and "src" in names:
            self.found.append(("script-src", names["src"]))
        elif tag == "link" and "stylesheet" in rel:
            self.found.append(("style-src", names["href"]))
        elif tag == "link" and "icon" in rel or tag == "img":
            self.found.append(("img-src", names.get("href") or names.get("src", "")))
        elif tag in ("video", "audio", "source"):
            self.found.append(("media-src", names.get("src", "")))
        elif tag in ("iframe", "frame"):
            self.found.append(("frame-src", names.get("src", "")))
        elif tag in ("object", "embed"):
            self.found.append(("object-src", names.get("data") or names.get("src", "")))
        elif tag == "form":
            self.found.append(("form-action", names.get("action", "")))  # none: the page's own URL


def refused_by_policy(response) -> list[str]:
    """What on the page its own Content-Security-Policy would refuse: inline code, and anything
    loaded from (or a form sent to) an origin its directive does not name."""
    policy = directives(response)
    refused = inline_code(response.content)
    parser = Loads()
    parser.feed(response.content.decode())
    for directive, url in parser.found:
        allowed = policy.get(directive, policy["default-src"] if directive != "form-action" else ["*"])
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "'self'"
        if "'none'" in allowed or not ({origin, "*"} & set(allowed)):
            refused.append(f"{directive} {url}")
    return refused


def test_the_policy_checker_finds_what_the_policy_would_refuse(client):
    response = client.get("/accounts/login/")
    assert refused_by_policy(response) == []

    response.content = (
        b'<script src="https://cdn.example.com/x.js"></script><link rel="stylesheet" href="/ok.css">'
        b'<form action="https://elsewhere.example.com/"></form><object data="/x.swf"></object>'
    )
    assert refused_by_policy(response) == [
        "script-src https://cdn.example.com/x.js",
        "form-action https://elsewhere.example.com/",
        "object-src /x.swf",
    ]


def test_a_form_refused_by_the_csrf_check_gets_our_page_which_the_policy_allows_in_full(user):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post("/accounts/login/", {"username": "alice", "password": "a-long-test-password"})

    assert response.status_code == 403
    assert "Content-Security-Policy" in response.headers
    assert refused_by_policy(response) == []  # Django's own page has a <style> the policy blocks
    page = response.content.decode()
    assert "This page had expired" in page
    assert "reload the page" in page and "cookies" in page
    assert "Your browser sent no cookie from this site" in page  # it had never been given one
    assert 'href="/static/css/app.css"' in page and 'class="topbar"' in page  # the site's layout
    assert "_auth_user_id" not in browser.session


def test_a_stale_token_of_a_logged_in_user_gets_the_page_in_the_site_layout(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/videos/")  # a page that gives the browser its token cookie

    response = browser.post("/videos/", {"prompt": "A lighthouse", "csrfmiddlewaretoken": "x" * 64})

    assert response.status_code == 403
    assert refused_by_policy(response) == []
    page = response.content.decode()
    assert "This page had expired" in page
    assert "Your browser sent no cookie" not in page
    assert ">alice<" in page  # the layout's account bar, with its own (valid) log-out form


def test_the_pages_scripts_get_the_csrf_refusal_as_json_they_show(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    response = browser.post("/videos/", {"prompt": "A lighthouse"}, headers={"Accept": "application/json"})

    assert response.status_code == 403
    body = response.json()
    assert body["error"] == CSRF_FAILURE_MESSAGE  # the cards' actions (static/js/videos.js)
    assert body["errors"] == {"__all__": [{"message": CSRF_FAILURE_MESSAGE, "code": "csrf"}]}  # the form's
    assert "reload the page and try again" in CSRF_FAILURE_MESSAGE


def test_the_checker_finds_inline_code():
    html = b'<p style="color: red" onclick="x()"></p><script>alert(1)</script><script src="/a.js"></script>'

    assert inline_code(html) == ["p style=", "p onclick=", "inline <script>"]


def csp_of(**env: str) -> dict[str, list[str]]:
    """The policy's directives as runway_project.settings reads them from this environment."""
    code = "import json, runway_project.settings as s; print(json.dumps(s.CONTENT_SECURITY_POLICY))"
    environment = {**os.environ, "SECRET_KEY": "x" * 50, "DEBUG": "False", **env}
    command = subprocess.run(  # noqa: S603 (our own settings)
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60, check=True
    )
    return dict(json.loads(command.stdout)["DIRECTIVES"])


def test_videos_and_posters_may_come_from_the_s3_bucket_the_app_redirects_to():
    policy = csp_of(AWS_STORAGE_BUCKET_NAME="videos", AWS_S3_ENDPOINT_URL="https://minio.example.com")

    # blob: for the form's image preview, and for reading a chosen clip's length in the page.
    assert policy["media-src"] == ["'self'", "https://minio.example.com", "https://*.minio.example.com", "blob:"]
    assert policy["img-src"] == policy["media-src"]
    assert policy["script-src"] == ["'self'"]
    assert csp_of(AWS_STORAGE_BUCKET_NAME="videos")["media-src"] == ["'self'", "https://*.amazonaws.com", "blob:"]
    assert csp_of()["media-src"] == ["'self'", "blob:"]
    assert csp_of(CSP_MEDIA_SOURCES="https://cdn.example.com")["media-src"] == [
        "'self'",
        "https://cdn.example.com",
        "blob:",
    ]
