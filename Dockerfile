# One image for every Smartchat process: web (ASGI), worker and beat differ only by command.

# The browser libraries (Chart.js), from npm as pinned in package-lock.json and checked against
# scripts/assets.sha256, by the same step as ./scripts/start; Node.js stays out of the image.
FROM python:3.11-slim AS assets
WORKDIR /build
RUN python -m venv .venv
COPY package.json package-lock.json requirements-assets.txt ./
COPY scripts/_assets.sh scripts/check_assets.py scripts/assets.sha256 scripts/
RUN PATH="/build/.venv/bin:$PATH" bash -c '. scripts/_assets.sh && ensure_assets'

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SMARTCHAT_DATA_DIR=/tmp/smartchat \
    ATTACHMENTS_DIR=/var/lib/smartchat/attachments \
    LOG_FORMAT=json

WORKDIR /app
RUN useradd --create-home --uid 10001 smartchat \
    && mkdir -p /var/lib/smartchat/attachments /var/lib/smartchat/metrics && chown -R smartchat /var/lib/smartchat
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
COPY --from=assets /build/static/vendor static/vendor
# Static files are collected into the image and served by WhiteNoise with far-future caching.
# The compiled translations (locale/*/LC_MESSAGES/django.mo) are committed, so no gettext here.
# A key and a data directory for this step only: no key or SQLite file is left in the image.
RUN SECRET_KEY=collectstatic-only SMARTCHAT_DATA_DIR=/tmp/build-data python manage.py collectstatic --noinput \
    && rm -rf /tmp/build-data
ENV WHITENOISE_USE_FINDERS=false

USER smartchat
EXPOSE 8000
# --no-proxy-headers: the application believes X-Forwarded-* only from TRUSTED_PROXIES.
# uvicorn runs WEB_CONCURRENCY processes (its --workers default), each with its own relay.
ENV WEB_CONCURRENCY=2
# Websockets without permessage-deflate (about 48 KiB less per open socket; docs/operations.md):
# WEB_WS_DEFLATE=true turns it back on. A shell reads it, then exec leaves uvicorn as PID 1.
ENV WEB_WS_DEFLATE=false
CMD ["sh", "-c", "exec uvicorn smartchat.asgi:application --host 0.0.0.0 --port 8000 --no-proxy-headers --lifespan off --ws websockets-sansio --ws-per-message-deflate \"${WEB_WS_DEFLATE:-false}\""]
