"""Smartchat settings. Everything that differs between machines comes from the environment.

With nothing set, Smartchat runs on the embedded default: SQLite, the in-memory channel
layer and Celery's filesystem broker under ``.data/``. With ``DATABASE_URL`` and
``REDIS_URL`` set it runs on PostgreSQL, the Redis channel layer and a Redis broker.

Split by topic, read in this order (a later part may use what an earlier one settled):
``core`` (installation, apps, database, channel layer and Celery, sign-in, languages, static
files), ``product`` (attachments, the API, limits, rate limits, channels), ``security``
(cookies, proxies, CSP, HTTPS, logs and metrics).
"""

from .core import *  # noqa: F403
from .product import *  # noqa: F403
from .security import *  # noqa: F403
