"""What the product does and allows: attachments, the API, product limits, rate limits, channels."""

from __future__ import annotations

from pathlib import Path

from smartchat import env

from .core import DATA_DIR, DATABASES, REDIS_URL

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
