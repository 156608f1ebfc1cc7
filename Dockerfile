# Dominion Gateway: gunicorn (gthread) serving wsgi:app as a non-root user.
# Build: docker build -t dominion-gateway .
# Run: docs/deployment.md, docker-compose.yml, docker-compose.sqlite.yml.
# Plain `docker run`: add --stop-timeout 150 (Docker's default 10 s would kill calls still in flight on stop).
FROM python:3.11-slim-bookworm

# MALLOC_ARENA_MAX=2: glibc keeps up to 8 x cores malloc arenas, and argon2's 19 MiB of working memory
# per verification lands in whichever one the serving thread uses; the soak test measured RSS 412 -> 640
# MiB without it, flat with it. PIP_ROOT_USER_ACTION: pip runs as root only here, at build time, on purpose.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MALLOC_ARENA_MAX=2 \
    HOST=0.0.0.0 \
    PORT=3100 \
    SQLITE_PATH=/data/gateway.db \
    FLASK_APP=gateway.app:serve_app

# A regular (not --system) account: uid 10001 is above SYS_UID_MAX, and a fixed uid is what operators
# chown bind-mounted data directories to.
RUN groupadd --gid 10001 dominion \
    && useradd --uid 10001 --gid dominion --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin dominion \
    && mkdir -p /data \
    && chown dominion:dominion /data

WORKDIR /app

# Dependencies (and the build backend) first, from pyproject.toml alone: this layer is rebuilt only when
# pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); open('/tmp/requirements.txt', 'w').write('\n'.join(p['project']['dependencies'] + p['build-system']['requires']))" \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY README.md wsgi.py ./
COPY migrations ./migrations
COPY deploy/gunicorn.conf.py deploy/docker-entrypoint.sh ./deploy/
COPY gateway ./gateway

# Register the project itself (its metadata: name, version for /openapi.json) without copying the code:
# an editable install points at /app, where migrations/ and deploy/ sit beside the package.
RUN pip install --no-cache-dir --no-deps --no-build-isolation --editable . \
    && rm -rf build

USER 10001:10001
EXPOSE 3100

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '3100'), timeout=4)"]

ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]
