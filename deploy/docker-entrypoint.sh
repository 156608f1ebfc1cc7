#!/bin/sh
# Container start: bring the database schema up to date, then serve (or run the command given instead,
# e.g. `docker-compose run --rm gateway flask users list`). Set RUN_MIGRATIONS=0 to skip the upgrade
# (extra replicas sharing one database should leave migrations to one of them).
set -eu

# SQLite (no DATABASE_URL) needs a directory this user can write. A bind-mounted host directory keeps its
# host owner, so say what to do in one line instead of a traceback from deep inside SQLAlchemy.
sqlite_dir_check() {
    dir=$(dirname "${SQLITE_PATH:-/data/gateway.db}")
    while [ ! -d "$dir" ]; do dir=$(dirname "$dir"); done
    if [ ! -w "$dir" ]; then
        echo "SQLITE_PATH=${SQLITE_PATH:-}: $dir is not writable by uid $(id -u); keep the database in a volume" \
             "(the image's default is /data/gateway.db), or chown $(id -u):$(id -g) a host directory bind-mounted there" >&2
        exit 1
    fi
}
if [ -z "${DATABASE_URL:-}" ]; then
    sqlite_dir_check
fi

if [ "${RUN_MIGRATIONS:-1}" != "0" ]; then
    flask --app gateway.app:serve_app db upgrade
fi

if [ "$#" -eq 0 ]; then
    # exec: gunicorn becomes PID 1 and receives SIGTERM itself, so `docker stop` drains gracefully.
    set -- gunicorn -c deploy/gunicorn.conf.py wsgi:app
fi
exec "$@"
