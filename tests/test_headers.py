"""Security headers on every page: Content-Security-Policy, Referrer-Policy, Permissions-Policy."""

import re
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


def test_media_from_an_s3_bucket_is_allowed_where_the_app_redirects_to_it(monkeypatch):
    import importlib

    import runway_project.settings as project_settings

    monkeypatch.setenv("AWS_STORAGE_BUCKET_NAME", "videos")
    monkeypatch.setenv("AWS_S3_ENDPOINT_URL", "https://minio.example.com")
    try:
        reloaded = importlib.reload(project_settings)
        policy = reloaded.CONTENT_SECURITY_POLICY["DIRECTIVES"]
        assert policy["media-src"] == ["'self'", "https://minio.example.com", "https://*.minio.example.com"]
        assert policy["img-src"] == policy["media-src"]
        assert policy["script-src"] == ["'self'"]
    finally:
        monkeypatch.undo()
        importlib.reload(project_settings)
