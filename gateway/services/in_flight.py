"""The per-user concurrency cap's counter: admitted, unsettled requests, read for the 429 that names it.

The ledger (gateway/ledger) raises it in the transaction that inserts a pending row and lowers it in the one
that finishes the row (settlement or the reconciler), so it always equals the user's pending rows, on every
worker and process: the database serialises the conditional update, as it does for quotas.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.extensions import db
from gateway.models import InFlight


def in_flight(user_id: int, session: Session | None = None) -> int | None:
    """The user's requests in flight, or None before their first request (read in session, else the app's)."""
    return (session or db.session).execute(
        select(InFlight.requests).where(InFlight.user_id == user_id)).scalar_one_or_none()
