"""The hot path's database connections: the request's own (authentication's read when it makes one, then
the reservation) and one per settlement.

Both run Core or driver statements, which need none of the ORM session's bookkeeping (on the completion
path that bookkeeping cost more CPU than the statements). A request checks out one connection for its key
read (if the key was not cached) and its reservation; it goes back to the pool when the reservation is
decided or the app context ends, whatever happened.

On PostgreSQL every ledger step is a single statement, atomic by itself (gateway/ledger/postgresql.py), so
these connections run in autocommit: no BEGIN before a statement and no COMMIT after it, two round trips
fewer per step. The driver's flag is set directly - execution_options(isolation_level="AUTOCOMMIT") would
cost a SET round trip each time the pool reset it - and the pool clears it when the connection comes back
(gateway/database.py), so no other user of the pool ever gets a connection in autocommit. On SQLite, whose
steps are several statements, each is one ordinary transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy.engine import Connection

from gateway import database
from gateway.context import request_globals
from gateway.extensions import db

_ATTRIBUTE = "_dominion_connection"
_SQLITE_LEDGER = threading.Lock()


def request_connection() -> Connection:
    """This app context's connection, checked out on first use."""
    here = request_globals()
    connection = here.get(_ATTRIBUTE)
    if connection is None or connection.closed:
        connection = _checkout()
        setattr(here, _ATTRIBUTE, connection)
    return connection


@contextmanager
def ledger_step_connection() -> Iterator[Connection]:
    """A connection of its own for one ledger step, committed when the block ends without an error."""
    with _checkout() as connection, ledger_turn(connection):
        yield connection
        connection.commit()  # on PostgreSQL no round trip: it closes SQLAlchemy's record of the transaction


@contextmanager
def ledger_turn(connection: Connection) -> Iterator[None]:
    """On SQLite, this process's ledger transactions one at a time, queued on a lock; elsewhere nothing.

    SQLite lets one connection write at a time and makes the others poll for its lock with sleeps growing
    to 100 ms (its busy handler): with 8 requests at once, p99 latency was half a second. Queued here, the
    next writer starts as soon as the last one commits. The wait is bounded like SQLite's own
    (SQLITE_BUSY_TIMEOUT_MS): past it the transaction goes ahead and SQLite's timeout decides, so a lock
    held outside this process (a sqlite3 shell, a backup) still ends in a timely 503, not a queue of them.
    PostgreSQL locks rows, not the database: its writers need no queue.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    queued = _SQLITE_LEDGER.acquire(timeout=database.SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        yield
    finally:
        if queued:
            _SQLITE_LEDGER.release()


def _checkout() -> Connection:
    connection = db.engine.connect()
    if connection.dialect.name == "postgresql":
        connection.connection.dbapi_connection.autocommit = True
    return connection


def register_request_db(app: Flask) -> None:
    """Give the connection back (rolling back anything uncommitted) when the app context ends."""

    @app.teardown_appcontext
    def _close(_error) -> None:
        connection = request_globals().pop(_ATTRIBUTE, None)
        if connection is not None:
            connection.close()
