"""Security headers on every page: Content-Security-Policy, Referrer-Policy, Permissions-Policy."""

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

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
