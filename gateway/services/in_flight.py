"""The per-user concurrency cap: a counter of admitted, unsettled requests, moved inside the ledger's
own transactions.

take_slot() runs first in the reservation transaction, release_slot() in the transaction that finishes
the pending row (settlement or the reconciler), so the counter always equals the user's pending rows,
on every worker and process: the database serialises the conditional UPDATE, as it does for quotas.
"""

from __future__ import annotations

from sqlalchemy import Integer, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.extensions import db
from gateway.models import InFlight

_SLOTS = InFlight.__table__
# Invariant kept: requests <= cap whenever cap > 0 (a cap lowered below the current count admits nothing
# until enough requests end). Built once with bound parameters.
_TAKE = (
    update(_SLOTS)
    .where(_SLOTS.c.user_id == bindparam("match_user"),
           or_(bindparam("cap", type_=Integer) == 0, _SLOTS.c.requests < bindparam("cap", type_=Integer)))
    .values(requests=_SLOTS.c.requests + 1)
)
# Invariant kept: requests == the user's pending rows (called once per row leaving `pending`).
_RELEASE = (
    update(_SLOTS)
    .where(_SLOTS.c.user_id == bindparam("match_user"))
    .values(requests=_SLOTS.c.requests - 1)
)


def take_slot(user_id: int, cap: int) -> bool:
    """Count one more request in flight unless the user already has cap of them (cap 0 = unlimited)."""
    params = {"match_user": user_id, "cap": cap}
    if db.session.execute(_TAKE, params).rowcount == 1:
        return True
    if in_flight(user_id) is None:  # the user's first request: create the row, then try once more
        dialect = db.session.get_bind().dialect.name
        upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        db.session.execute(upsert(InFlight).values(user_id=user_id, requests=0)
                           .on_conflict_do_nothing(index_elements=["user_id"]))
    return db.session.execute(_TAKE, params).rowcount == 1


def release_slot(user_id: int) -> None:
    """One request of this user is no longer in flight."""
    db.session.execute(_RELEASE, {"match_user": user_id})


def in_flight(user_id: int) -> int | None:
    """The user's requests in flight, or None before their first request."""
    return db.session.execute(select(InFlight.requests).where(InFlight.user_id == user_id)).scalar_one_or_none()
