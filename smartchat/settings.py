"""Smartchat settings. Everything that differs between machines comes from the environment.

With nothing set, Smartchat runs on the embedded default: SQLite, the in-memory channel
layer and Celery's filesystem broker under ``.data/``. With ``DATABASE_URL`` and
``REDIS_URL`` set it runs on PostgreSQL, the Redis channel layer and a Redis broker.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.utils.translation import gettext_lazy as _

from helpdesk.observability import logs, multiprocess
from smartchat import env, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env.string("SMARTCHAT_DATA_DIR", str(BASE_DIR / ".data")))

DEBUG = env.boolean("DEBUG", False)
DATABASE_URL = env.string("DATABASE_URL", "")
# Required with DATABASE_URL; the embedded default makes one in DATA_DIR (smartchat/secret_key.py).
SECRET_KEY = secret_key.choose(env.string("SECRET_KEY", ""), data_dir=DATA_DIR, embedded=not DATABASE_URL, debug=DEBUG)
ALLOWED_HOSTS = env.string_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.string_list("CSRF_TRUSTED_ORIGINS", [])
# The public address of this installation, used in the widget snippet shown to admins.
PUBLIC_URL = env.string("PUBLIC_URL", "").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "django_prometheus",
    # Before helpdesk.observability: its Celery receivers run first, so ours see the request id.
    "django_guid",
    "helpdesk.observability",
    "helpdesk.accounts",
    "helpdesk.conversations",
    "helpdesk.events",
    "helpdesk.reports",
    "helpdesk.realtime",
    "helpdesk.api",
    "helpdesk.web",
    "integrations.widget",
    "integrations.telegram",
    "integrations.vk",
]

MIDDLEWARE = [
    # First: the request id (X-Request-ID) is current for everything after it, logs included.
    "django_guid.middleware.guid_middleware",
    # Request counts and latency by route (django-prometheus): its "before" half outermost...
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Early, so every answer gets the Content-Security-Policy, refusals included.
    "smartchat.security.SameHostSocketsCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "helpdesk.accounts.middleware.CompanyTimezoneMiddleware",
    "helpdesk.events.audit.AuditContextMiddleware",
    "helpdesk.web.auth_views.TwoFactorEnrolmentMiddleware",
    # ...its "after" half innermost (it names the route the request resolved to).
    "helpdesk.observability.middleware.RequestMetricsMiddleware",
    # Last, as django-axes asks: it turns a lock-out into our sign-in page with the reason.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "smartchat.urls"
ASGI_APPLICATION = "smartchat.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "helpdesk.web.navigation.navigation",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------
DB_POOL_MAX_SIZE = env.integer("DB_POOL_MAX_SIZE", 20, minimum=0)
# Threads each process gives its sockets' database work (helpdesk.realtime.sockets.socket_db);
# each holds a pooled connection while it works, so keep it under DB_POOL_MAX_SIZE with room
# left for HTTP requests. 0: Channels' one thread per process, as before, and the default on
# SQLite (one writer at a time there anyway).
SOCKET_DB_THREADS = env.integer("SOCKET_DB_THREADS", 8 if DATABASE_URL else 0, minimum=0)
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env.integer("DB_CONN_MAX_AGE", 60, minimum=0), conn_health_checks=True
        )
    }
    # Under ASGI every HTTP request runs in a thread of its own, so per-thread persistent
    # connections (CONN_MAX_AGE) pile up until PostgreSQL answers "too many clients". A pool
    # per process hands each connection back when the request ends. DB_POOL_MAX_SIZE=0: off.
    if DB_POOL_MAX_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses a pool with persistent connections
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 2,
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": 10,
        }
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "smartchat.sqlite3",
            "OPTIONS": {
                # Web, worker and scheduler share the file: WAL lets readers and one
                # writer work at once, IMMEDIATE takes the write lock up front.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": DATA_DIR / "test.sqlite3"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer and broker -------------------------------------------------------------
REDIS_URL = env.string("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # redis-py 8 gives every read a 5 s socket timeout: the same 5 s that
                        # channels_redis blocks in BZPOPMIN, so a quiet layer timed out and
                        # closed idle sockets.
                        "socket_timeout": 15,
                        # redis-py 8 caps a pool at 100 and fails (not waits) beyond: a burst of
                        # sockets joining or leaving groups needs more.
                        "max_connections": env.integer("REDIS_MAX_CONNECTIONS", 1000, minimum=10),
                    }
                ],
                "prefix": env.string("CHANNEL_LAYER_PREFIX", "smartchat"),
                "capacity": 1500,
                "expiry": 30,
            },
        }
    }
    CELERY_BROKER_URL = env.string("CELERY_BROKER_URL", REDIS_URL)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    broker_dir = DATA_DIR / "broker"
    broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = env.string("CELERY_BROKER_URL", "filesystem://")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(broker_dir),
        "data_folder_out": str(broker_dir),
        # Fanout exchanges (worker control); kombu would otherwise write ./control.
        "control_folder": str(DATA_DIR / "broker-control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# beat keeps its schedule file here on every set-up; a fresh checkout on PostgreSQL + Redis has no .data/ yet.
DATA_DIR.mkdir(parents=True, exist_ok=True)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "wake-snoozed-conversations": {
        "task": "helpdesk.conversations.tasks.wake_due_conversations",
        "schedule": 30.0,
    },
    # Within a minute of the last heartbeat passing PRESENCE_TIMEOUT_SECONDS.
    "mark-idle-employees-away": {
        "task": "helpdesk.accounts.tasks.mark_idle_employees_away",
        "schedule": 30.0,
    },
    "hand-out-queued-conversations": {
        "task": "helpdesk.conversations.tasks.hand_out_queued_conversations",
        "schedule": 60.0,
    },
    # Telegram channels in polling mode: a poll run for every due channel with none running.
    "poll-telegram": {
        "task": "integrations.telegram.tasks.poll_telegram_channels",
        "schedule": 5.0,
    },
    # Deliveries whose task was lost, and sends whose worker died (docs/channels.md, "Delivery").
    "sweep-deliveries": {
        "task": "helpdesk.conversations.tasks.sweep_deliveries",
        "schedule": 30.0,
    },
    # Customers' files whose fetch task was lost (docs/attachments.md).
    "sweep-attachments": {
        "task": "helpdesk.conversations.tasks.sweep_attachments",
        "schedule": 60.0,
    },
    # A Bots Long Poll run for every enabled VK channel in Long Poll mode that has none.
    "start-vk-polls": {
        "task": "integrations.vk.tasks.start_vk_polls",
        "schedule": 30.0,
    },
}
# Outbound delivery (docs/channels.md, "Delivery"). A retryable failure waits
# DELIVERY_RETRY_SECONDS, doubling each time (at most an hour, or what the provider asks),
# until DELIVERY_MAX_ATTEMPTS; a send unanswered for DELIVERY_SENDING_TIMEOUT seconds (its
# worker died) is resent only where the provider drops repeats, otherwise shown as unknown.
DELIVERY_MAX_ATTEMPTS = env.integer("DELIVERY_MAX_ATTEMPTS", 8, minimum=1)
DELIVERY_RETRY_SECONDS = env.integer("DELIVERY_RETRY_SECONDS", 5, minimum=1)
DELIVERY_SENDING_TIMEOUT = env.integer("DELIVERY_SENDING_TIMEOUT", 300, minimum=30)
DELIVERY_SWEEP_AFTER = env.integer("DELIVERY_SWEEP_AFTER", 60, minimum=5)
DELIVERY_QUEUE = env.string("DELIVERY_QUEUE", "celery") or "celery"

# --- Auth, i18n, time ---------------------------------------------------------------------
# Argon2 for new and changed passwords; older hashes still verify and are upgraded on sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses sign-ins from a locked-out address before any password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in throttling, two limits within LOGIN_LOCKOUT_MINUTES:
# - LOGIN_FAILURE_LIMIT wrong passwords for one e-mail from one address lock that pair out;
# - LOGIN_ACCOUNT_FAILURE_LIMIT for one e-mail from all addresses together lock the account
#   out, which stops a guesser who spreads over many addresses. It is higher, because anyone
#   can spend it: several addresses could lock a colleague out for the cool-off.
# A right password clears its own address's failures. The address is the client's (see TRUSTED_PROXIES).
AXES_FAILURE_LIMIT = env.integer("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_ACCOUNT_FAILURE_LIMIT = env.integer("LOGIN_ACCOUNT_FAILURE_LIMIT", 20, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.integer("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username"]  # in this order: see the handler
AXES_HANDLER = "helpdesk.web.lockout.LockoutHandler"
# Attempts refused during a lock-out are not counted: one address can then add at most
# LOGIN_FAILURE_LIMIT to an account's count, so locking an account takes many addresses.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # sign-ins are in our own audit log
AXES_LOCKOUT_CALLABLE = "helpdesk.web.auth_views.locked_out"
AXES_CLIENT_IP_CALLABLE = "helpdesk.events.audit.client_ip"
AXES_USERNAME_CALLABLE = "helpdesk.web.auth_views.axes_username"
AXES_VERBOSE = False
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:inbox"
LOGOUT_REDIRECT_URL = "web:login"

LANGUAGE_CODE = env.string("LANGUAGE_CODE", "en")
LANGUAGES = [("en", _("English")), ("ru", _("Russian"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise warns on every start when collectstatic has never run (development, tests).
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the source folders unless collectstatic has been run (production).
WHITENOISE_USE_FINDERS = env.boolean("WHITENOISE_USE_FINDERS", True)

# --- Attachments (docs/attachments.md) -------------------------------------------------------
# Files customers and agents send go through Django's storage API: local files under
# ATTACHMENTS_DIR by default (never served by the web server itself: only by signed links
# through the access gate), or any S3-compatible store through django-storages when
# ATTACHMENTS_S3_BUCKET is set (credentials by boto3's usual AWS_* variables or an IAM role).
ATTACHMENTS_DIR = Path(env.string("ATTACHMENTS_DIR", str(DATA_DIR / "attachments")))
ATTACHMENTS_S3_BUCKET = env.string("ATTACHMENTS_S3_BUCKET", "")
if ATTACHMENTS_S3_BUCKET:
    _attachment_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ATTACHMENTS_S3_BUCKET,
            "endpoint_url": env.string("ATTACHMENTS_S3_ENDPOINT_URL", "") or None,
            "region_name": env.string("ATTACHMENTS_S3_REGION", "") or None,
            "location": env.string("ATTACHMENTS_S3_PREFIX", ""),
            # Private objects; Smartchat streams them to those allowed, never a public URL.
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _attachment_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ATTACHMENTS_DIR), "base_url": None},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "attachments": _attachment_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = DATA_DIR / "media"
# Limits, checked by what a file is (its first bytes), never by its name: the size of one file,
# the files of one message, and the types allowed (MIME types; "image/*" style wildcards).
ATTACHMENT_MAX_BYTES = env.integer("ATTACHMENT_MAX_BYTES", 20 * 1024 * 1024, minimum=1)
ATTACHMENTS_PER_MESSAGE = env.integer("ATTACHMENTS_PER_MESSAGE", 10, minimum=1)
ATTACHMENT_TYPES = env.string_list(
    "ATTACHMENT_TYPES",
    [
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/heic",
        "application/pdf",
        "text/plain",
        "text/csv",
        "application/zip",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "audio/*",
        "video/*",
    ],
)
# How long a link to a file works (seconds). Pages and the API hand out fresh links.
ATTACHMENT_LINK_SECONDS = env.integer("ATTACHMENT_LINK_SECONDS", 6 * 3600, minimum=60)
# Customers' files fetched from their channel by the worker (docs/attachments.md): a retryable
# failure waits ATTACHMENT_FETCH_RETRY_SECONDS, doubling (or what the provider asks), until
# ATTACHMENT_FETCH_MAX_ATTEMPTS; the sweeper queues again a file pending for
# ATTACHMENT_SWEEP_AFTER seconds (its task was lost) and gives up after ATTACHMENT_FETCH_GIVE_UP_AFTER.
ATTACHMENT_FETCH_MAX_ATTEMPTS = env.integer("ATTACHMENT_FETCH_MAX_ATTEMPTS", 6, minimum=1)
ATTACHMENT_FETCH_RETRY_SECONDS = env.integer("ATTACHMENT_FETCH_RETRY_SECONDS", 5, minimum=1)
ATTACHMENT_SWEEP_AFTER = env.integer("ATTACHMENT_SWEEP_AFTER", 600, minimum=30)
ATTACHMENT_FETCH_GIVE_UP_AFTER = env.integer("ATTACHMENT_FETCH_GIVE_UP_AFTER", 24 * 3600, minimum=60)

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # A personal API key first (a request without one falls through), then the browser's session.
    # The token class's challenge makes anonymous requests a 401 with WWW-Authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "helpdesk.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["helpdesk.api.permissions.IsEmployee"],
    "DEFAULT_PAGINATION_CLASS": "helpdesk.api.pagination.LimitOffset",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["helpdesk.api.throttling.ApiRateThrottle"],
    "EXCEPTION_HANDLER": "helpdesk.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Bodies are JSON only (another Content-Type is a 415), parsed through safejson: nesting
    # deeper than its limit is a 400, not a RecursionError.
    "DEFAULT_PARSER_CLASSES": ["helpdesk.api.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "helpdesk.api.schema.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Smartchat API",
    "VERSION": "1.0.0",
    "DESCRIPTION": (
        "The agents' REST API of Smartchat: conversations and messages, contacts, employees, teams, "
        "roles, channels and personal API tokens. Authenticate with `Authorization: Bearer <key>` (create a key "
        "under Settings → API tokens) or, in the browser, with your signed-in session. Every error is "
        '`{"error": {"code", "message", "fields"?}}`; every list is paginated with `limit` and `offset`. '
        "Another company's ids answer 404, exactly like ids that do not exist."
    ),
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["helpdesk.api.permissions.IsEmployee"],
    "COMPONENT_SPLIT_REQUEST": True,
    # One enum per set of choices wherever it appears: a channel's kind, a message's kind, and
    # two "status" fields with different choices (a conversation's, a delivery's).
    "ENUM_NAME_OVERRIDES": {
        "ChannelKindEnum": "helpdesk.conversations.models.ChannelKind",
        "MessageKindEnum": "helpdesk.conversations.models.MessageKind",
        "StatusEnum": "helpdesk.conversations.models.Status",
        "DeliveryStatusEnum": "helpdesk.conversations.models.DeliveryStatus",
        "AttachmentStatusEnum": "helpdesk.conversations.models.AttachmentStatus",
        "ChannelModeEnum": "helpdesk.api.channels.mode_choices",
        "HeatmapMetricEnum": "helpdesk.reports.queries.HEATMAP_METRICS",
        "HeatmapModeEnum": "helpdesk.reports.queries.HEATMAP_MODES",
    },
    # Served from the sidecar package's static files: the docs page works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Product limits -----------------------------------------------------------------------
MESSAGE_MAX_CHARS = env.integer("MESSAGE_MAX_CHARS", 5000, minimum=1)
# CSAT: how long after a resolve the customer may still rate it (docs/csat.md).
CSAT_RATING_WINDOW_HOURS = env.integer("CSAT_RATING_WINDOW_HOURS", 72, minimum=1)
WIDGET_TOKEN_MAX_AGE_DAYS = env.integer("WIDGET_TOKEN_MAX_AGE_DAYS", 90, minimum=1)
PRESENCE_TIMEOUT_SECONDS = env.integer("PRESENCE_TIMEOUT_SECONDS", 90, minimum=10)
# How far back a reconnecting socket re-reads events, so late committers are not skipped.
EVENT_CATCHUP_OVERLAP = env.integer("EVENT_CATCHUP_OVERLAP", 200, minimum=0)
EVENT_CATCHUP_LIMIT = env.integer("EVENT_CATCHUP_LIMIT", 500, minimum=10)
# The retained window: a socket that missed events older than this reloads its page instead.
EVENT_CATCHUP_MAX_AGE = env.integer("EVENT_CATCHUP_MAX_AGE", 900, minimum=60)
# The in-memory layer is per process: inbox sockets then poll for events on each ping.
REALTIME_CATCHUP_ON_PING = env.boolean("REALTIME_CATCHUP_ON_PING", not REDIS_URL)
REALTIME_PING_SECONDS = env.integer("REALTIME_PING_SECONDS", 10 if REALTIME_CATCHUP_ON_PING else 25, minimum=5)
# Each web process's relay reads the event log for its own sockets (docs/architecture.md,
# "Realtime"): at once on its own commits and on PostgreSQL's NOTIFY, and at least this often
# (the backstop while LISTEN is down; the only wake-up on SQLite for the worker's events).
REALTIME_RELAY_POLL_SECONDS = (
    env.integer(
        "REALTIME_RELAY_POLL_MS", 2000 if DATABASES["default"]["ENGINE"].endswith("postgresql") else 1000, minimum=50
    )
    / 1000
)
# The web process sets its start-up objects aside from the garbage collector (smartchat/heap.py):
# full collections then pause its sockets about a quarter as long (40 ms instead of 143 at 300 sockets).
GC_FREEZE_AT_START = env.boolean("GC_FREEZE_AT_START", True)
# Quick answers: how alike (0..1) a customer's words and a trigger phrase must be to count
# as a match despite typos; exact and contained phrases always match.
QUICK_ANSWER_SIMILARITY = env.fraction("QUICK_ANSWER_SIMILARITY", 0.85)
# Seconds a process keeps a company's live quick answers (a change in the same process is
# seen at once; another process sees it within this). 0: read them for every message.
QUICK_ANSWERS_CACHE_SECONDS = env.integer("QUICK_ANSWERS_CACHE_SECONDS", 10, minimum=0)

# --- Rate limits ----------------------------------------------------------------------------
# What a script meets and a person never does (helpdesk/ratelimits.py names each limit). A rate
# is "N/second|minute|hour|day", several joined by ";", or "off". Counted in Redis when there
# is one, so every process shares the count; in this process's memory on the embedded default.
RATE_LIMIT_STORAGE_URL = REDIS_URL or "memory://"
RATE_LIMIT_KEY_PREFIX = env.string("CHANNEL_LAYER_PREFIX", "smartchat") + "-ratelimit"
RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS = env.rate_limit("RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS", "20/minute; 200/hour")
RATE_LIMIT_WIDGET_RESUMES_PER_VISITOR = env.rate_limit("RATE_LIMIT_WIDGET_RESUMES_PER_VISITOR", "60/minute")
RATE_LIMIT_WIDGET_RESUMES_PER_ADDRESS = env.rate_limit("RATE_LIMIT_WIDGET_RESUMES_PER_ADDRESS", "600/minute")
RATE_LIMIT_WIDGET_CONVERSATIONS_PER_VISITOR = env.rate_limit("RATE_LIMIT_WIDGET_CONVERSATIONS_PER_VISITOR", "5/hour")
RATE_LIMIT_WIDGET_CONVERSATIONS_PER_ADDRESS = env.rate_limit(
    "RATE_LIMIT_WIDGET_CONVERSATIONS_PER_ADDRESS", "10/minute; 100/hour"
)
RATE_LIMIT_WIDGET_MESSAGES_PER_VISITOR = env.rate_limit("RATE_LIMIT_WIDGET_MESSAGES_PER_VISITOR", "30/minute; 300/hour")
RATE_LIMIT_WIDGET_MESSAGES_PER_ADDRESS = env.rate_limit(
    "RATE_LIMIT_WIDGET_MESSAGES_PER_ADDRESS", "120/minute; 1200/hour"
)
# Files a widget visitor uploads (each attempt counts, refused or not).
RATE_LIMIT_WIDGET_UPLOADS_PER_VISITOR = env.rate_limit("RATE_LIMIT_WIDGET_UPLOADS_PER_VISITOR", "20/minute; 100/hour")
RATE_LIMIT_WIDGET_UPLOADS_PER_ADDRESS = env.rate_limit("RATE_LIMIT_WIDGET_UPLOADS_PER_ADDRESS", "60/minute; 400/hour")
RATE_LIMIT_API_PER_TOKEN = env.rate_limit("RATE_LIMIT_API_PER_TOKEN", "1200/minute")
RATE_LIMIT_API_PER_USER = env.rate_limit("RATE_LIMIT_API_PER_USER", "600/minute")

# --- Channels ------------------------------------------------------------------------------
# Fernet keys (comma-separated, newest first) that encrypt channel credentials at rest: the
# first encrypts, every one decrypts (helpdesk/conversations/secrets.py). Empty: one key derived
# from SECRET_KEY, so the embedded default works, at the price of tying the credentials to it.
CHANNEL_SECRET_KEYS = env.fernet_keys("CHANNEL_SECRET_KEYS")
# Where the client libraries talk to Telegram's Bot API and VK's API: another address for
# tests (the fake servers) and for installations behind a proxy.
TELEGRAM_API_URL = env.string("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")
# How long a send (sendMessage, sendPhoto, sendDocument) waits for Telegram's answer once the
# request is out, in seconds. Past it the outcome is unknown: Telegram has no idempotency key, so
# the message is shown for a person to retry rather than resent (docs/channels.md, "Never twice").
TELEGRAM_SEND_TIMEOUT = env.integer("TELEGRAM_SEND_TIMEOUT", 30, minimum=1)
# How long one getUpdates waits for news (a polling-mode channel's long poll), in seconds.
TELEGRAM_POLL_TIMEOUT = env.integer("TELEGRAM_POLL_TIMEOUT", 25, minimum=0)
# How long one worker task keeps polling a channel (getUpdates after getUpdates) before it
# queues the next run (integrations/telegram/tasks.py); 0: a single getUpdates per run.
TELEGRAM_POLL_RUN_SECONDS = env.integer("TELEGRAM_POLL_RUN_SECONDS", 60, minimum=0)
# The Celery queue polls go to: each holds a worker thread for its whole run, so
# they have a worker of their own (the Procfile's and compose's "poller", a thread pool) and
# replies, snooze wake-ups and hand-outs never wait behind a long poll.
CHANNEL_POLL_QUEUE = "polls"
TELEGRAM_POLL_QUEUE = env.string("TELEGRAM_POLL_QUEUE", CHANNEL_POLL_QUEUE) or CHANNEL_POLL_QUEUE
VK_API_URL = env.string("VK_API_URL", "https://api.vk.com/method").rstrip("/")
# The Bots Long Poll: how long VK holds one request open (at most 90), and how long one
# worker task polls before it queues the next run (integrations/vk/tasks.py).
VK_LONGPOLL_WAIT = env.integer("VK_LONGPOLL_WAIT", 25, minimum=1)
VK_POLL_RUN_SECONDS = env.integer("VK_POLL_RUN_SECONDS", 55, minimum=5)
VK_POLL_QUEUE = env.string("VK_POLL_QUEUE", CHANNEL_POLL_QUEUE) or CHANNEL_POLL_QUEUE

# --- Security ------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# The proxies in front (IPs and CIDR networks) whose X-Forwarded-For and X-Forwarded-Proto are
# believed, for HTTP and websockets alike: smartchat.asgi applies them to the connection before
# Django or Channels see it, and uvicorn itself runs with --no-proxy-headers. Empty: none, the
# peer's own address and scheme count.
TRUSTED_PROXIES = env.networks("TRUSTED_PROXIES")
# Content-Security-Policy on every answer (django-csp). Scripts and styles come from our own
# origin; an inline <script>/<style> runs only with the response's nonce
# (nonce="{{ request.csp_nonce }}"), and no page has inline event handlers or style attributes.
# connect-src: 'self' and the same host's ws:/wss: origin (smartchat/security.py). Images may be
# data: URIs (the favicon, Swagger UI's icons). CSP_REPORT_ONLY=true sends it as
# Content-Security-Policy-Report-Only, to try a change; CSP_REPORT_URI names where browsers report.
_csp = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}
if _csp_report_uri := env.string("CSP_REPORT_URI", ""):
    _csp["DIRECTIVES"]["report-uri"] = [_csp_report_uri]
if env.boolean("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY = None, _csp
else:
    CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp, None
if env.boolean("HTTPS", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", True)
    # No SECURE_PROXY_SSL_HEADER: it would believe X-Forwarded-Proto from anyone. The scheme a
    # trusted proxy reports arrives as the connection's own (see TRUSTED_PROXIES).
    SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", True)

EMAIL_BACKEND = env.string("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

# --- Observability (docs/operations.md) ------------------------------------------------------
# Logs: "json" (one JSON object a line, for a log collector; the Docker image's default) or
# "text" (for people, the default elsewhere). Every line carries the request id.
LOG_FORMAT = env.choice("LOG_FORMAT", "text", ("json", "text"))
LOGGING = logs.logging_config(log_format=LOG_FORMAT, level=env.string("LOG_LEVEL", "INFO"))
# The request id: an incoming X-Request-ID is kept when it is a UUID, otherwise one is made; it
# is sent back in the response's X-Request-ID and travels into the Celery tasks queued meanwhile.
from django_guid.integrations import CeleryIntegration  # noqa: E402

DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,
    "RETURN_HEADER": True,
    # Not exposed to scripts of other origins: the widget's answers expose Retry-After, and
    # django-guid would replace that list rather than add to it.
    "EXPOSE_HEADER": False,
    "INTEGRATIONS": [CeleryIntegration()],
}
# Prometheus /metrics: off (404) unless METRICS_TOKEN (scrapers send "Authorization: Bearer
# <token>") or METRICS_ALLOWED_IPS (addresses and networks, the client's after TRUSTED_PROXIES)
# is set; with either, anyone else gets 403.
METRICS_TOKEN = env.string("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = env.networks("METRICS_ALLOWED_IPS")
# A directory every process of the machine shares (web, worker, poller): each writes its counts
# there and /metrics adds them up (helpdesk/observability/multiprocess.py). Unset: each process
# shows only its own, and the worker's (task failures, its messages and events) are not seen.
PROMETHEUS_MULTIPROC_DIR = env.string("PROMETHEUS_MULTIPROC_DIR", "")
try:
    multiprocess.prepare(PROMETHEUS_MULTIPROC_DIR)
except OSError as exc:
    raise env.ConfigError(
        f"PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_MULTIPROC_DIR!r} is not a usable directory: {exc}"
    ) from exc
