#!/bin/sh
# Container start: bring the database schema up to date, then serve (or run the command given instead,
# e.g. `docker-compose run --rm gateway flask users list`). Set RUN_MIGRATIONS=0 to skip the upgrade
# (extra replicas sharing one database should leave migrations to one of them).
set -eu

if [ "${RUN_MIGRATIONS:-1}" != "0" ]; then
    flask --app gateway.app:serve_app db upgrade
fi

if [ "$#" -eq 0 ]; then
    # exec: gunicorn becomes PID 1 and receives SIGTERM itself, so `docker stop` drains gracefully.
    set -- gunicorn -c deploy/gunicorn.conf.py wsgi:app
fi
exec "$@"
