"""Hlekkr settings: one module, driven by the environment (see README "Configuration").

The embedded default needs no servers: SQLite, local-memory cache, filesystem storage and a filesystem Celery
transport, all under ``var/``. Setting DATABASE_URL, REDIS_URL, CELERY_BROKER_URL and AWS_STORAGE_BUCKET_NAME
switches each piece to the real service. ``HLEKKR_ENV=production`` refuses to start without real secrets.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from hlekkr.env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_networks,
    env_secret,
    env_str,
    parse_database_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
HLEKKR_ENV = env_str("HLEKKR_ENV", "development")
if HLEKKR_ENV not in ("development", "production", "test"):
    raise ImproperlyConfigured(f"HLEKKR_ENV must be development, production or test, got {HLEKKR_ENV!r}")
PRODUCTION = HLEKKR_ENV == "production"

# Runtime files live outside the `media` app's folder (DESIGN §2): var/ is git-ignored.
VAR_DIR = Path(env_str("HLEKKR_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _development_secret(name: str) -> str:
    """A random secret kept under var/ so sessions and tokens survive restarts of the embedded run."""
    path = VAR_DIR / f".{name}"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_secret("SECRET_KEY")
JWT_SIGNING_KEY = env_secret("JWT_SIGNING_KEY")
DATABASE_URL = env_secret("DATABASE_URL")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")

if PRODUCTION:
    missing = [
        name
        for name, value in (
            ("SECRET_KEY", SECRET_KEY),
            ("DATABASE_URL", DATABASE_URL),
            ("ALLOWED_HOSTS", ALLOWED_HOSTS),
            ("JWT_SIGNING_KEY", JWT_SIGNING_KEY),
        )
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(f"HLEKKR_ENV=production needs {', '.join(missing)}")
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured("SECRET_KEY is too short or too simple for production (50+ characters)")
    if JWT_SIGNING_KEY == SECRET_KEY:
        raise ImproperlyConfigured("JWT_SIGNING_KEY must differ from SECRET_KEY")
else:
    SECRET_KEY = SECRET_KEY or _development_secret("secret_key")
    JWT_SIGNING_KEY = JWT_SIGNING_KEY or _development_secret("jwt_signing_key")
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]", "testserver"]

DEBUG = env_bool("DEBUG", False) and not PRODUCTION

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "storages",
    "hlekkr.accounts",
    "hlekkr.audit",
    "hlekkr.ops",
    "hlekkr.webhooks",
    "media",
    "analysis",
    "review",
    "batches",
    "ratelimit",
]

MIDDLEWARE = [
    "hlekkr.ops.middleware.RequestIdMiddleware",
    "hlekkr.ops.middleware.RequestStatsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "hlekkr.csp.ContentSecurityPolicyMiddleware",  # strict: no inline scripts or styles (hlekkr/csp.py)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's session, auth and message middleware, skipped for a cookie-less token API request
    # (hlekkr/middleware.py); CSRF is Django's own and runs for every request.
    "hlekkr.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "hlekkr.middleware.AuthenticationMiddleware",
    "hlekkr.middleware.LazyMessageMiddleware",  # Django's, storage built on first use (hlekkr/middleware.py)
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After authentication: limits dashboard/admin logins and dashboard writes; X-RateLimit-* on every limited
    # response (API views are limited by ratelimit.throttling.GroupRateThrottle below).
    "ratelimit.middleware.RateLimitMiddleware",
]

ROOT_URLCONF = "hlekkr.urls"
WSGI_APPLICATION = "hlekkr.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/dashboard/login/"
LOGIN_REDIRECT_URL = "/dashboard/"

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
            ]
        },
    }
]

# --- database -------------------------------------------------------------------------------------------
if DATABASE_URL:
    DATABASES = {"default": parse_database_url(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # A database that does not answer must fail the request within seconds (503), not hang a web thread.
        DATABASES["default"]["OPTIONS"].setdefault(  # type: ignore[attr-defined]
            "connect_timeout", env_int("HLEKKR_DB_CONNECT_TIMEOUT", 3, minimum=1)
        )
        # Django's backend with the per-request `SELECT 1` of CONN_HEALTH_CHECKS made only for a connection idle at
        # least this long, and a SELECT that meets a dead connection sent again on a new one (hlekkr/db/base.py).
        DATABASES["default"]["ENGINE"] = "hlekkr.db"
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "hlekkr.sqlite3",
            # WAL lets the web process read while the worker writes; the timeout rides out short write locks.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
HLEKKR_DB_HEALTH_CHECK_IDLE_SECONDS = env_float("HLEKKR_DB_HEALTH_CHECK_IDLE_SECONDS", 5.0, minimum=0.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache ----------------------------------------------------------------------------------------------
REDIS_URL = env_secret("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, reusing one client per pool and a one-round-trip incr (see the module).
            "BACKEND": "ratelimit.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "hlekkr",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "hlekkr"}}
# The media detail read without a database query (media/detail_cache.py) trusts generation tokens that the
# process changing an item bumps in the cache. That holds only when every process (web workers, Celery workers)
# shares the cache: with the embedded run's per-process memory cache a worker's outcome would stay invisible to
# the web processes for the cache lifetime. So it is on with Redis, off with the local cache, unless set.
HLEKKR_DETAIL_CACHE_SHARED = env_bool("HLEKKR_DETAIL_CACHE_SHARED", bool(REDIS_URL))

# --- storage --------------------------------------------------------------------------------------------
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None
AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME", env_str("AWS_DEFAULT_REGION", "us-east-1"))
MEDIA_ROOT = Path(env_str("HLEKKR_MEDIA_ROOT", str(VAR_DIR / "storage")))
MEDIA_URL = "/files/"
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "hlekkr" / "static"]

if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": AWS_S3_ENDPOINT_URL,
            "region_name": AWS_S3_REGION_NAME,
            "default_acl": None,
            "file_overwrite": True,
            "querystring_auth": True,
            "querystring_expire": env_int("HLEKKR_DOWNLOAD_URL_TTL", 300, minimum=1),
            "signature_version": "s3v4",
            "addressing_style": "path" if AWS_S3_ENDPOINT_URL else None,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- REST API -------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hlekkr.accounts.authentication.ApiKeyAuthentication",
        "hlekkr.accounts.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "hlekkr.accounts.permissions.HasScope",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "hlekkr.api.JsonNegotiation",  # DRF's, short-cut for plain JSON
    "DEFAULT_PARSER_CLASSES": [
        "hlekkr.parsers.LimitedJSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "hlekkr.pagination.CursorPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hlekkr.api.exception_handler",
    # Every API view is limited by its `ratelimit_group` (policies in admin; docs/ratelimit.md).
    "DEFAULT_THROTTLE_CLASSES": ["ratelimit.throttling.GroupRateThrottle"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hlekkr API",
    "DESCRIPTION": "Media integrity: upload, analysis, trust scores, human review.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Error responses, strict request bodies (hlekkr/openapi.py), after drf-spectacular's own enum hook.
    # Request bodies are documented as JSON only (the direct upload names multipart/form-data itself): form
    # encodings are still parsed, but their strings ("0" for false, "" for absent) cannot be as strict as JSON.
    "PARSER_WHITELIST": ["hlekkr.parsers.LimitedJSONParser", "rest_framework.parsers.JSONParser"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "hlekkr.openapi.document_errors"],
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("HLEKKR_JWT_ACCESS_SECONDS", 300, minimum=30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("HLEKKR_JWT_REFRESH_SECONDS", 86400, minimum=300)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    # Pinned: decode() only accepts this algorithm, so alg=none and algorithm-confusion tokens are refused.
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "LEEWAY": env_int("HLEKKR_JWT_LEEWAY_SECONDS", 10, minimum=0, maximum=120),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Request bodies: JSON bodies are small; uploads stream to temporary files past 2.5 MB (never whole in memory).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("HLEKKR_MAX_JSON_BYTES", 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_TEMP_DIR = str(VAR_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)

# --- Celery ---------------------------------------------------------------------------------------------
CELERY_DATA_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = env_secret("CELERY_BROKER_URL") or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL == "filesystem://":
    for _sub in ("queue", "processed", "control"):
        (CELERY_DATA_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DATA_DIR / "queue"),
        "data_folder_out": str(CELERY_DATA_DIR / "queue"),
        "processed_folder": str(CELERY_DATA_DIR / "processed"),
        "control_folder": str(CELERY_DATA_DIR / "control"),
        "store_processed": False,
    }
# Longer than the longest task's hard time limit, so a slow task is never redelivered while still running.
CELERY_VISIBILITY_TIMEOUT = env_int("HLEKKR_CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)
CELERY_TASK_TIME_LIMIT = env_int("HLEKKR_TASK_TIME_LIMIT", 900, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("HLEKKR_TASK_SOFT_TIME_LIMIT", 840, minimum=5)
if CELERY_TASK_TIME_LIMIT >= CELERY_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured("HLEKKR_TASK_TIME_LIMIT must be shorter than HLEKKR_CELERY_VISIBILITY_TIMEOUT")
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("HLEKKR_TASK_SOFT_TIME_LIMIT must be shorter than HLEKKR_TASK_TIME_LIMIT")
if not CELERY_BROKER_URL.startswith("filesystem"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        # A broker host that does not answer must not hold a request: connect within 2 s or fail, and do not
        # retry the connection inside a send (kombu's default retry waited 2 s per send during an outage).
        "socket_connect_timeout": env_float("HLEKKR_BROKER_CONNECT_TIMEOUT", 2.0, minimum=0.1),
        "max_retries": 0,
    }
# Sending a task happens in the request path (after an upload commits): when the broker is away, fail the send
# at once instead of retrying inside the request. Nothing is lost: the row stays queued, and it is re-sent when
# a worker's consumer reconnects (hlekkr/ops/broker.py) or by the reconciler.
CELERY_TASK_PUBLISH_RETRY = env_bool("HLEKKR_TASK_PUBLISH_RETRY", False)
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("HLEKKR_BROKER_CONNECT_TIMEOUT", 2.0, minimum=0.1)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ALWAYS_EAGER = env_bool("HLEKKR_CELERY_EAGER", False)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}  # filled by hlekkr/celery.py from each app's beat.py
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Hlekkr knobs that are infrastructure, not tuning (tuning lives in admin-edited models) --------------
HLEKKR_API_KEY_PREFIX = "hk_"
# Seconds each web process remembers a JWT's user and an API key's row (hlekkr/accounts/auth_cache.py): the
# bound on how long a deactivated user, a changed role or a revoked key keeps working in other processes.
HLEKKR_AUTH_CACHE_SECONDS = env_float("HLEKKR_AUTH_CACHE_SECONDS", 5.0, minimum=0)
# The rate limiter reads these on every request (docs/ratelimit.md): django-ratelimit's switch, at its own
# default, and how often a process checks the shared policy version. Set here because reading a setting that
# is not set costs LazySettings a raised AttributeError each time (~1.7 us), one that is set a dict lookup.
RATELIMIT_ENABLE = True
HLEKKR_RATELIMIT_POLICY_TTL = 2.0

# Analysis (analysis/conf.py reads these; docs/analysis.md and docs/bedrock.md explain them).
HLEKKR_PDQ_MAX_DISTANCE = env_int("HLEKKR_PDQ_MAX_DISTANCE", 31, minimum=0, maximum=128)
HLEKKR_PDQ_MIN_QUALITY = env_int("HLEKKR_PDQ_MIN_QUALITY", 50, minimum=0, maximum=100)
HLEKKR_C2PA_TRUST_ANCHORS_FILE = env_str("HLEKKR_C2PA_TRUST_ANCHORS_FILE")  # added to (or replacing) the shipped lists
HLEKKR_C2PA_SHIPPED_TRUST_LIST = env_bool("HLEKKR_C2PA_SHIPPED_TRUST_LIST", True)  # false: the file replaces them
HLEKKR_DETECTOR_BUDGET_SCALE = env_float("HLEKKR_DETECTOR_BUDGET_SCALE", 1.0, minimum=0.01, maximum=100)
# Detectors one analysis runs at a time: 2 shortens one analysis on an idle worker; 1 for workers that already keep
# every core busy with concurrent analyses (batch), where a second thread only adds contention.
HLEKKR_DETECTOR_THREADS = env_int("HLEKKR_DETECTOR_THREADS", 2, minimum=1, maximum=8)
# Detectors the pipeline may run without when they cannot be loaded (every other one is required).
HLEKKR_OPTIONAL_DETECTORS = env_list("HLEKKR_OPTIONAL_DETECTORS")
# Reviewed items the weekly scoring-policy proposal is shadow-evaluated on (analysis/proposals.py).
HLEKKR_SHADOW_EVALUATION_ITEMS = env_int("HLEKKR_SHADOW_EVALUATION_ITEMS", 500, minimum=10, maximum=100_000)
HLEKKR_ANALYSIS_REQUEUE_AFTER = env_int("HLEKKR_ANALYSIS_REQUEUE_AFTER", 60, minimum=1, maximum=86_400)
# A running analysis's claim lapses this long after its worker last renewed it (a killed worker stops renewing).
HLEKKR_ANALYSIS_LEASE_SECONDS = env_int("HLEKKR_ANALYSIS_LEASE_SECONDS", 30, minimum=6, maximum=3600)
HLEKKR_BEDROCK_MODELS = env_str("HLEKKR_BEDROCK_MODELS")  # JSON list; empty: Bedrock step off
# An audit event left unsealed longer than this fails verify_audit and doctor (docs/audit.md: the sequencer).
HLEKKR_AUDIT_UNSEALED_BOUND_SECONDS = env_int("HLEKKR_AUDIT_UNSEALED_BOUND_SECONDS", 120, minimum=1)
HLEKKR_BEDROCK_DAILY_BUDGET_USD = env_float("HLEKKR_BEDROCK_DAILY_BUDGET_USD", 25.0, minimum=0)
HLEKKR_BEDROCK_ENSEMBLE_SIZE = env_int("HLEKKR_BEDROCK_ENSEMBLE_SIZE", 0, minimum=0, maximum=20)
HLEKKR_BEDROCK_REGION = env_str("HLEKKR_BEDROCK_REGION", env_str("AWS_DEFAULT_REGION", "us-east-1"))
HLEKKR_BEDROCK_READ_TIMEOUT = env_int("HLEKKR_BEDROCK_READ_TIMEOUT", 60, minimum=5, maximum=600)

# Media upload limits (media/conf.py reads these; docs/media.md).
HLEKKR_MAX_DIRECT_UPLOAD_BYTES = env_int("HLEKKR_MAX_DIRECT_UPLOAD_BYTES", 25 * 1024**2, minimum=1)
HLEKKR_MAX_MULTIPART_BYTES = env_int("HLEKKR_MAX_MULTIPART_BYTES", 5 * 1024**3, minimum=1)
HLEKKR_MAX_MULTIPART_BYTES_BY_ROLE = env_str("HLEKKR_MAX_MULTIPART_BYTES_BY_ROLE")  # "client=2147483648,..."
HLEKKR_MAX_IMAGE_PIXELS = env_int("HLEKKR_MAX_IMAGE_PIXELS", 50_000_000, minimum=1)
HLEKKR_PART_URL_TTL = env_int("HLEKKR_PART_URL_TTL", 900, minimum=10)
HLEKKR_STALE_UPLOAD_HOURS = env_int("HLEKKR_STALE_UPLOAD_HOURS", 24, minimum=1)
# A storage intent older than this whose object has no row is an orphan the sweep removes (docs/media.md).
HLEKKR_ORPHAN_GRACE_SECONDS = env_int("HLEKKR_ORPHAN_GRACE_SECONDS", 3600, minimum=60)
HLEKKR_MEDIA_DOWNLOAD_URL_TTL = env_int("HLEKKR_MEDIA_DOWNLOAD_URL_TTL", 300, minimum=10)
HLEKKR_FETCH_ALLOWED_HOSTS = env_str("HLEKKR_FETCH_ALLOWED_HOSTS")  # host:port pairs exempt from the SSRF refusal
HLEKKR_FETCH_CONNECT_TIMEOUT = env_float("HLEKKR_FETCH_CONNECT_TIMEOUT", 5.0, minimum=0.1, maximum=120)
HLEKKR_FETCH_TOTAL_TIMEOUT = env_float("HLEKKR_FETCH_TOTAL_TIMEOUT", 30.0, minimum=0.5, maximum=3600)
HLEKKR_WEBHOOKS_ALLOW_LOOPBACK = env_bool("HLEKKR_WEBHOOKS_ALLOW_LOOPBACK", False)
HLEKKR_BATCH_CONCURRENCY_PER_CLIENT = env_int("HLEKKR_BATCH_CONCURRENCY_PER_CLIENT", 8, minimum=1, maximum=1000)
HLEKKR_READINESS_STORAGE_TTL = env_float("HLEKKR_READINESS_STORAGE_TTL", 15.0, minimum=0, maximum=3600)
# How much of a refused request's unread body is drained to keep the connection usable (hlekkr/unread_body.py).
HLEKKR_UNREAD_BODY_DRAIN_BYTES = env_int("HLEKKR_UNREAD_BODY_DRAIN_BYTES", 8 * 1024 * 1024, minimum=0)
HLEKKR_UNREAD_BODY_DRAIN_SECONDS = env_float("HLEKKR_UNREAD_BODY_DRAIN_SECONDS", 5.0, minimum=0, maximum=60)

HLEKKR_METRICS_TOKEN = env_secret("HLEKKR_METRICS_TOKEN")
HLEKKR_METRICS_ALLOWED_NETWORKS = env_networks("HLEKKR_METRICS_ALLOWED_NETWORKS")  # CIDRs matched against REMOTE_ADDR
HLEKKR_WORKER_QUEUES = env_list(
    "HLEKKR_WORKER_QUEUES", ["interactive", "batch", "bedrock", "webhooks", "maintenance", "default"]
)  # queues that must have a worker heartbeat
HLEKKR_REQUEST_STATS_FLUSH_SECONDS = env_float("HLEKKR_REQUEST_STATS_FLUSH_SECONDS", 10.0, minimum=1)
# Alert notifications (hlekkr/ops): email recipients and an optional webhook receiving JSON.
ALERT_EMAILS = env_list("ALERT_EMAILS")
HLEKKR_ALERT_WEBHOOK_URL = env_secret("HLEKKR_ALERT_WEBHOOK_URL")
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "hlekkr@localhost")
HLEKKR_TRUSTED_PROXIES = env_networks("HLEKKR_TRUSTED_PROXIES")

# --- security -------------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
# htmx sends the token from the page (hx-headers on <body>), so no script needs the cookie.
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("HLEKKR_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("HLEKKR_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("HLEKKR_HSTS_PRELOAD", True)
    if env_bool("HLEKKR_BEHIND_TLS_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- logging --------------------------------------------------------------------------------------------
LOG_LEVEL = env_str("HLEKKR_LOG_LEVEL", "INFO").upper()
LOG_JSON = env_bool("HLEKKR_LOG_JSON", PRODUCTION)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "hlekkr.ops.logging.RequestIdFilter"},
        "outage": {"()": "hlekkr.ops.logging.OutageTracebackFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_JSON else "plain",
            "filters": ["request_id", "outage"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # At DEBUG, Django logs each failed template variable lookup with the whole template context in the
        # exception; in admin that context holds the user's password hash (tests/security/test_no_secrets_leak.py).
        "django.template": {"level": "INFO"},
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}

# WhiteNoise serves static files in every mode; in the embedded run it finds them without collectstatic.
WHITENOISE_USE_FINDERS = not PRODUCTION
