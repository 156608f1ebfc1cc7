# Dominion Gateway: gunicorn (gthread) serving wsgi:app as a non-root user.
# Build: docker build -t dominion-gateway .   Run: see docker-compose.yml / docker-compose.sqlite.yml.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=3100 \
    SQLITE_PATH=/data/gateway.db \
    FLASK_APP=gateway.app:serve_app

RUN groupadd --system --gid 10001 dominion \
    && useradd --system --uid 10001 --gid dominion --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin dominion \
    && mkdir -p /data \
    && chown dominion:dominion /data

WORKDIR /app

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when dependencies change.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps))" \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY wsgi.py ./
COPY migrations ./migrations
COPY deploy/gunicorn.conf.py deploy/docker-entrypoint.sh ./deploy/
COPY gateway ./gateway

USER 10001:10001
EXPOSE 3100

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '3100'), timeout=4)"]

ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]
