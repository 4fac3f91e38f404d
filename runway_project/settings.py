"""Settings for the Runway video project, read from the environment (and `.env` when present)."""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from runway_project import installation, local_stack, storage

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")
# A command in a second terminal next to `make run` (generate_video, shell) uses the broker and the
# Runway simulator that run_local started, while it runs (runway_project/local_stack.py).
# Empty: none written or joined (the tests' setting).
_local_stack_file = env.str("RUNWAY_LOCAL_STACK_FILE", default=str(BASE_DIR / "var" / "local-stack.json"))
LOCAL_STACK_FILE = Path(_local_stack_file) if _local_stack_file else None
LOCAL_STACK = local_stack.stack_join(LOCAL_STACK_FILE, os.environ) if LOCAL_STACK_FILE else {}

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env("SECRET_KEY", default="django-insecure-local-development-only")
else:
    # A production secret has no default: a missing one must stop the start-up.
    SECRET_KEY = env("SECRET_KEY", default="")
    if not SECRET_KEY:
        raise ImproperlyConfigured(
            "Set the SECRET_KEY environment variable: DEBUG is off, so it has no default. "
            "On a developer's machine, run commands next to a running `make run`, or with DEBUG=True."
        )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The reverse proxies in front of the app (a load balancer, nginx): 0 when clients reach gunicorn
# directly. Only what a proxy of ours adds to a request is believed: the client's address in
# X-Forwarded-For (the number of proxies tells which entry that is: runway_project/lockout.py) and
# X-Forwarded-Proto (below). With 0 both are the client's own words, and ignored.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT is the number of proxies in front of the app: 0 or more.")

if not DEBUG:
    # Production serves HTTPS only.
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancers and monitors probe the health report over plain HTTP, on the machine's own
    # address; it sets no cookie, and tells anyone only up or down, so it answers there instead of
    # redirecting (its details need METRICS_TOKEN).
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    if TRUSTED_PROXY_COUNT > 0:
        # The proxy ended TLS and says so: it must set the header itself, replacing any the client
        # sent (nginx: `proxy_set_header X-Forwarded-Proto $scheme;`). Without a proxy any client
        # could send it, and a request over plain HTTP would pass for HTTPS.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # The Content-Security-Policy header (its middleware below); the app adds the library's checks.
    "csp",
    "videos",
    "api",
    "sharing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from STATIC_ROOT (or the source folders under DEBUG), before anything
    # else of ours runs: the README's gunicorn command serves a complete site.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    "runway_project.headers.PermissionsPolicyMiddleware",
    # A view that meets a vanished database (a restart, a failover) answers a 503 page, not a 500.
    "runway_project.errors.DatabaseUnavailableMiddleware",
    # Before anything reads the body (CSRF reads the form): an oversized upload is refused unread.
    "runway_project.uploads.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Times in the user's own time zone, from the `tz` cookie the pages' script sets.
    "runway_project.timezones.TimeZoneMiddleware",
]

# The largest request body: the largest clip the form takes (videos/clips.py, 64 MB) and room for
# the form's fields. Larger ones are refused with a 413 page before they are read
# (runway_project/uploads.py).
REQUEST_MAX_BYTES = env.int("REQUEST_MAX_BYTES", default=64 * 1000 * 1000 + 256 * 1024)

ROOT_URLCONF = "runway_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "videos.context_processors.runway",
            ],
        },
    },
]

WSGI_APPLICATION = "runway_project.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker share the file. Transactions take the write lock when they
    # begin (so they wait for it, up to the timeout, instead of failing on a lock upgrade), and
    # write-ahead logging lets readers go on while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that is gone fails a new connection within seconds, not after the system's TCP
    # timeout of minutes: pages answer 503 and the worker's steps are retried.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
# Keep each process's connection open between requests and tasks (checked before reuse): opening
# one per request or task step costs more than the step itself (docs/PERFORMANCE.md).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# On PostgreSQL, a worker's threads share a pool of at most this many connections (Django's own
# pooling, psycopg_pool, switched on when the worker starts: runway_project/celery.py), taken for a
# step and given back after it, and while a step waits on Runway: its dozens of threads hold a few
# connections, not one each, and several workers fit in PostgreSQL's max_connections. A thread
# waits up to DATABASE_POOL_TIMEOUT seconds for a free one. 0: a connection per thread, kept
# CONN_MAX_AGE seconds. The web tier keeps one per process (CONN_MAX_AGE): a gunicorn worker has
# one thread, and a pool would make a page wait out its timeout for a database that is down.
DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=16)
DATABASE_POOL_TIMEOUT = env.float("DATABASE_POOL_TIMEOUT", default=10.0)
# Django's cache: today only the API's per-key rate limit counts in it. The default is each process's
# own memory (a limit per process); redis://host:6379/1 shares the count between processes.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------------
# whitenoise serves them from the app (WhiteNoiseMiddleware above). In production
# (DEBUG off) `manage.py collectstatic` writes them to STATIC_ROOT under content-hashed names,
# each beside a gzip (and brotli, when the Brotli package is installed) copy. whitenoise sends
# the hashed ones as `immutable` for ten years (a changed file gets a new name), the rest
# (the unhashed copies collectstatic also writes) for 60 seconds. Under DEBUG
# they come straight from static/ and the apps, unhashed, with no collectstatic.
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "var" / "static")))
STATICFILES_BACKEND = (
    "django.contrib.staticfiles.storage.StaticFilesStorage"
    if DEBUG
    else "whitenoise.storage.CompressedManifestStaticFilesStorage"
)
# --- end static files ---------------------------------------------------------------------

MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "media")))
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": STATICFILES_BACKEND},
}

# Videos, posters and input images go to MEDIA_ROOT, or to an S3-compatible bucket when one is
# named (AWS S3, Cloudflare R2, MinIO, ...). The bucket should stay private: the app serves
# each file to its owner through its own views.
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    STORAGES = {
        "default": storage.bucket_storage(
            bucket_name=AWS_STORAGE_BUCKET_NAME,
            endpoint_url=env("AWS_S3_ENDPOINT_URL", default=None),
            region_name=env("AWS_S3_REGION_NAME", default=None),
            access_key=env("AWS_ACCESS_KEY_ID", default=None),
            secret_key=env("AWS_SECRET_ACCESS_KEY", default=None),
        ),
        # Static files stay on the app's disk, served by whitenoise as without a bucket.
        "staticfiles": {"BACKEND": STATICFILES_BACKEND},
    }

# Serving videos and posters (videos/serving.py), after the view's permission check.
# Browsers cache a file privately for VIDEO_CACHE_SECONDS. VIDEO_SENDFILE_HEADER hands the transfer
# to the front server: "X-Accel-Redirect" (nginx; VIDEO_SENDFILE_PREFIX is an `internal` location
# aliasing MEDIA_ROOT) or "X-Sendfile" (Apache mod_xsendfile); empty: the app streams the file,
# ranges included. With a bucket, VIDEO_PRESIGNED_URL_SECONDS > 0 redirects to a presigned URL
# that works for that many seconds instead.
VIDEO_CACHE_SECONDS = env.int("VIDEO_CACHE_SECONDS", default=3600)
VIDEO_SENDFILE_HEADER = env("VIDEO_SENDFILE_HEADER", default="")
if VIDEO_SENDFILE_HEADER not in ("", "X-Accel-Redirect", "X-Sendfile"):
    raise ImproperlyConfigured("VIDEO_SENDFILE_HEADER is empty, X-Accel-Redirect or X-Sendfile.")
if VIDEO_SENDFILE_HEADER and AWS_STORAGE_BUCKET_NAME:
    raise ImproperlyConfigured("VIDEO_SENDFILE_HEADER names files on local disk: leave it empty with a bucket.")
VIDEO_SENDFILE_PREFIX = env("VIDEO_SENDFILE_PREFIX", default="/protected-media/")
VIDEO_PRESIGNED_URL_SECONDS = env.int("VIDEO_PRESIGNED_URL_SECONDS", default=0) if AWS_STORAGE_BUCKET_NAME else 0

# --- Security headers ---------------------------------------------------------------------
# Pages run only the scripts and styles of our own static files: no inline script, style
# attribute or event handler (the admin's pages have none either), nothing from another site.
# Videos and posters come from our own views; with an S3 bucket those may redirect to presigned
# links on the bucket's host, which img-src and media-src then allow (CSP_MEDIA_SOURCES adds
# others, e.g. a CDN).
_media_sources = ["'self'", *env.list("CSP_MEDIA_SOURCES", default=[])]
if AWS_STORAGE_BUCKET_NAME:
    _endpoint = env("AWS_S3_ENDPOINT_URL", default="")
    if _endpoint:
        _scheme, _, _host = _endpoint.rstrip("/").partition("://")
        _media_sources += [f"{_scheme}://{_host}", f"{_scheme}://*.{_host}"]
    else:
        _media_sources.append("https://*.amazonaws.com")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # blob: for the preview of an image the user picks, and for reading a chosen clip's length
        # (the price of an edit), which the form's script does from the file itself before anything
        # is uploaded (URL.createObjectURL).
        "img-src": [*_media_sources, "blob:"],
        "media-src": [*_media_sources, "blob:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# A form refused by the CSRF check gets our page (runway_project/errors.py): Django's own has an
# inline style, which the policy above blocks, and says nothing a user can act on.
CSRF_FAILURE_VIEW = "runway_project.errors.csrf_failure"
# The full URL only to our own pages; other sites see none (a video's URL names its id).
SECURE_REFERRER_POLICY = "same-origin"
# Browser features the site never uses, refused to it and to anything it could embed
# (runway_project/headers.py sends it).
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), usb=()"
)
# --- end security headers -----------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"share_tokens": {"()": "sharing.logs.ShareTokenFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # "Not Found: /s/<token>/" and the like: a share link's token never reaches a log line.
        "django.request": {"filters": ["share_tokens"]},
        "videos": {"level": env("LOG_LEVEL", default="INFO")},
        # Celery's "received" and "succeeded" lines for every step (a job takes one every poll
        # interval): videos.* logs what happens to each job instead. Failures still show.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
    },
}

# --- Logins and email ---------------------------------------------------------------------

# django-axes counts failed logins (the site's and the admin's) and refuses a login for the
# cool-off after AXES_FAILURE_LIMIT failures. Its backend must come first: it refuses a locked-out
# login before the password is checked. Staff see and clear lockouts in the admin ("Axes").
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_MINUTES = env.int("AXES_COOLOFF_MINUTES", default=15)
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured("AXES_FAILURE_LIMIT and AXES_COOLOFF_MINUTES must be at least 1.")
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
# Each comma-separated item is counted on its own; "+" joins parameters counted together. The
# default counts a user name's failures from one address (someone guessing from elsewhere cannot
# lock its owner out everywhere), and an address's failures whatever the names it tries (one
# password tried on many names is stopped too), the latter up to AXES_ADDRESS_FAILURE_LIMIT.
AXES_LOCKOUT_PARAMETERS: list[str | list[str]] = []
for _item in env.list("AXES_LOCKOUT_PARAMETERS", default=["username+ip_address", "ip_address"]):
    _parts = [part.strip() for part in _item.split("+")]
    if not _parts or not set(_parts) <= {"username", "ip_address", "user_agent"}:
        raise ImproperlyConfigured(
            "AXES_LOCKOUT_PARAMETERS items are username, ip_address or user_agent, joined by + "
            f"to count them together, not {_item!r}."
        )
    AXES_LOCKOUT_PARAMETERS.append(_parts if len(_parts) > 1 else _parts[0])
# Behind proxies the client's address is the one the outermost of them saw (TRUSTED_PROXY_COUNT,
# at the top). 0: REMOTE_ADDR.
AXES_CLIENT_IP_CALLABLE = "runway_project.lockout.client_ip_address"
AXES_LOCKOUT_CALLABLE = "runway_project.lockout.lockout_response"
# Ours, not django-axes': the failures the `ip_address` item (an address alone) allows, whatever
# the user names, before every login from that address is refused for the cool-off. Higher than
# AXES_FAILURE_LIMIT: everyone behind one NAT or office router shares an address, and their typos
# with it. Counted by runway_project.lockout.LockoutHandler, axes' database handler with this
# limit, whose successful login forgets only that user's failures (not the address's).
AXES_ADDRESS_FAILURE_LIMIT = env.int("AXES_ADDRESS_FAILURE_LIMIT", default=20)
if AXES_ADDRESS_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("AXES_ADDRESS_FAILURE_LIMIT must be at least 1.")
AXES_HANDLER = "runway_project.lockout.LockoutHandler"
# A successful login forgets the user's earlier failures.
AXES_RESET_ON_SUCCESS = True

# Mail, for password resets and alerts (videos/services/alerts.py):
# `smtp+tls://user:password@smtp.example.com:587`, or `consolemail://` to print them. Without it the
# password-reset pages answer 404 and no alert is sent.
_email_url = env("EMAIL_URL", default="")
if _email_url:
    globals().update(env.email_url("EMAIL_URL"))
    DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="webmaster@localhost")
EMAIL_CONFIGURED = bool(_email_url)
# Seconds a mail server may take to answer: a hung one must not hold a worker's thread (an alert)
# or a web request (a password reset) for ever, which is smtplib's default.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
PASSWORD_RESET_ENABLED = EMAIL_CONFIGURED
# Whether a user may share a done video with everyone who has an account here (the Team view), not
# only with their groups. Off: a video shared with everyone is seen by its owner's groups only.
SHARE_WITH_EVERYONE = env.bool("SHARE_WITH_EVERYONE", default=False)
# The address people open the site at, which links in emails lead to (a "video done" email links to
# the video's page): set it in production, e.g. https://videos.example.com. The default is make run's.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
if not SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"SITE_URL is the site's address, starting with https:// or http://, not {SITE_URL!r}.")

# --- Runway -------------------------------------------------------------------------------

RUNWAY_API_KEY = env("RUNWAY_API_KEY", default="")
# Staff (active, with an email address) are told once when Runway's credit balance falls under this
# many credits, and again only after it has been above it (EMAIL_URL sends it). 0: never.
RUNWAY_CREDITS_LOW = env.int("RUNWAY_CREDITS_LOW", default=0)
if RUNWAY_CREDITS_LOW < 0:
    raise ImproperlyConfigured("RUNWAY_CREDITS_LOW is a number of credits, 0 for no alert.")
RUNWAY_API_BASE_URL = env("RUNWAY_API_BASE_URL", default="https://api.dev.runwayml.com")
RUNWAY_API_VERSION = env("RUNWAY_API_VERSION", default="2024-11-06")
RUNWAY_TEXT_MODEL = env("RUNWAY_TEXT_MODEL", default="gen4.5")
RUNWAY_IMAGE_MODEL = env("RUNWAY_IMAGE_MODEL", default="gen4_turbo")
RUNWAY_VIDEO_MODEL = env("RUNWAY_VIDEO_MODEL", default="aleph2")
# Local development only: lets a webhook reach a private, loopback or link-local address (api/addresses.py).
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", default=False)
# Runway's API served to scripts (api/): how long a task's output link works (Runway's: 24-48 h),
# and how many requests one key may make a minute (counted in the cache, CACHE_URL).
API_OUTPUT_LINK_SECONDS = env.int("API_OUTPUT_LINK_SECONDS", default=24 * 3600)
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=600)
# Share links (sharing/): the longest a link may work, in days (owners pick 1, 7 or 30 up to it),
# and how many requests one client address may make a minute to the anonymous pages: each range a
# video player asks for counts, a playback about 3 to 10, so a whole office behind one address
# can watch; a token is 256 random bits, so the limit guards bandwidth, not guessing. 0: no limit.
SHARE_LINK_MAX_DAYS = env.int("SHARE_LINK_MAX_DAYS", default=30)
if SHARE_LINK_MAX_DAYS < 1:
    raise ImproperlyConfigured("SHARE_LINK_MAX_DAYS is a number of days, at least 1.")
SHARE_LINK_RATE_PER_MINUTE = env.int("SHARE_LINK_RATE_PER_MINUTE", default=120)
# Threads of each worker process that post webhooks: apart from the pool that polls Runway, so a
# slow receiver never holds a polling slot.
WEBHOOK_THREADS = env.int("WEBHOOK_THREADS", default=4)
# Threads of a worker (threads or solo pool) that poll Runway for the jobs whose polls wait in the
# worker rather than in the broker (videos/services/polling.py); 0 sends every poll through the broker.
# Made as needed, up to this many: polls out at once are about the jobs held x Runway's answer time
# / the interval, plus the downloads; 64 were all busy at 1,000 jobs, 5 s and 250 ms.
WORKER_POLL_THREADS = env.int("WORKER_POLL_THREADS", default=128)
# Threads of such a worker that run the poll step of a job whose poll found more than "still
# waiting" (the video done: they store it and its poster), each with a database connection.
WORKER_FINISH_THREADS = env.int("WORKER_FINISH_THREADS", default=8)
# What a worker adds to its niceness when it starts, and to its session's where the session is its own
# (runway_project/celery.py): on a machine it shares with the web server, a page's answer goes before a
# worker's step, which can wait milliseconds. Status p99 with 200 browsers while 1,000 jobs start:
# about 20-40 ms at 10, 360-440 ms at 0 (docs/PERFORMANCE.md). 0: the worker keeps its priority.
WORKER_NICENESS = env.int("WORKER_NICENESS", default=10)
RUNWAY_UPSCALE_MODEL = env("RUNWAY_UPSCALE_MODEL", default="magnific_video_upscaler_creative")
RUNWAY_POLL_INTERVAL = env.int("RUNWAY_POLL_INTERVAL", default=10)
# Two limits, one for each place a job waits. RUNWAY_MAX_QUEUE_WAIT: seconds from its creation in
# which it may be sent to Runway (it waits for a free worker, or for Runway to take creates again
# after a 429 or 503); a job not sent by then never is, and ends timed_out with nothing charged.
# RUNWAY_MAX_WAIT: seconds from Runway accepting it in which it must finish there; then its task is
# deleted at Runway and it ends timed_out (Runway bills a task it had started).
RUNWAY_MAX_QUEUE_WAIT = env.int("RUNWAY_MAX_QUEUE_WAIT", default=300)
RUNWAY_MAX_WAIT = env.int("RUNWAY_MAX_WAIT", default=300)
# The largest video the worker will store (Runway's are a few MB to a few tens of MB).
RUNWAY_MAX_VIDEO_BYTES = env.int("RUNWAY_MAX_VIDEO_BYTES", default=200_000_000)
# How often beat looks for jobs whose task message was lost (Redis restarted, worker killed).
RUNWAY_SWEEP_INTERVAL = env.int("RUNWAY_SWEEP_INTERVAL", default=60)
# How often beat has the worker read the account's credit balance, which the dashboard shows.
RUNWAY_CREDITS_REFRESH = env.int("RUNWAY_CREDITS_REFRESH", default=60)
# Every generation costs money: how many unfinished jobs, and how many a rolling day, per user.
RUNWAY_MAX_ACTIVE_PER_USER = env.int("RUNWAY_MAX_ACTIVE_PER_USER", default=3)
RUNWAY_DAILY_LIMIT_PER_USER = env.int("RUNWAY_DAILY_LIMIT_PER_USER", default=50)
# Credits (1 credit = 1 US cent) each user may spend a calendar month (UTC), unless staff set
# theirs in the admin. 0 turns generating off.
_monthly_budget = env.str("RUNWAY_MONTHLY_BUDGET_PER_USER", default="10000").strip()
if not (_monthly_budget.isascii() and _monthly_budget.isdigit()):
    raise ImproperlyConfigured(
        "RUNWAY_MONTHLY_BUDGET_PER_USER must be a whole number of credits, 0 or more "
        f"(1 credit = 1 US cent; 0 turns generating off), not {_monthly_budget!r}."
    )
RUNWAY_MONTHLY_BUDGET_PER_USER = int(_monthly_budget)


from videos.catalog import DEFAULT_PRICE_CEILING as _DEFAULT_PRICE_CEILING  # noqa: E402 (imports no Django)


def _prices(text: str) -> dict[str, float]:
    """RUNWAY_PRICES: "model=credits per second,..." for models Runway publishes no price for."""
    from videos.model_table import OFFERS  # the one table of models (imports no Django)

    prices: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        model, _, figure = item.partition("=")
        try:
            price = float(figure)
        except ValueError:
            price = -1.0
        if model.strip() not in {m for m, _ in OFFERS} or not 0 < price < 10_000:
            raise ImproperlyConfigured(
                f"RUNWAY_PRICES: {item!r} is not a model of the table and its credits per second "
                '(e.g. "kling3.0_pro=20,seedance2=36").'
            )
        prices[model.strip()] = price
    return prices


# What a model costs per second where Runway publishes no price: the operator's figures, else the
# ceiling every such job is reserved at (videos/catalog.py), so that a budget is never overspent.
RUNWAY_PRICES = _prices(env.str("RUNWAY_PRICES", default=""))
RUNWAY_PRICE_CEILING = env.float("RUNWAY_PRICE_CEILING", default=_DEFAULT_PRICE_CEILING)
if not 0 < RUNWAY_PRICE_CEILING < 10_000:
    raise ImproperlyConfigured("RUNWAY_PRICE_CEILING must be a number of credits per second above 0.")
# Set by `make run` when it starts the simulator; every page then says videos are simulated.
RUNWAY_SIMULATED = env.bool("RUNWAY_SIMULATED", default=False)
# Runway asks not to poll a task more often than once every five seconds.
if RUNWAY_POLL_INTERVAL < 5:
    raise ImproperlyConfigured("RUNWAY_POLL_INTERVAL must be at least 5 seconds.")
if RUNWAY_MAX_WAIT < RUNWAY_POLL_INTERVAL:
    raise ImproperlyConfigured("RUNWAY_MAX_WAIT must be at least RUNWAY_POLL_INTERVAL.")
if RUNWAY_MAX_QUEUE_WAIT < 1:
    raise ImproperlyConfigured("RUNWAY_MAX_QUEUE_WAIT must be at least 1 second.")
if RUNWAY_CREDITS_REFRESH < 1:
    raise ImproperlyConfigured("RUNWAY_CREDITS_REFRESH must be at least 1 second.")

# --- Celery -------------------------------------------------------------------------------

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://localhost:6379/0")
# The queue is the installation's own unless CELERY_QUEUE names another: named after its database
# (runway_project/installation.py), so that two installations on one broker never take each other's
# work, and every process of one installation (same DATABASE_URL) finds the others' messages.
INSTALLATION_DATABASE = installation.database_description(DATABASES["default"])
INSTALLATION_QUEUE_DERIVED = not env.str("CELERY_QUEUE", default="")
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="") or installation.default_queue(INSTALLATION_DATABASE)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
# A step makes at most two short HTTP calls; anything near these limits is stuck.
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
# The database row is the truth, so a message is acknowledged only after its step ran,
# and a worker that dies hands its message back instead of losing it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A step spends its time waiting on Runway (100-300 ms a call across the internet, seconds for a
# download), not computing: one process of threads keeps a thousand jobs moving where one
# process per core cannot (docs/PERFORMANCE.md). On PostgreSQL the threads share the worker's pool
# of DATABASE_POOL_SIZE connections.
CELERY_WORKER_POOL = env("CELERY_WORKER_POOL", default="threads")
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=64)
# A broker that is down or hangs must not hold a web request: connecting, and each answer from
# Redis, wait at most this long, and a publish is tried twice. A message that still cannot be sent
# is not lost: the job's row says its step is due, and the sweep sends it once the broker is back.
CELERY_BROKER_TIMEOUT = env.float("CELERY_BROKER_TIMEOUT", default=1.0)
CELERY_BROKER_CONNECTION_TIMEOUT = CELERY_BROKER_TIMEOUT
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# A broker can go silent without closing a connection: a managed Redis failing over, a NAT or a
# firewall forgetting an idle flow. Nothing then arrives and nothing says so, so a worker checks:
# RabbitMQ's heartbeats go every CELERY_BROKER_HEARTBEAT seconds and two missed drop the connection;
# on Redis, a BRPOP (answered within its 1 s timeout by a live server) that waits that much longer
# drops it (kombu 5.7), and redis-py pings a connection idle that long before using it. The worker
# then reconnects: about 2 x CELERY_BROKER_HEARTBEAT seconds after the failover (README: Operating
# it). TCP keepalive catches a peer whose whole machine is gone.
CELERY_BROKER_HEARTBEAT = env.int("CELERY_BROKER_HEARTBEAT", default=10)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith(("redis", "sentinel")):  # redis://, rediss://, redis+socket://, sentinel://
    # Redis's own options. It hands a message taken but not acknowledged out again after the
    # visibility timeout (RabbitMQ does when the worker's connection closes); countdowns are seconds
    # to minutes, so an hour is far above any.
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        visibility_timeout=3600,
        socket_connect_timeout=CELERY_BROKER_TIMEOUT,
        socket_timeout=CELERY_BROKER_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=CELERY_BROKER_HEARTBEAT,
    )
if CELERY_BROKER_URL.startswith(("amqp", "pyamqp")):
    # RabbitMQ's: each answer waits at most CELERY_BROKER_TIMEOUT, as Redis's do, and each publish
    # waits for RabbitMQ to confirm it. A publish is otherwise a write that a stranded connection
    # swallows: after a failover, the web server's, beat's and the worker's pooled connections lost
    # every message without an error, for good. Confirmed, the first publish fails, and the retry
    # reconnects. Without the limit, py-amqp waits for an answer for ever: a worker that reconnected
    # after a failover then hung, closing its old event connection politely (tests/test_deploys.py).
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        confirm_publish=True, read_timeout=CELERY_BROKER_TIMEOUT, write_timeout=CELERY_BROKER_TIMEOUT
    )
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker, for a machine without Redis: messages are files that the web server
    # and the worker share. One machine only; `make run` picks it when no Redis answers. kombu's
    # own file transport lets a consumer read a message file before it is written, and the worker
    # dies of it: ours writes each file under another name and renames it (embedded_broker.py).
    CELERY_BROKER_TRANSPORT = "runway_project.embedded_broker:Transport"
    _broker_dir = Path(env("CELERY_BROKER_DIR", default=str(BASE_DIR / "var" / "broker")))
    for _folder in ("queue", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        data_folder_in=str(_broker_dir / "queue"),
        data_folder_out=str(_broker_dir / "queue"),
        control_folder=str(_broker_dir / "control"),
    )
# Celery closes the database connection after every task unless told to reuse it; the worker
# instead closes it as Django does (runway_project/celery.py), and Celery only every 1,000 tasks.
CELERY_DB_REUSE_MAX = 1000
# Each worker writes here when it last took a message, pinging itself every 10 s through the broker
# (runway_project/liveness.py); `manage.py health --worker` fails once it is WORKER_STALE_AFTER
# seconds old: alive, but taking nothing. Several workers on one machine each need their own file.
WORKER_HEARTBEAT_FILE = env("WORKER_HEARTBEAT_FILE", default=str(BASE_DIR / "var" / "worker-heartbeat"))
WORKER_STALE_AFTER = env.int("WORKER_STALE_AFTER", default=60)
if WORKER_STALE_AFTER < 20:
    raise ImproperlyConfigured("WORKER_STALE_AFTER must be at least 20 seconds: a worker pings itself every 10.")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker or beat that loses the broker tries to reconnect for as long as it is away (None: for
# ever; Celery's default gives up after 100 tries, some 45 minutes, and 0 would not retry at all).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A channel error is handled like a lost connection: the worker reconnects instead of stopping.
# RabbitMQ closes the channel of a worker that held a message unacknowledged for longer than its
# `consumer_timeout` (30 minutes by default; a countdown may be up to an hour, Runway's Retry-After).
CELERY_BROKER_CHANNEL_ERROR_RETRY = True
# After a lost connection Celery lowers the worker's prefetch count and raises it back as the tasks
# of the old connection finish, from each task's own thread with the threads pool: a write to the
# broker connection that the worker's main thread uses, which py-amqp does not allow. On RabbitMQ
# the reconnected worker then stopped taking messages, or broke its new connection
# (tests/test_deploys.py). Take the full count back at once instead.
CELERY_WORKER_ENABLE_PREFETCH_COUNT_REDUCTION = False
CELERY_BEAT_SCHEDULE = {
    # A message the worker could not take within the interval is dropped: the next one replaces it
    # (sweeps that waited behind a busy queue would otherwise run together, each sending the same
    # jobs' steps again).
    "sweep-generations": {
        "task": "videos.tasks.sweep_generations",
        "schedule": RUNWAY_SWEEP_INTERVAL,
        "options": {"expires": RUNWAY_SWEEP_INTERVAL},
    },
    "refresh-credit-balance": {
        "task": "videos.tasks.refresh_credit_balance",
        "schedule": RUNWAY_CREDITS_REFRESH,
        "options": {"expires": RUNWAY_CREDITS_REFRESH},
    },
}
# Alerts by email to staff (videos/services/alerts.py, EMAIL_URL): checked every
# ALERT_CHECK_INTERVAL seconds, each sent once per crossing. Long-overdue jobs always; failing jobs
# when more than ALERT_FAILED_SHARE (0-1; 0: never) of the jobs that ended in the last hour (not
# counting cancelled ones, and only once ALERT_FAILED_MIN_JOBS ended) failed or timed out.
ALERT_CHECK_INTERVAL = env.int("ALERT_CHECK_INTERVAL", default=60)
ALERT_FAILED_SHARE = env.float("ALERT_FAILED_SHARE", default=0.5)
ALERT_FAILED_MIN_JOBS = env.int("ALERT_FAILED_MIN_JOBS", default=10)
if ALERT_CHECK_INTERVAL < 1 or not 0 <= ALERT_FAILED_SHARE <= 1 or ALERT_FAILED_MIN_JOBS < 1:
    raise ImproperlyConfigured(
        "ALERT_CHECK_INTERVAL and ALERT_FAILED_MIN_JOBS are at least 1, ALERT_FAILED_SHARE between 0 and 1."
    )
CELERY_BEAT_SCHEDULE["check-alerts"] = {
    "task": "videos.tasks.check_alerts",
    "schedule": ALERT_CHECK_INTERVAL,
    "options": {"expires": ALERT_CHECK_INTERVAL},
}
# Runway's own figures of what was spent, per day and model, beside the spend ledger's: once a day,
# after midnight UTC, when yesterday's are complete (staff can also ask for it in the admin).
RUNWAY_USAGE_CHECK_HOUR = env.int("RUNWAY_USAGE_CHECK_HOUR", default=1)
CELERY_BEAT_SCHEDULE["reconcile-usage"] = {
    "task": "videos.tasks.reconcile_usage",
    "schedule": crontab(hour=RUNWAY_USAGE_CHECK_HOUR, minute=10),
    "options": {"expires": 3600},
}
# Webhook deliveries a lost signal or message missed are made up for (api/webhooks.py).
CELERY_BEAT_SCHEDULE["webhooks-catch-up"] = {
    "task": "api.tasks.webhooks_catch_up",
    "schedule": 30,
    "options": {"expires": 30},
}
# The API's uploads (POST /v1/uploads) are deleted a day after they were made.
CELERY_BEAT_SCHEDULE["expire-api-uploads"] = {
    "task": "api.tasks.expire_uploads",
    "schedule": 3600,
    "options": {"expires": 3600},
}
CELERY_BEAT_SCHEDULE_FILENAME = env(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(BASE_DIR / "var" / "celerybeat-schedule")
)

# --- Monitoring ---------------------------------------------------------------------------
# The bearer token that opens /metrics and the details of /healthz to a monitor
# (`Authorization: Bearer <token>`, runway_project/monitoring.py). Empty: neither is open.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
if not DEBUG:
    # Prometheus scrapes each web server's own address over plain HTTP, as monitors probe /healthz:
    # /metrics answers there instead of redirecting to HTTPS (the token opens it, not the scheme).
    SECURE_REDIRECT_EXEMPT.append(r"^metrics$")
# The worker's /metrics (runway_project/worker_metrics.py): a port of its own, behind the same
# token; 0 (or no METRICS_TOKEN): none. WORKER_METRICS_ADDRESS is the address it listens on.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
WORKER_METRICS_ADDRESS = env.str("WORKER_METRICS_ADDRESS", default="0.0.0.0")  # noqa: S104 (a monitor elsewhere scrapes it)
if not 0 <= WORKER_METRICS_PORT <= 65535:
    raise ImproperlyConfigured(f"WORKER_METRICS_PORT must be a port number, or 0 for none: {WORKER_METRICS_PORT}")
