"""Binds SQLAlchemy and Flask-Migrate; SQLite gets WAL, a busy timeout and foreign keys."""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask
from sqlalchemy import event, exc

from gateway.config import ConfigError, Settings
from gateway.extensions import db, migrate

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")
SQLITE_BUSY_TIMEOUT_MS = 30000
# A pooled PostgreSQL connection idle this long is pinged before use; a busy one is not (_ping_idle_connections).
IDLE_PING_S = 5.0
_IDLE_SINCE = "dominion_idle_since"


def register_database(app: Flask, settings: Settings) -> None:
    """Configure the engine for the database in DATABASE_URL (or SQLite at SQLITE_PATH)."""
    url = settings.database_url
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(settings)
    if url.startswith("sqlite:///"):
        _ensure_parent_dir(url[len("sqlite:///"):])
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True)
    with app.app_context():
        if url.startswith("sqlite"):
            event.listen(db.engine, "connect", _sqlite_pragmas)
        else:
            event.listen(db.engine, "connect", _read_committed)
            event.listen(db.engine, "checkin", _leave_autocommit)
            _ping_idle_connections(db.engine)


def _engine_options(settings: Settings) -> dict:
    """Per-process pool: on PostgreSQL, workers x (DB_POOL_SIZE + DB_MAX_OVERFLOW) must fit max_connections."""
    # hide_parameters: an error's text would otherwise carry the row's values (prompts, under full logging).
    if settings.database_url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
                "pool_size": 64, "max_overflow": 64, "hide_parameters": True}
    # No isolation_level here: _read_committed sets it for the session instead (see there).
    return {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow,
            "pool_recycle": 1800, "pool_timeout": 5, "connect_args": {"connect_timeout": 3},
            "hide_parameters": True}


def _read_committed(dbapi_connection, _record) -> None:
    """READ COMMITTED for every transaction of a new connection, whatever the server's default.

    The ledger's conditional UPDATEs rely on PostgreSQL re-checking their WHERE against the latest committed
    row; under REPEATABLE READ concurrent reservations of one user would fail with serialization errors
    instead of queueing. Set once per connection as the session's default rather than as the driver's
    isolation level: with the driver's level set, each switch into and out of autocommit
    (gateway/request_db.py) costs a SET round trip.
    """
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
    dbapi_connection.autocommit = autocommit


def _leave_autocommit(dbapi_connection, _record) -> None:
    """A connection comes back to the pool out of autocommit, whoever switched it on (gateway/request_db.py):
    the next user of the pool (the ORM session, the reconciler) relies on BEGIN ... COMMIT."""
    if dbapi_connection is not None and not dbapi_connection.closed:
        dbapi_connection.autocommit = False


def _ping_idle_connections(engine) -> None:
    """pool_pre_ping, but only for connections that sat idle: under load every checkout pinged the server (a
    round trip, three per request), although a connection used a moment ago is as alive as a ping says. A
    connection cut while busy fails its statement instead; SQLAlchemy then recycles the whole pool, so the
    next checkouts get fresh connections (as after a ping that failed)."""

    def mark_idle(_dbapi_connection, record) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def ping_if_idle(dbapi_connection, record, _proxy) -> None:
        if time.monotonic() - record.info.get(_IDLE_SINCE, 0.0) < IDLE_PING_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:
            alive = False
        if not alive:
            raise exc.DisconnectionError("pooled connection failed its ping")  # the pool reconnects

    event.listen(engine, "connect", mark_idle)
    event.listen(engine, "checkin", mark_idle)
    event.listen(engine, "checkout", ping_if_idle)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers and one writer work at once; busy_timeout makes writers queue, not fail."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _ensure_parent_dir(path: str) -> None:
    """The SQLite file's directory must exist and be ours to write; say so in one line if it cannot be."""
    if not path or path == ":memory:":
        return
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"SQLITE_PATH: cannot create the directory {directory} ({error.strerror}); "
                          "point SQLITE_PATH at a writable place") from None
