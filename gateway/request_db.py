"""The hot path's database connections: the request's own (authentication's read, then the reservation)
and one per settlement.

Both run Core or driver statements, which need none of the ORM session's bookkeeping (on the completion
path that bookkeeping cost more CPU than the statements). A request checks out one connection for its key
read and its reservation; it goes back to the pool when the reservation is decided or the app context ends,
whatever happened.

On PostgreSQL every ledger step is a single statement, atomic by itself (gateway/ledger/postgresql.py), so
these connections run in autocommit: no BEGIN before a statement and no COMMIT after it, two round trips
fewer per step. The driver's flag is set directly - execution_options(isolation_level="AUTOCOMMIT") would
cost a SET round trip each time the pool reset it - and the pool clears it when the connection comes back
(gateway/database.py), so no other user of the pool ever gets a connection in autocommit. On SQLite, whose
steps are several statements, each is one ordinary transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, g
from sqlalchemy.engine import Connection

from gateway.extensions import db

_ATTRIBUTE = "_dominion_connection"


def request_connection() -> Connection:
    """This app context's connection, checked out on first use."""
    connection = g.get(_ATTRIBUTE)
    if connection is None or connection.closed:
        connection = _checkout()
        setattr(g, _ATTRIBUTE, connection)
    return connection


@contextmanager
def ledger_step_connection() -> Iterator[Connection]:
    """A connection of its own for one ledger step, committed when the block ends without an error."""
    with _checkout() as connection:
        yield connection
        connection.commit()  # on PostgreSQL no round trip: it closes SQLAlchemy's record of the transaction


def _checkout() -> Connection:
    connection = db.engine.connect()
    if connection.dialect.name == "postgresql":
        connection.connection.dbapi_connection.autocommit = True
    return connection


def register_request_db(app: Flask) -> None:
    """Give the connection back (rolling back anything uncommitted) when the app context ends."""

    @app.teardown_appcontext
    def _close(_error) -> None:
        connection = g.pop(_ATTRIBUTE, None)
        if connection is not None:
            connection.close()
