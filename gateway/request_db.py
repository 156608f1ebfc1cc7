"""The request's own database connection for the hot path: authentication's read, then the reservation.

Both run as Core or driver statements, which need none of the ORM session's bookkeeping (on the completion
path that bookkeeping cost more CPU than the statements). The read leaves its transaction open and the
reservation continues it, so a request checks out one connection and commits once before the upstream is
called; the connection goes back to the pool when the app context ends, whatever happened.
"""

from __future__ import annotations

from flask import Flask, g
from sqlalchemy.engine import Connection

from gateway.extensions import db

_ATTRIBUTE = "_dominion_connection"


def request_connection() -> Connection:
    """This app context's connection, checked out on first use."""
    connection = g.get(_ATTRIBUTE)
    if connection is None or connection.closed:
        connection = db.engine.connect()
        setattr(g, _ATTRIBUTE, connection)
    return connection


def register_request_db(app: Flask) -> None:
    """Give the connection back (rolling back anything uncommitted) when the app context ends."""

    @app.teardown_appcontext
    def _close(_error) -> None:
        connection = g.pop(_ATTRIBUTE, None)
        if connection is not None:
            connection.close()
