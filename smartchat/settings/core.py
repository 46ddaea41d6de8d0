"""The core: the installation (paths, secret, hosts), the apps, the database, the channel layer and
Celery, sign-in, languages and static files."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from smartchat import env, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent.parent
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
    # The statistics' rollups, kept from the event log after it commits (helpdesk/reports/applier.py);
    # readers of the figures catch up first, so this only keeps their wait short.
    "apply-statistics": {
        "task": "helpdesk.reports.tasks.apply_statistics",
        "schedule": 2.0,
        "options": {"expires": 10.0},
    },
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
