"""deploy/ as an operator installs it: Debian's nginx running deploy/nginx/runway.conf in front of the
gunicorn of deploy/systemd/runway-web.service, with the settings of deploy/systemd/runway.env
(production's: DEBUG off, HTTPS only). The shipped files are run as they are, but for the values
an operator adapts anyway (the host name, the certificate, the ports, the /srv/runway install
folder; the site file's header lists them), which the test swaps for its own, and for the secrets
and services (the test's database, broker and keys). Also: `systemd-analyze verify` on the units,
and the Kubernetes example.

CI requires nginx (TEST_NGINX_REQUIRED=1 in .ci/run); elsewhere these tests skip without it."""

import http.client
import json
import os
import shlex
import shutil
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from harness.processes import Process, free_port, wait_for_port
from harness.stack import collected_static, database_url
from runway_project.uploads import too_large_message
from tests.conftest import MP4
from tests.stack import production_environment
from videos.models import Status

BASE_DIR = Path(settings.BASE_DIR)
DEPLOY = BASE_DIR / "deploy"
LOG_DIR = BASE_DIR / "var"
# What the shipped files name, and the test swaps for its own (their headers list the same).
HOST = "videos.example.com"
INSTALL = "/srv/runway"
GUNICORN_BIND = "127.0.0.1:8000"
CERTIFICATE = f"/etc/letsencrypt/live/{HOST}/fullchain.pem"
CERTIFICATE_KEY = f"/etc/letsencrypt/live/{HOST}/privkey.pem"
PASSWORD = "a-long-test-password"  # tests/conftest.py's `user`
# The settings the test gives gunicorn over runway.env's: its secrets and services are the test's.
SECRET_KEY = "nginx-test-" + uuid.uuid4().hex + uuid.uuid4().hex  # as long and random as check --deploy asks


def nginx_binary() -> str:
    """Debian's nginx; the test skips without it, or fails where it is required (CI)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found:
        return found
    reason = "nginx is not installed (apt-get install nginx)"
    if os.environ.get("TEST_NGINX_REQUIRED"):
        pytest.fail(reason + " (TEST_NGINX_REQUIRED is set)")
    pytest.skip(reason)


def swapped(path: Path, swaps: dict[str, str]) -> str:
    """The file's text with each value an operator adapts swapped for the test's own."""
    text = path.read_text()
    for old, new in swaps.items():
        assert old in text, f"{path.relative_to(BASE_DIR)} no longer names {old!r}, which the test swaps"
        text = text.replace(old, new)
    return text


def unit_settings(path: Path) -> dict[str, list[str]]:
    """A systemd unit's `Key=value` lines (every value of a key, in order); comments skipped."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def environment_file(path: Path, install: Path) -> dict[str, str]:
    """runway.env's settings as systemd reads them (KEY=value, comments on their own lines), with
    the host name and install folder swapped for the test's."""
    text = swapped(path, {HOST: "localhost", INSTALL: str(install)})
    pairs = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    return {key: value for key, value in pairs}


def production_settings(install: Path, **more: str) -> dict[str, str]:
    """What runway-web.service gives gunicorn: its Environment= lines, then runway.env; the test's
    database, broker, secrets and Runway over them."""
    unit = dict(line.split("=", 1) for line in unit_settings(DEPLOY / "systemd/runway-web.service")["Environment"])
    shipped = environment_file(DEPLOY / "systemd/runway.env", install)
    assert shipped["TRUSTED_PROXY_COUNT"] == "1" and shipped["VIDEO_SENDFILE_HEADER"] == "X-Accel-Redirect"
    test = production_environment(database_url=database_url(), secret_key=SECRET_KEY)
    return {
        **test,
        **unit,
        **shipped,
        **{key: test[key] for key in ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "RUNWAY_API_KEY")},
        # The API's rate limit counts in gunicorn's memory, not in a Redis database of the machine's.
        "CACHE_URL": "locmemcache://",
        **more,
    }


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key; the test's clients trust it alone."""
    folder.mkdir()
    certificate, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(certificate)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return certificate, key


def nginx_main_config(prefix: Path, site: Path) -> str:
    """The main configuration around the site: Debian's /etc/nginx/nginx.conf, less what needs root
    (its user, pid file, logs and temporary folders are the test's)."""
    user = "user root root;\n" if os.geteuid() == 0 else ""  # else workers run as nobody, locked out of tmp_path
    temporary = "".join(f"    {kind}_temp_path {prefix}/{kind};\n" for kind in ("proxy", "fastcgi", "uwsgi", "scgi"))
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
        "events { worker_connections 128; }\n"
        "http {\n"
        "    sendfile on;\n    tcp_nopush on;\n    types_hash_max_size 2048;\n"
        "    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
        "    ssl_prefer_server_ciphers on;\n    gzip on;\n"
        f"    access_log {prefix}/access.log;\n    client_body_temp_path {prefix}/body;\n{temporary}"
        f"    include {site};\n"
        "}\n"
    )


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass
class Browser:
    """A client of the site over HTTPS from one loopback address, keeping its cookies."""

    port: int
    certificate: Path
    source: str = "127.0.0.1"
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
        context = ssl.create_default_context(cafile=str(self.certificate))
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=context, timeout=30, source_address=(self.source, 0)
        )
        sent = {"Host": f"localhost:{self.port}", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = self.request_cookies()
        try:
            connection.request(method, path, body=body or None, headers=sent)
            response = connection.getresponse()
            answer = Answer(response.status, response.msg, response.read())
        finally:
            connection.close()
        for line in answer.headers.get_all("Set-Cookie") or []:
            self.cookies.update({name: morsel.value for name, morsel in SimpleCookie(line).items()})
        return answer

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request("GET", path, headers=headers)

    def request_cookies(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def log_in(self, username: str, password: str, *, forwarded_for: str = "") -> Answer:
        """The login form, posted as a browser would (the CSRF cookie and the page's origin)."""
        if "csrftoken" not in self.cookies:
            assert self.get("/accounts/login/").status == 200
        form = {"username": username, "password": password, "csrfmiddlewaretoken": self.cookies["csrftoken"]}
        origin = f"https://localhost:{self.port}"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": origin,
            "Referer": origin + "/accounts/login/",
        }
        if forwarded_for:  # what a client may send, hoping to be taken for another
            headers["X-Forwarded-For"] = forwarded_for
        return self.request("POST", "/accounts/login/", urlencode(form).encode(), headers)


@dataclass
class Site:
    """nginx (HTTPS on `port`, plain HTTP on `http_port`) in front of gunicorn (on `gunicorn_port`)."""

    prefix: Path
    port: int
    http_port: int
    gunicorn_port: int
    certificate: Path
    processes: list[Process]

    def browser(self, source: str = "127.0.0.1") -> Browser:
        return Browser(self.port, self.certificate, source)

    @property
    def static_root(self) -> Path:
        return self.prefix / "var/static"

    @property
    def media_root(self) -> Path:
        return self.prefix / "media"

    def from_gunicorn(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        """The same request put to gunicorn directly, as if nginx had passed it on."""
        connection = http.client.HTTPConnection("127.0.0.1", self.gunicorn_port, timeout=30)
        sent = {"Host": f"localhost:{self.port}", "X-Forwarded-Proto": "https", **(headers or {})}
        try:
            connection.request("GET", path, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, response.msg, response.read())
        finally:
            connection.close()

    def logs(self) -> str:
        nginx = (self.prefix / "nginx/error.log").read_text(errors="replace")[-3000:]
        return "\n".join(
            [f"--- nginx error.log:\n{nginx}", *(f"--- {p.log.name}:\n{p.tail()}" for p in self.processes)]
        )


def gunicorn_command(port: int) -> list[str]:
    """runway-web.service's ExecStart, run from this checkout's virtualenv, on the test's port."""
    (exec_start,) = unit_settings(DEPLOY / "systemd/runway-web.service")["ExecStart"]
    command = shlex.split(exec_start)
    assert command[0] == f"{INSTALL}/.venv/bin/gunicorn" and GUNICORN_BIND in command
    gunicorn = Path(sys.executable).parent / "gunicorn"
    return [str(gunicorn), *(arg.replace(GUNICORN_BIND, f"127.0.0.1:{port}") for arg in command[1:])]


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Site]:
    """gunicorn and nginx, as deploy/ sets them up, for the module's tests; both stopped at its end."""
    nginx = nginx_binary()
    prefix = tmp_path_factory.mktemp("srv-runway")
    (prefix / "media").mkdir()
    (prefix / "var").mkdir()
    (prefix / "nginx").mkdir()
    certificate, key = self_signed_certificate(prefix / "tls")
    port, http_port, gunicorn_port = free_port(), free_port(), free_port()
    with django_db_blocker.unblock():
        env = production_settings(prefix, WEB_CONCURRENCY="2")
    # collectstatic's files, made once for the test process (harness.stack), at STATIC_ROOT.
    (prefix / "var/static").symlink_to(collected_static(env))
    config = swapped(
        DEPLOY / "nginx/runway.conf",
        {
            "listen 443 ": f"listen 127.0.0.1:{port} ",
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            CERTIFICATE: str(certificate),
            CERTIFICATE_KEY: str(key),
            HOST: "localhost",
            GUNICORN_BIND: f"127.0.0.1:{gunicorn_port}",
            INSTALL: str(prefix),
        },
    )
    (prefix / "nginx/runway.conf").write_text(config)
    (prefix / "nginx/nginx.conf").write_text(nginx_main_config(prefix / "nginx", prefix / "nginx/runway.conf"))
    processes: list[Process] = []
    try:
        processes.append(Process("gunicorn", gunicorn_command(gunicorn_port), env, log_dir=LOG_DIR))
        command = [nginx, "-p", str(prefix / "nginx"), "-c", str(prefix / "nginx/nginx.conf")]
        processes.append(Process("nginx", [*command, "-e", str(prefix / "nginx/error.log")], env, log_dir=LOG_DIR))
        served = Site(prefix, port, http_port, gunicorn_port, certificate, processes)
        for waited, process in ((gunicorn_port, processes[0]), (port, processes[1])):
            wait_for_port(waited, process, seconds=60)
        yield served
    finally:
        for process in reversed(processes):
            process.kill()  # nothing of theirs to keep: at once, with anything they started


@pytest.fixture
def alice(user):
    """tests/conftest.py's user, with a password production's hashers read (the tests' MD5 is not among them)."""
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    user.save()
    return user


def hashed(static_root: Path, name: str) -> str:
    return str(json.loads((static_root / "staticfiles.json").read_text())["paths"][name])


@pytest.mark.stack
def test_the_login_page_comes_through_nginx_over_https(site):
    page = site.browser().get("/accounts/login/")

    assert page.status == 200, site.logs()
    assert b'name="password"' in page.body
    assert page.header("Server").startswith("nginx")
    # The app's own headers come through: it knew the request came over HTTPS (X-Forwarded-Proto).
    assert page.header("Strict-Transport-Security") == "max-age=31536000; includeSubDomains; preload"
    assert "default-src 'self'" in page.header("Content-Security-Policy")
    assert f'href="/static/{hashed(site.static_root, "css/app.css")}"' in page.body.decode()


@pytest.mark.stack
def test_plain_http_is_sent_to_https(site):
    connection = http.client.HTTPConnection("127.0.0.1", site.http_port, timeout=10)
    connection.request("GET", "/accounts/login/?next=/videos/", headers={"Host": f"localhost:{site.http_port}"})
    answer = connection.getresponse()

    assert answer.status == 301
    assert answer.getheader("Location") == "https://localhost/accounts/login/?next=/videos/"
    connection.close()


@pytest.fixture
def added_static(site) -> Iterator[tuple[str, str]]:
    """Two files put in STATIC_ROOT after gunicorn started, which whitenoise (that lists the folder
    when it starts) would not know: one named as collectstatic names a hashed copy, one not."""
    token = uuid.uuid4().hex
    names = (f"nginx-{token[:8]}.{token[-12:]}.txt", f"nginx-{token[:8]}.txt")
    for name in names:
        (site.static_root / name).write_text(f"{name}, put here by the test\n")
    try:
        yield names
    finally:
        for name in names:
            (site.static_root / name).unlink()


@pytest.mark.stack
def test_nginx_sends_the_static_files_itself_with_whitenoise_s_caching(site, added_static):
    browser = site.browser()
    hashed_name, plain_name = added_static
    css = hashed(site.static_root, "css/app.css")

    # Served although gunicorn's whitenoise never saw them: nginx sent them from STATIC_ROOT.
    for name, cache in ((hashed_name, "max-age=315360000, public, immutable"), (plain_name, "max-age=60, public")):
        answer = browser.get(f"/static/{name}")
        assert answer.status == 200, site.logs()
        assert answer.body == (site.static_root / name).read_bytes()
        assert answer.header("Cache-Control") == cache
        assert site.from_gunicorn(f"/static/{name}").status == 404
    plain = browser.get(f"/static/{css}", {"Accept-Encoding": "identity"})
    assert plain.status == 200
    assert plain.header("Content-Type") == "text/css"
    assert plain.header("Cache-Control") == "max-age=315360000, public, immutable"
    assert plain.body == (site.static_root / css).read_bytes()
    # collectstatic's gzip copy, as it is on disk (gzip_static), for a client that takes gzip.
    gzipped = browser.get(f"/static/{css}", {"Accept-Encoding": "gzip"})
    assert gzipped.header("Content-Encoding") == "gzip"
    assert gzipped.header("Vary") == "Accept-Encoding"
    assert gzipped.body == (site.static_root / (css + ".gz")).read_bytes()
    assert browser.get("/static/css/nothing.css").status == 404


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_failed_logins_are_counted_by_the_address_nginx_saw_not_the_one_a_client_claims(site, alice):
    here = site.browser("127.0.0.1")
    # Each failure claims another address: were X-Forwarded-For believed, none would add up.
    answers = [
        here.log_in("alice", "wrong", forwarded_for=f"203.0.113.{n}").status for n in range(settings.AXES_FAILURE_LIMIT)
    ]

    assert answers == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429], site.logs()
    assert here.log_in("alice", PASSWORD, forwarded_for="198.51.100.7").status == 429
    (attempt,) = AccessAttempt.objects.all()
    assert attempt.ip_address == "127.0.0.1"  # nginx's peer, the last X-Forwarded-For entry
    assert attempt.failures_since_start >= settings.AXES_FAILURE_LIMIT
    # Another machine (another loopback address) is another client, even claiming to be the first.
    there = site.browser("127.0.0.2")
    assert there.log_in("alice", PASSWORD, forwarded_for="127.0.0.1").status == 302
    assert [log.ip_address for log in AccessLog.objects.all()] == ["127.0.0.2"]
    assert here.log_in("alice", PASSWORD).status == 429


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_a_video_is_sent_by_nginx_with_the_range_asked_for_after_the_app_s_check(site, alice, make_job):
    name = f"videos/nginx/{uuid.uuid4().hex}.mp4"  # as the worker stores one, in MEDIA_ROOT
    (site.media_root / name).parent.mkdir(parents=True, exist_ok=True)
    (site.media_root / name).write_bytes(MP4)
    job = make_job(owner=alice, status=Status.SUCCEEDED, video_file=name, prompt="Lighthouse in a storm")
    url = f"/videos/{job.pk}/video.mp4"
    browser = site.browser()
    assert browser.get(url).status == 302  # to the login page: the app checks first
    assert browser.log_in("alice", PASSWORD).status == 302

    part = browser.get(url, {"Range": "bytes=100-1099"})

    assert part.status == 206, site.logs()
    assert part.body == MP4[100:1100]
    assert part.header("Content-Range") == f"bytes 100-1099/{len(MP4)}"
    assert part.header("Content-Length") == "1000"
    # The app's headers, kept by nginx; its hand-over header, not passed on.
    assert part.header("Content-Type") == "video/mp4"
    assert part.header("Content-Disposition") == f'inline; filename="lighthouse-in-a-storm-{job.pk}.mp4"'
    assert part.header("Cache-Control") == f"private, max-age={settings.VIDEO_CACHE_SECONDS}"
    assert part.header("X-Content-Type-Options") == "nosniff"
    assert part.header("X-Accel-Redirect") is None
    whole = browser.get(url)
    assert (whole.status, whole.body, whole.header("Accept-Ranges")) == (200, MP4, "bytes")
    # gunicorn itself answered with no bytes of the file, only where nginx would find it.
    handed = site.from_gunicorn(url, {"Range": "bytes=100-1099", "Cookie": browser.request_cookies()})
    assert (handed.status, handed.body) == (200, b"")
    assert handed.header("X-Accel-Redirect") == f"/protected-media/{name}"
    # nginx's internal location answers only such a hand-over, never a client.
    assert browser.get(f"/protected-media/{name}").status == 404


def posted_too_large(site: Site, accept: str) -> Answer:
    """A POST whose Content-Length is one byte over the app's limit, its body never sent."""
    context = ssl.create_default_context(cafile=str(site.certificate))
    connection = http.client.HTTPSConnection("127.0.0.1", site.port, context=context, timeout=30)
    try:
        connection.putrequest("POST", "/videos/new/", skip_host=True)
        headers = {
            "Host": f"localhost:{site.port}",
            "Accept": accept,
            "Content-Type": "multipart/form-data; boundary=x",
        }
        for name, value in {**headers, "Content-Length": str(settings.REQUEST_MAX_BYTES + 1)}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return Answer(response.status, response.msg, response.read())
    finally:
        connection.close()


@pytest.mark.stack
def test_a_body_over_the_app_s_limit_is_refused_by_nginx_before_it_is_read_as_the_app_would(site):
    config = (DEPLOY / "nginx/runway.conf").read_text()
    assert f"client_max_body_size {settings.REQUEST_MAX_BYTES};" in config

    for_the_script = posted_too_large(site, "application/json")
    for_a_page = posted_too_large(site, "text/html")

    assert for_the_script.status == 413, site.logs()
    assert for_the_script.header("Content-Type") == "application/json"
    # Word for word the app's answer (runway_project/uploads.py), which the form's script shows.
    assert json.loads(for_the_script.body) == {
        "errors": {"image": [{"message": too_large_message(), "code": "too_large"}]}
    }
    assert for_a_page.status == 413
    assert for_a_page.header("Content-Type") == "text/html"
    assert b"413 Request Entity Too Large" in for_a_page.body


@pytest.mark.django_db
def test_check_deploy_is_clean_with_the_shipped_settings(tmp_path):
    command = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level=WARNING"],
        env=production_settings(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=BASE_DIR,
    )

    assert command.returncode == 0, command.stdout + command.stderr
    assert "System check identified no issues" in command.stdout


def installed_units(folder: Path) -> list[Path]:
    """Copies of deploy/systemd's units as if the project were installed here: /srv/runway is this
    checkout and its .venv this test's virtualenv, so that every program they run exists."""
    venv = Path(sys.executable).parent.parent
    copies = []
    for unit in sorted((DEPLOY / "systemd").glob("runway-*")):
        text = unit.read_text().replace(f"{INSTALL}/.venv/", f"{venv}/").replace(INSTALL, str(BASE_DIR))
        (folder / unit.name).write_text(text)
        copies.append(folder / unit.name)
    return copies


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed (systemd)")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    units = installed_units(tmp_path)
    assert [unit.name for unit in units] == [
        "runway-beat.service",
        "runway-web.service",
        "runway-worker-health.service",
        "runway-worker-health.timer",
        "runway-worker.service",
    ]

    verify = subprocess.run(
        ["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )

    # It exits 0 on a setting it could not parse (and ignored): any word of it is a finding.
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")


def test_the_worker_yields_the_cpu_to_the_web_and_is_restarted_when_it_stops_taking_work():
    web, worker, health, timer = (
        unit_settings(DEPLOY / "systemd" / name)
        for name in (
            "runway-web.service",
            "runway-worker.service",
            "runway-worker-health.service",
            "runway-worker-health.timer",
        )
    )

    assert int(worker["CPUWeight"][0]) < int(web["CPUWeight"][0])
    assert health["ExecStart"] == [f"{INSTALL}/.venv/bin/python manage.py health --worker"]
    assert health["ExecStopPost"][0].startswith("+")  # as root, who may restart units
    assert timer["OnUnitInactiveSec"] == ["1min"]
    assert {key: health[key] for key in ("User", "WorkingDirectory", "EnvironmentFile")} == {
        key: worker[key] for key in ("User", "WorkingDirectory", "EnvironmentFile")
    }


@pytest.mark.parametrize(("result", "restarted"), [("success", False), ("exit-code", True), ("timeout", True)])
def test_the_health_check_restarts_the_worker_unless_it_passed(tmp_path, result, restarted):
    (line,) = unit_settings(DEPLOY / "systemd/runway-worker-health.service")["ExecStopPost"]
    systemctl = tmp_path / "systemctl"  # notes what it was asked
    systemctl.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/asked\n')
    systemctl.chmod(0o755)
    # As systemd runs it: `+` is how, `$$` a dollar sign; SERVICE_RESULT in the environment.
    command = shlex.split(line.removeprefix("+").replace("$$", "$").replace("/usr/bin/systemctl", str(systemctl)))

    subprocess.run(command, env={"PATH": os.environ["PATH"], "SERVICE_RESULT": result}, check=True, timeout=10)

    asked = (tmp_path / "asked").read_text() if (tmp_path / "asked").exists() else None
    assert asked == ("try-restart --no-block runway-worker.service\n" if restarted else None)


def test_the_kubernetes_example_checks_the_worker_and_runs_one_beat():
    documents = {
        (doc["kind"], doc["metadata"]["name"]): doc
        for doc in yaml.safe_load_all((DEPLOY / "kubernetes/runway.yaml").read_text())
    }
    worker = documents["Deployment", "runway-worker"]["spec"]["template"]["spec"]
    beat = documents["Deployment", "runway-beat"]["spec"]

    probe = worker["containers"][0]["livenessProbe"]
    assert probe["exec"]["command"] == ["python", "manage.py", "health", "--worker"]
    assert (probe["periodSeconds"], probe["failureThreshold"]) == (30, 3)
    assert worker["terminationGracePeriodSeconds"] >= 60
    assert (beat["replicas"], beat["strategy"]["type"]) == (1, "Recreate")
    assert beat["template"]["spec"]["containers"][0]["command"][-2] == "beat"
    assert documents["Deployment", "runway-web"]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
