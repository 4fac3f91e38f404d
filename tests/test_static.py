"""Static files as production serves them: `collectstatic`, then whitenoise inside gunicorn."""

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings

from harness.stack import Gunicorn, collect_static
from tests.stack import production_environment

LOG_DIR = Path(settings.BASE_DIR) / "var"
# Production answers plain HTTP with a redirect; a proxy in front says the request came over HTTPS.
HTTPS = {"X-Forwarded-Proto": "https"}
TEN_YEARS = 10 * 365 * 24 * 60 * 60


def production_env(**more: str) -> dict[str, str]:
    return production_environment(
        # As long and random as `check --deploy` asks.
        secret_key=secrets.token_urlsafe(50),
        database_url="sqlite:///" + str(LOG_DIR / "unused-static-test.sqlite3"),
        **more,
    )


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("static")
    collect_static(production_env(), root)
    return root


@pytest.fixture(scope="module")
def server(static_root) -> Iterator[Gunicorn]:
    server = Gunicorn(production_env(STATIC_ROOT=str(static_root)), log_dir=LOG_DIR, workers=1)
    try:
        server.wait_until_ready()
        yield server
    finally:
        server.stop()


def hashed(static_root: Path, name: str) -> str:
    return str(json.loads((static_root / "staticfiles.json").read_text())["paths"][name])


def test_collectstatic_writes_hashed_and_compressed_copies(static_root):
    name = hashed(static_root, "css/app.css")

    assert name != "css/app.css" and name.startswith("css/app.") and name.endswith(".css")
    assert (static_root / name).read_bytes() == (Path(settings.BASE_DIR) / "static/css/app.css").read_bytes()
    assert (static_root / (name + ".gz")).exists()


@pytest.mark.stack
def test_production_pages_name_hashed_files_that_gunicorn_serves_for_ever(static_root, server):
    page = requests.get(f"{server.base_url}/accounts/login/", headers=HTTPS, timeout=10)
    url = f"/static/{hashed(static_root, 'css/app.css')}"
    assert page.status_code == 200, server.tail()
    assert f'href="{url}"' in page.text

    response = requests.get(server.base_url + url, headers={**HTTPS, "Accept-Encoding": "identity"}, timeout=10)

    assert response.status_code == 200, server.tail()
    assert response.headers["Content-Type"].startswith("text/css")
    assert response.headers["Cache-Control"] == f"max-age={TEN_YEARS}, public, immutable"
    assert "Content-Encoding" not in response.headers
    assert response.content == (static_root / url.removeprefix("/static/")).read_bytes()


@pytest.mark.stack
def test_a_client_that_accepts_gzip_gets_the_compressed_copy(static_root, server):
    url = f"/static/{hashed(static_root, 'js/videos.js')}"
    gzipped = static_root / (url.removeprefix("/static/") + ".gz")

    response = requests.get(server.base_url + url, headers={**HTTPS, "Accept-Encoding": "gzip"}, timeout=10)

    assert response.status_code == 200, server.tail()
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Vary"] == "Accept-Encoding"
    assert int(response.headers["Content-Length"]) == gzipped.stat().st_size
    assert response.content == (static_root / url.removeprefix("/static/")).read_bytes()  # requests unzips


@pytest.mark.stack
def test_the_admin_s_static_files_are_served_too(static_root, server):
    url = f"/static/{hashed(static_root, 'admin/css/base.css')}"

    response = requests.get(server.base_url + url, headers=HTTPS, timeout=10)

    assert response.status_code == 200, server.tail()


@pytest.mark.stack
def test_an_unknown_static_file_is_a_404(server):
    response = requests.get(f"{server.base_url}/static/css/nothing.css", headers=HTTPS, timeout=10)

    assert response.status_code == 404


def settings_of(**env: str) -> dict[str, dict[str, str]]:
    """STORAGES as runway_project.settings reads them from this environment."""
    code = "import json, runway_project.settings as s; print(json.dumps(s.STORAGES))"
    command = subprocess.run(  # noqa: S603 (our own settings)
        [sys.executable, "-c", code],
        env={**production_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.BASE_DIR,
        check=True,
    )
    return dict(json.loads(command.stdout))


def test_production_hashes_and_compresses_and_debug_serves_the_sources_as_they_are():
    assert settings_of()["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert (
        settings_of(DEBUG="True")["staticfiles"]["BACKEND"] == "django.contrib.staticfiles.storage.StaticFilesStorage"
    )


def test_with_an_s3_bucket_static_files_stay_with_whitenoise():
    storages = settings_of(AWS_STORAGE_BUCKET_NAME="videos")

    assert storages["default"]["BACKEND"] == "runway_project.storage.BucketStorage"
    assert storages["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"


def test_check_deploy_is_clean_with_production_settings(static_root):
    command = subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level=WARNING"],
        env=production_env(STATIC_ROOT=str(static_root)),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.BASE_DIR,
    )

    assert command.returncode == 0, command.stdout + command.stderr
    assert "no issues" in command.stdout


def test_favicon_ico_leads_to_the_icon_served_for_ever(server, static_root):
    # Browsers ask for /favicon.ico whatever a page links to; it was a 404 on every page.
    answer = requests.get(f"{server.base_url}/favicon.ico", headers=HTTPS, timeout=10, allow_redirects=False)
    assert answer.status_code == 301
    assert answer.headers["Location"] == "/static/" + hashed(static_root, "favicon.ico")

    icon = requests.get(server.base_url + answer.headers["Location"], headers=HTTPS, timeout=10)
    assert icon.status_code == 200
    assert icon.content[:4] == b"\0\0\1\0"  # an ICO file
    assert f"max-age={TEN_YEARS}" in icon.headers["Cache-Control"]
