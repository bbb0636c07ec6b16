"""One settings module for every environment; production differs only by env (see .env.example)."""

from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from apps.core.env import (
    check_fernet_keys,
    env_bool,
    env_int,
    env_list,
    env_required,
    env_secret_file,
    env_str,
    env_url,
    random_secret_key,
    redis_neighbour_db,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("READINESS_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
# With DEBUG on, missing pages still show the site's 404; true shows Django's page with the URL list.
READINESS_TECHNICAL_404 = env_bool("READINESS_TECHNICAL_404", False)
# Locals and POST fields marked sensitive (keys, secrets, new tokens) show as stars on the error
# page even with DEBUG on; Django's own filter only hides them with DEBUG off.
DEFAULT_EXCEPTION_REPORTER_FILTER = "apps.core.error_reports.SecretsHiddenFilter"
# Keys kept in files under var/ (generated on first use) belong to one machine: `make run` (DEBUG)
# and, with READINESS_EMBEDDED=true, the test suite (readiness/pytest_env.py), the benchmarks and a
# single-machine install. Anywhere else each host would make its own keys, and a worker could not
# decrypt what the web encrypted: the keys must come from the environment, the same on every host.
READINESS_EMBEDDED = DEBUG or env_bool("READINESS_EMBEDDED", False)
_KEYS_HINT = (
    "With DEBUG off, every web and worker process must share the same SECRET_KEY and FIELD_ENCRYPTION_KEY "
    "(see .env.example). On a single machine, READINESS_EMBEDDED=true keeps generated keys under "
    "READINESS_VAR_DIR."
)
if READINESS_EMBEDDED:
    SECRET_KEY = env_secret_file("SECRET_KEY", VAR_DIR / "secret_key", generate=random_secret_key)
else:
    SECRET_KEY = env_required("SECRET_KEY", _KEYS_HINT)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Fernet keys for secrets stored in the database (endpoint API keys, connector secrets).
# Comma-separated: the first encrypts, all decrypt, so keys can be rotated. Checked here, so a
# bad key stops start-up by name instead of failing the first decryption in some worker.
if env_list("FIELD_ENCRYPTION_KEYS"):
    FIELD_ENCRYPTION_KEYS = check_fernet_keys("FIELD_ENCRYPTION_KEYS", env_list("FIELD_ENCRYPTION_KEYS"))
elif READINESS_EMBEDDED and not env_str("FIELD_ENCRYPTION_KEY").strip():
    _key_file = VAR_DIR / "field_encryption_key"
    FIELD_ENCRYPTION_KEYS = check_fernet_keys(
        str(_key_file),
        [env_secret_file("FIELD_ENCRYPTION_KEY", _key_file, generate=lambda: Fernet.generate_key().decode())],
    )
else:
    _rotation = "(FIELD_ENCRYPTION_KEYS instead when rotating.) "
    FIELD_ENCRYPTION_KEYS = check_fernet_keys(
        "FIELD_ENCRYPTION_KEY", [env_required("FIELD_ENCRYPTION_KEY", _rotation + _KEYS_HINT)]
    )

INSTALLED_APPS = [
    "apps.core.admin_apps.SuperuserAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "apps.core",
    "apps.orgs",
    "apps.projects",
    "apps.probes",
    "apps.checklists",
    "apps.signoffs",
    "apps.reports",
    "apps.integrations",
    "apps.costs",
    "apps.training",
    "apps.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "apps.core.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.views.NotFoundPageMiddleware",  # last: it answers missing pages with the site's 404, DEBUG too
]

ROOT_URLCONF = "readiness.urls"
WSGI_APPLICATION = "readiness.wsgi.application"
ASGI_APPLICATION = "readiness.asgi.application"

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
                "apps.orgs.context_processors.organizations",
                "apps.reports.queue_views.queue_badge",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", schemes=("postgres", "postgresql", "sqlite"))
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
        }
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, worker and beat share one file: WAL lets readers run beside the writer, and
    # IMMEDIATE transactions take the write lock up front instead of failing mid-transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # A file (not :memory:) so a real Celery worker process can see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- broker, cache --------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    # The cache on its own database (by default the broker's + 1): a cache clear must not drop queued tasks.
    REDIS_CACHE_URL = env_url("REDIS_CACHE_URL", schemes=("redis", "rediss", "unix")) or redis_neighbour_db(REDIS_URL)
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_CACHE_URL}}
else:
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    import apps.core.broker_fs  # noqa: F401  registers the "atomicfs" transport (atomic message files)

    CELERY_BROKER_URL = "atomicfs://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),  # pidbox files, not in the working directory
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# --- auth -----------------------------------------------------------------------------------
# Django's four: not like the username or email, 8+ characters, not one of the 20,000 common
# passwords ("password"), not all digits. Applied on password change and reset.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", SESSION_COOKIE_SECURE)
# Log-in throttling (apps/core/login_throttle.py: the log-in page and the admin's), counted in the
# cache: after this many failed log-ins, each within the window of the last, a username is refused
# (right password or not) until the window has passed; an address gets more, since one office or
# VPN can share it.
READINESS_LOGIN_MAX_FAILURES = env_int("READINESS_LOGIN_MAX_FAILURES", 5, minimum=1)
READINESS_LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("READINESS_LOGIN_MAX_FAILURES_PER_ADDRESS", 20, minimum=1)
READINESS_LOGIN_WINDOW_S = env_int("READINESS_LOGIN_WINDOW_S", 900, minimum=1)
# Proxies in front of the web processes that append to X-Forwarded-For (0: clients connect
# directly). The log-in throttle counts per client address; behind a proxy, REMOTE_ADDR is the
# proxy's, and every user would share one count.
READINESS_NUM_PROXIES = env_int("READINESS_NUM_PROXIES", 0, minimum=0)
# Password reset links stay valid this long (Django's default is 3 days).
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3600, minimum=60)

# --- i18n, static ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
# With the manifest (the default outside the embedded setup), static file names carry a hash of
# their content, and whitenoise serves those names as immutable, cached for good: a page loads
# plotly once, not on every visit. It needs `manage.py collectstatic` before the server starts (a
# name missing from the manifest is an error at render time), so the embedded setup goes without:
# `make run` (DEBUG: an edit to static/ shows on the next reload), the test suite and the benches
# (READINESS_EMBEDDED). A single machine with DEBUG off serves better with it: set it true there.
READINESS_STATIC_MANIFEST = env_bool("READINESS_STATIC_MANIFEST", not READINESS_EMBEDDED)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if READINESS_STATIC_MANIFEST
        else "whitenoise.storage.CompressedStaticFilesStorage"
    },
}
# Files served at the site's root (/favicon.ico, which browsers ask for whatever the page links).
WHITENOISE_ROOT = BASE_DIR / "static" / "root"

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.orgs.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.orgs.permissions.OrgAccessPermission"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.drf.Pagination",
    # JSON only in production: the browsable API renders forms and filter choices for humans
    # exploring a dev server, and is one more surface to keep scoped. Actions add their own
    # renderers on top (the CSV of a run's records).
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        "apps.core.drf.FilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.drf.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["apps.orgs.throttling.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"principal": env_str("READINESS_API_RATE_LIMIT", "1200/min")},
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "readiness API",
    "DESCRIPTION": "Production readiness for GenAI proofs of concept. Authenticate with "
    "`Authorization: Bearer <token>` (an organization API token) or a browser session.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the sidecar package, not a CDN: the app works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Fixed names where two choice sets share a field name (status, trigger) or two fields share a
    # choice set (risk): otherwise the schema gets hashed names (Status91fEnum) and warnings that
    # fail `check --deploy --fail-level WARNING`.
    "ENUM_NAME_OVERRIDES": {
        "ChecklistItemStatusEnum": "apps.checklists.models.Status",
        "ProbeRunStatusEnum": "apps.probes.models.RunStatus",
        "ProbeRunTriggerEnum": "apps.probes.models.Trigger",
        "ReportTriggerEnum": "apps.reports.models.Trigger",
        "RiskLevelEnum": "apps.checklists.models.RiskLevel",
    },
}

# --- outbound HTTP to user-given URLs (apps/core/guarded_http.py) ---------------------------
READINESS_ALLOW_PRIVATE_ENDPOINTS = env_bool("READINESS_ALLOW_PRIVATE_ENDPOINTS", False)
READINESS_OUTBOUND_TIMEOUT_SECONDS = env_int("READINESS_OUTBOUND_TIMEOUT_SECONDS", 10, minimum=1)
READINESS_OUTBOUND_MAX_BYTES = env_int("READINESS_OUTBOUND_MAX_BYTES", 5_000_000, minimum=1024)
READINESS_OUTBOUND_MAX_REDIRECTS = env_int("READINESS_OUTBOUND_MAX_REDIRECTS", 3, minimum=0)

# --- probes: per-organization limits (defaults; an admin can override them per org) ---------
READINESS_PROBE_MAX_CONCURRENCY = env_int("READINESS_PROBE_MAX_CONCURRENCY", 512, minimum=1)
READINESS_PROBE_MAX_RATE = env_int("READINESS_PROBE_MAX_RATE", 500, minimum=1)
READINESS_PROBE_MAX_DURATION_S = env_int("READINESS_PROBE_MAX_DURATION_S", 3600, minimum=1)
READINESS_PROBE_MAX_REQUESTS_PER_DAY = env_int("READINESS_PROBE_MAX_REQUESTS_PER_DAY", 2_000_000, minimum=1)
READINESS_PROBE_MAX_TOKENS_PER_DAY = env_int("READINESS_PROBE_MAX_TOKENS_PER_DAY", 500_000_000, minimum=1)
READINESS_PROBE_MAX_PARALLELISM = env_int("READINESS_PROBE_MAX_PARALLELISM", 8, minimum=1)
# The Celery queue probe shards are sent to (a dedicated worker pool can consume only this one).
# Probe shards run on their own queue (a worker started with -Q probes): one org's long probes
# must not hold up everyone's webhook deliveries and usage-log analyses on the default queue.
READINESS_PROBE_QUEUE = env_str("READINESS_PROBE_QUEUE", "probes")
# The queue of a decision's re-evaluation after a change and of what a finished run sets off (its
# announcement, a saturated run's re-run, a scheduled run's report): short tasks, kept off the
# probe queue so they never wait behind a long probe. The default worker consumes it.
READINESS_DECISION_QUEUE = env_str("READINESS_DECISION_QUEUE", "celery")
READINESS_PROBE_MAX_ACTIVE_RUNS = env_int("READINESS_PROBE_MAX_ACTIVE_RUNS", 3, minimum=1)
# A running shard that has not reported for this long is declared lost by the reaper.
READINESS_PROBE_HEARTBEAT_TIMEOUT_S = env_int("READINESS_PROBE_HEARTBEAT_TIMEOUT_S", 30, minimum=5)

# --- readiness decisions and reports (apps/reports) --------------------------------------
# A project without a successful probe finished within this many days is NO-GO.
READINESS_PROBE_MAX_AGE_DAYS = env_int("READINESS_PROBE_MAX_AGE_DAYS", 14, minimum=1)
# A run whose client was saturated (not evidence) is started again by itself, this many times in a
# row at most; 0 turns automatic re-runs off (apps/probes/saturation.py).
READINESS_PROBE_SATURATED_RERUNS = env_int("READINESS_PROBE_SATURATED_RERUNS", 1, minimum=0)
# Waivers expiring within this many days are called out in the decision.
READINESS_WAIVER_WARNING_DAYS = env_int("READINESS_WAIVER_WARNING_DAYS", 14, minimum=0)
# Every change re-decides its project at once; the clock (a waiver expiring, a probe ageing) is
# caught by a periodic re-evaluation of every project, this many seconds apart.
READINESS_REFRESH_INTERVAL_S = env_int("READINESS_REFRESH_INTERVAL_S", 600, minimum=30)
# Uploaded evidence files: stored under READINESS_VAR_DIR/media, served only through an access check.
MEDIA_ROOT = VAR_DIR / "media"
READINESS_EVIDENCE_MAX_BYTES = env_int("READINESS_EVIDENCE_MAX_BYTES", 10_000_000, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = READINESS_EVIDENCE_MAX_BYTES + 1_000_000
# Prices older than this many days are flagged as stale on the cost page and in reports.
READINESS_PRICE_MAX_AGE_DAYS = env_int("READINESS_PRICE_MAX_AGE_DAYS", 90, minimum=1)
# Largest usage log accepted for upload (CSV / JSONL, optionally gzipped), in bytes; checked by
# the upload service. Bigger logs go in the import folder below.
READINESS_USAGE_LOG_MAX_BYTES = env_int("READINESS_USAGE_LOG_MAX_BYTES", 500_000_000, minimum=1024)
# Usage logs already on the server (a shared volume, a synced bucket): each org sees only its own
# folder, <dir>/<org slug>/, and may analyse a file there instead of uploading it.
READINESS_USAGE_LOG_IMPORT_DIR = Path(env_str("READINESS_USAGE_LOG_IMPORT_DIR", str(VAR_DIR / "usage-imports")))
# All usage logs an organization has uploaded (and not deleted) together, in bytes.
READINESS_USAGE_LOG_ORG_QUOTA_BYTES = env_int("READINESS_USAGE_LOG_ORG_QUOTA_BYTES", 2_000_000_000, minimum=1024)
# One analysis stops with an error naming the cap beyond: this many bytes read after
# decompression (a gzip bomb), this many rows, this many distinct users + tenants + minutes.
READINESS_USAGE_LOG_MAX_DECOMPRESSED_BYTES = env_int(
    "READINESS_USAGE_LOG_MAX_DECOMPRESSED_BYTES", 10_000_000_000, minimum=1024
)
READINESS_USAGE_LOG_MAX_ROWS = env_int("READINESS_USAGE_LOG_MAX_ROWS", 100_000_000, minimum=1)
READINESS_USAGE_LOG_MAX_DISTINCT = env_int("READINESS_USAGE_LOG_MAX_DISTINCT", 5_000_000, minimum=1)
# Time limits of one analysis (seconds): past the soft one it fails with a message; the hard one
# kills the worker process (the reaper then fails the log).
READINESS_USAGE_LOG_SOFT_TIME_LIMIT_S = env_int("READINESS_USAGE_LOG_SOFT_TIME_LIMIT_S", 1800, minimum=1)
READINESS_USAGE_LOG_TIME_LIMIT_S = env_int("READINESS_USAGE_LOG_TIME_LIMIT_S", 1860, minimum=2)
if READINESS_USAGE_LOG_SOFT_TIME_LIMIT_S >= READINESS_USAGE_LOG_TIME_LIMIT_S:
    raise ImproperlyConfigured("READINESS_USAGE_LOG_SOFT_TIME_LIMIT_S must be below READINESS_USAGE_LOG_TIME_LIMIT_S")
# An analysis whose worker has not reported for this long is presumed dead: the reaper fails it,
# and a redelivered message may claim it again. The worker reports every quarter of this.
READINESS_USAGE_LOG_HEARTBEAT_TIMEOUT_S = env_int("READINESS_USAGE_LOG_HEARTBEAT_TIMEOUT_S", 120, minimum=10)

# --- integrations (apps/integrations) -----------------------------------------------------
# Where this deployment is reached: links in webhook payloads and tickets point here.
READINESS_BASE_URL = env_str("READINESS_BASE_URL", "http://127.0.0.1:8000")
# Attempts per delivery before it becomes a dead letter, and the first retry delay (doubling, at most 1 h).
READINESS_DELIVERY_MAX_ATTEMPTS = env_int("READINESS_DELIVERY_MAX_ATTEMPTS", 6, minimum=1)
READINESS_DELIVERY_BACKOFF_BASE_S = env_int("READINESS_DELIVERY_BACKOFF_BASE_S", 30, minimum=1)
# Largest callback body accepted from Jira / GitHub / other systems, in bytes.
READINESS_INBOUND_MAX_BYTES = env_int("READINESS_INBOUND_MAX_BYTES", 1_000_000, minimum=1024)
# Callbacks accepted per connector and minute; beyond it they are refused (429) before any work.
READINESS_INBOUND_RATE_PER_MINUTE = env_int("READINESS_INBOUND_RATE_PER_MINUTE", 120, minimum=1)

# --- retention (`manage.py prune`, daily from beat: apps/integrations/retention.py) -------------
# Days each kind of row is kept; 0 keeps it for ever. Idempotency-Keys: a retry with a key older
# than this is a new request (clients retry within minutes; a key is in flight 5 minutes at most).
READINESS_RETAIN_IDEMPOTENCY_DAYS = env_int("READINESS_RETAIN_IDEMPOTENCY_DAYS", 2, minimum=0)
# Finished deliveries (succeeded, failed, dead letters) with their attempts, from their last attempt;
# pending ones and waiver announcements (sent once per waiver) are kept.
READINESS_RETAIN_DELIVERIES_DAYS = env_int("READINESS_RETAIN_DELIVERIES_DAYS", 90, minimum=0)
# Inbound callbacks, except accepted GitHub / Jira ones: their body hashes recognise replays.
READINESS_RETAIN_INBOUND_DAYS = env_int("READINESS_RETAIN_INBOUND_DAYS", 90, minimum=0)
# Raw per-request records of probe runs finished this long ago (the summary and charts stay).
READINESS_RETAIN_PROBE_RECORDS_DAYS = env_int("READINESS_RETAIN_PROBE_RECORDS_DAYS", 180, minimum=0)

# --- email (notifications: decision changed, approval stale) -----------------------------
# "console" prints mail to the log (the make run default); "smtp" sends through EMAIL_HOST.
_EMAIL_BACKENDS = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
}
EMAIL_BACKEND = _EMAIL_BACKENDS.get(env_str("READINESS_EMAIL", "console"))
if EMAIL_BACKEND is None:
    raise ImproperlyConfigured("READINESS_EMAIL must be console or smtp")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "readiness@localhost")
# `manage.py send_queue_digest` (run it daily from cron) mails each person their "waiting for you" list; off by default.
READINESS_QUEUE_DIGEST = env_bool("READINESS_QUEUE_DIGEST", False)

CELERY_BEAT_SCHEDULE = {
    "probe-reaper": {"task": "apps.probes.tasks.probe_reaper_task", "schedule": 15.0},
    # Expiring waivers and ageing probes change decisions without any event; pages and the API read
    # the stored decision, so this interval bounds how late a clock-driven change shows.
    "readiness-refresh": {
        "task": "apps.reports.tasks.readiness_refresh_task",
        "schedule": float(READINESS_REFRESH_INTERVAL_S),
    },
    # Waivers expire and probes age by the (UTC) date: every decision is re-made just after
    # midnight, so none stays GO on yesterday's date for up to a refresh interval.
    "readiness-midnight": {
        "task": "apps.reports.tasks.readiness_refresh_task",
        "schedule": crontab(minute=0, hour=0),
    },
    "waivers-announce": {
        "task": "apps.integrations.tasks.waivers_announce_task",
        "schedule": float(READINESS_REFRESH_INTERVAL_S),
    },
    "deliveries-due": {"task": "apps.integrations.tasks.deliveries_due_task", "schedule": 10.0},
    "usage-log-reaper": {"task": "apps.costs.tasks.usage_log_reaper_task", "schedule": 30.0},
    "prune": {"task": "apps.integrations.tasks.prune_task", "schedule": 24 * 3600.0},
}

# --- logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- HTTPS and browser security headers -----------------------------------------------------
# Production sets these from the environment (see .env.example); `manage.py check --deploy
# --fail-level WARNING` is clean with them (.ci/run checks it). Off by default: the embedded
# default serves plain HTTP on 127.0.0.1.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a proxy that terminates TLS: the header it sets and the value that means HTTPS, e.g.
# "X-Forwarded-Proto: https". Only when the proxy always sets (or strips) it: a client could
# otherwise claim HTTPS itself.
_proxy_header = env_str("SECURE_PROXY_SSL_HEADER").strip()
if _proxy_header:
    _name, _, _value = _proxy_header.partition(":")
    if not _name.strip() or not _value.strip() or " " in _name.strip():
        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER must look like 'X-Forwarded-Proto: https', got {_proxy_header!r}"
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _name.strip().upper().replace("-", "_"), _value.strip())
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# No inline script anywhere: pages declare behaviour in data- attributes read by static/js/app.js,
# and charts' figures travel as JSON (json_script). Styles allow 'unsafe-inline' because Plotly
# writes its own style rules and style attributes into the page at run time (without it, charts
# lose their hover labels and mode bar) and a few bars are sized by a style attribute; a style
# cannot run script. img-src data: for Plotly's and Swagger UI's inline images.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)

# `make run` (DEBUG) serves static files straight from static/; production runs collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
