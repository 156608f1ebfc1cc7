"""The audit row's record of a rerouted request: the upstream and model that answered (or failed last),
what the caller asked for, and every attempt.

Written in its own short transaction just before settlement, and only when more than one upstream was
called: otherwise the row already names the one upstream and model, as reserved.
"""

from __future__ import annotations

import logging

from sqlalchemy import JSON, bindparam, update

from gateway.extensions import db
from gateway.models import UsageRecord
from gateway.services.catalog import price_snapshot
from gateway.services.route import Route

log = logging.getLogger("gateway.routing")

_RECORDS = UsageRecord.__table__
_RECORD_ROUTE = (
    update(_RECORDS)
    .where(_RECORDS.c.id == bindparam("match_id"))
    .values(provider=bindparam("new_provider"), model=bindparam("new_model"),
            fallback_from=bindparam("new_fallback_from"),
            price_snapshot=bindparam("new_price_snapshot", type_=JSON),
            attempts=bindparam("new_attempts", type_=JSON))
)


def record_route(record_id: int, route: Route) -> None:
    """Point the audit row at the upstream and model tried last; a failure here is logged, not raised
    (the row keeps the first candidate, and settlement still moves the money)."""
    if not route.rerouted:
        return
    try:
        db.session.execute(_RECORD_ROUTE, {
            "match_id": record_id, "new_provider": route.entry.provider, "new_model": route.entry.id,
            "new_fallback_from": route.fallback_from, "new_price_snapshot": price_snapshot(route.entry),
            "new_attempts": [attempt.as_dict() for attempt in route.attempts]})
        db.session.commit()
    except Exception:  # descriptive columns only: never fail a request over them
        db.session.rollback()
        log.exception("could not record the route taken", extra={"record_id": record_id})
