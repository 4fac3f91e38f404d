"""Start-up of the real settings module in a fresh process, with the environment given explicitly."""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path) -> Path:
    """The project folder, or a copy without `.env` when the developer has one: it must not leak in."""
    if not (REPO / ".env").exists():
        return REPO
    copy = tmp_path / "project"
    shutil.copytree(
        REPO,
        copy,
        ignore=shutil.ignore_patterns(".env", ".git", ".venv", "var", "media", "node_modules", "*.sqlite3"),
    )
    return copy


def manage(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py with only the variables given (plus PATH), never the caller's environment."""
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DJANGO_SETTINGS_MODULE": "runway_project.settings"}
    environ.update(env)
    return subprocess.run(
        [sys.executable, str(project / "manage.py"), *args],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def production_env() -> dict[str, str]:
    return {"DEBUG": "False", "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "videos.example.com"}


def test_production_settings_pass_the_deployment_checks(project):
    result = manage(project, "check", "--deploy", "--fail-level", "WARNING", **production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_without_a_secret_key_does_not_start(project):
    env = production_env()
    del env["SECRET_KEY"]
    assert not (project / ".env").exists()

    result = manage(project, "check", **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_an_empty_secret_key_in_production_does_not_start(project):
    # An empty value is as missing as none (`SECRET_KEY: ${SECRET_KEY}` in a compose file when unset);
    # Django would only refuse it later, on the first request that signs something.
    result = manage(project, "check", **{**production_env(), "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_polling_faster_than_every_five_seconds_does_not_start(project):
    result = manage(project, "check", **production_env(), RUNWAY_POLL_INTERVAL="4")
    assert result.returncode != 0
    assert "ImproperlyConfigured: RUNWAY_POLL_INTERVAL must be at least 5 seconds." in result.stderr


def test_media_goes_to_a_private_s3_bucket_when_one_is_named(project):
    code = (
        "from django.core.files.storage import default_storage as s; s._setup(); "
        "print(type(s._wrapped).__name__, s.bucket_name, s.endpoint_url, s.default_acl)"
    )
    result = manage(
        project,
        "shell",
        "-c",
        code,
        DEBUG="True",
        AWS_STORAGE_BUCKET_NAME="videos-bucket",
        AWS_S3_ENDPOINT_URL="http://127.0.0.1:9000",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-4:] == ["BucketStorage", "videos-bucket", "http://127.0.0.1:9000", "private"]


def test_media_stays_in_media_root_by_default(project):
    code = "from django.core.files.storage import default_storage as s; s._setup(); print(type(s._wrapped).__name__)"
    result = manage(project, "shell", "-c", code, DEBUG="True")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "FileSystemStorage"


def celery_conf(project: Path, broker_url: str) -> dict[str, object]:
    """The broker settings the Celery app starts with, for a broker URL."""
    code = (
        "import json; from runway_project.celery import app; c = app.conf; "
        "print(json.dumps([c.broker_transport_options, c.broker_connection_max_retries, c.broker_channel_error_retry, "
        "c.worker_enable_prefetch_count_reduction]))"
    )
    result = manage(project, "shell", "-c", code, DEBUG="True", CELERY_BROKER_URL=broker_url)
    assert result.returncode == 0, result.stderr
    options, max_retries, channel_error_retry, prefetch_reduction = json.loads(result.stdout.splitlines()[-1])
    return {
        "options": options,
        "max_retries": max_retries,
        "channel_error_retry": channel_error_retry,
        "prefetch_reduction": prefetch_reduction,
    }


def test_only_redis_gets_the_redis_visibility_timeout_and_every_broker_is_reconnected_to_for_ever(project):
    redis = celery_conf(project, "redis://127.0.0.1:6379/0")
    rabbitmq = celery_conf(project, "amqp://guest:guest@127.0.0.1:5672//")

    assert redis["options"]["visibility_timeout"] == 3600  # type: ignore[index]
    assert "visibility_timeout" not in rabbitmq["options"]  # type: ignore[operator]
    for conf in (redis, rabbitmq):
        assert conf["max_retries"] is None  # never give up reconnecting
        assert conf["channel_error_retry"] is True  # a closed channel (RabbitMQ's consumer_timeout) is reconnected
        assert conf["prefetch_reduction"] is False  # no basic.qos from task threads after a reconnection


def test_env_example_lists_every_variable_the_settings_read():
    settings_source = (REPO / "runway_project" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\("([A-Z_]+)"', settings_source))
    example = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z_]+)=", example, flags=re.MULTILINE))
    assert read, "the pattern found no setting"
    assert read - listed == set()


@pytest.mark.parametrize("value", ["-1", "lots", "12.5", ""])
def test_a_negative_or_non_numeric_monthly_budget_does_not_start(project, value):
    result = manage(project, "check", **production_env(), RUNWAY_MONTHLY_BUDGET_PER_USER=value)
    assert result.returncode != 0
    assert "ImproperlyConfigured: RUNWAY_MONTHLY_BUDGET_PER_USER must be a whole number of credits" in result.stderr


def test_a_monthly_budget_of_0_starts(project):
    code = "from django.conf import settings; print(settings.RUNWAY_MONTHLY_BUDGET_PER_USER)"
    result = manage(project, "shell", "-c", code, DEBUG="True", RUNWAY_MONTHLY_BUDGET_PER_USER="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "0"


def test_prices_for_unpriced_models_come_from_the_environment(project):
    code = "from django.conf import settings as s; print(s.RUNWAY_PRICES, s.RUNWAY_PRICE_CEILING)"
    env = {"RUNWAY_PRICES": " kling3.0_pro=20, seedance2=36.5 ", "RUNWAY_PRICE_CEILING": "60"}
    result = manage(project, "shell", "-c", code, DEBUG="True", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "{'kling3.0_pro': 20.0, 'seedance2': 36.5} 60.0"


@pytest.mark.parametrize("value", ["gen3=5", "kling3.0_pro=0", "kling3.0_pro=lots", "kling3.0_pro"])
def test_a_price_for_no_model_of_the_table_or_not_above_0_does_not_start(project, value):
    result = manage(project, "check", **production_env(), RUNWAY_PRICES=value)
    assert result.returncode != 0
    assert "ImproperlyConfigured: RUNWAY_PRICES:" in result.stderr


def test_lockout_parameters_and_email_come_from_the_environment(project):
    code = (
        "from django.conf import settings as s; "
        "print(s.AXES_LOCKOUT_PARAMETERS, s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME, "
        "s.PASSWORD_RESET_ENABLED, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS)"
    )
    result = manage(
        project,
        "shell",
        "-c",
        code,
        DEBUG="True",
        AXES_LOCKOUT_PARAMETERS="username+ip_address, ip_address",
        AXES_FAILURE_LIMIT="3",
        AXES_COOLOFF_MINUTES="30",
        EMAIL_URL="smtp+tls://mailer:secret@smtp.example.com:587",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "[['username', 'ip_address'], 'ip_address'] 3 0:30:00 True smtp.example.com 587 True"
    )


def test_failures_are_counted_by_name_and_address_and_by_address_alone_by_default(project):
    code = "from django.conf import settings as s; print(s.AXES_LOCKOUT_PARAMETERS, s.AXES_ADDRESS_FAILURE_LIMIT)"
    default = manage(project, "shell", "-c", code, DEBUG="True")
    raised = manage(project, "shell", "-c", code, DEBUG="True", AXES_ADDRESS_FAILURE_LIMIT="100")
    as_before = manage(project, "shell", "-c", code, DEBUG="True", AXES_LOCKOUT_PARAMETERS="username+ip_address")

    assert default.stdout.strip().splitlines()[-1] == "[['username', 'ip_address'], 'ip_address'] 20", default.stderr
    assert raised.stdout.strip().splitlines()[-1] == "[['username', 'ip_address'], 'ip_address'] 100", raised.stderr
    assert as_before.stdout.strip().splitlines()[-1] == "[['username', 'ip_address']] 20", as_before.stderr


@pytest.mark.parametrize(("name", "value"), [("AXES_ADDRESS_FAILURE_LIMIT", "0"), ("TRUSTED_PROXY_COUNT", "-1")])
def test_an_address_limit_below_1_or_a_negative_proxy_count_does_not_start(project, name, value):
    result = manage(project, "check", **production_env(), **{name: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}" in result.stderr


def https_as_seen(project: Path, **env: str) -> dict[str, object]:
    """What production makes of a plain-HTTP request that claims `X-Forwarded-Proto: https`:
    whether it is taken for HTTPS, and where SecurityMiddleware redirects it (None: nowhere)."""
    code = (
        "import json\n"
        "from django.middleware.security import SecurityMiddleware\n"
        "from django.test import RequestFactory\n"
        "request = RequestFactory().get('/videos/', HTTP_HOST='videos.example.com', HTTP_X_FORWARDED_PROTO='https')\n"
        "redirect = SecurityMiddleware(lambda request: None).process_request(request)\n"
        "print(json.dumps({'secure': request.is_secure(), 'redirect': redirect and redirect['Location']}))"
    )
    result = manage(project, "shell", "-c", code, **production_env(), **env)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_without_a_proxy_a_client_claiming_https_is_not_believed_and_is_redirected(project):
    assert https_as_seen(project) == {"secure": False, "redirect": "https://videos.example.com/videos/"}
    assert https_as_seen(project, TRUSTED_PROXY_COUNT="0")["secure"] is False


def test_behind_a_proxy_its_x_forwarded_proto_says_https(project):
    assert https_as_seen(project, TRUSTED_PROXY_COUNT="1") == {"secure": True, "redirect": None}


@pytest.mark.parametrize("value", ["username+password", "ip"])
def test_unknown_lockout_parameters_do_not_start(project, value):
    result = manage(project, "check", **production_env(), AXES_LOCKOUT_PARAMETERS=value)
    assert result.returncode != 0
    assert "ImproperlyConfigured: AXES_LOCKOUT_PARAMETERS items are username, ip_address or user_agent" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"VIDEO_SENDFILE_HEADER": "X-Send-It"}, "VIDEO_SENDFILE_HEADER is empty, X-Accel-Redirect or X-Sendfile"),
        (
            {"VIDEO_SENDFILE_HEADER": "X-Accel-Redirect", "AWS_STORAGE_BUCKET_NAME": "videos"},
            "VIDEO_SENDFILE_HEADER names files on local disk",
        ),
    ],
)
def test_a_sendfile_header_the_front_server_cannot_use_does_not_start(project, extra, message):
    result = manage(project, "check", **production_env(), **extra)
    assert result.returncode != 0
    assert message in result.stderr
