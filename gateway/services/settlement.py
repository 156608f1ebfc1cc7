"""Settling reservations: actual usage replaces the reserved amounts, failures give them back.

Every change to an audit row is conditional on it still being `pending`, so a request's own
settlement and the sweeper can race without counting anything twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, select, update

from gateway.extensions import db
from gateway.models import UsageCounter, UsageRecord
from gateway.models.types import utcnow
from gateway.services.quotas import Reservation

log = logging.getLogger("gateway.quotas")


@dataclass(frozen=True)
class Outcome:
    """How a request ended. charged=False releases the reservation; True bills the actual usage."""

    status: str
    http_status: int | None
    charged: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_nanousd: int = 0
    error_type: str | None = None
    latency_ms: int | None = None
    upstream_latency_ms: int | None = None


def settle(reservation: Reservation, outcome: Outcome) -> None:
    """Finish the audit row and move the counters by (actual - reserved), in one transaction."""
    try:
        _settle(reservation, outcome)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("settlement failed; the sweeper will release the reservation",
                      extra={"record_id": reservation.record_id})
        raise


def _settle(reservation: Reservation, outcome: Outcome) -> None:
    tokens = outcome.prompt_tokens + outcome.completion_tokens if outcome.charged else 0
    cost = outcome.cost_nanousd if outcome.charged else 0
    finished = _finish_record(reservation.record_id, outcome, expected_status="pending")
    if finished:
        requests = 0 if outcome.charged else -1
        _move_counters(reservation, requests, tokens - reservation.tokens, cost - reservation.cost_nanousd)
        return
    # The sweeper released this reservation first: bill the actual usage afresh, if any.
    if outcome.charged and _finish_record(reservation.record_id, outcome, expected_status="released"):
        _move_counters(reservation, 1, tokens, cost)


# Built once with bound parameters: constructing them per request cost more CPU than running them.
_RECORDS = UsageRecord.__table__
_FINISH_RECORD = (
    update(_RECORDS)
    .where(_RECORDS.c.id == bindparam("match_id"), _RECORDS.c.status == bindparam("match_status"))
    .values({name: bindparam(f"new_{name}", type_=_RECORDS.c[name].type) for name in (
        "status", "http_status", "error_type", "counted", "prompt_tokens", "completion_tokens", "cached_tokens",
        "cost_nanousd", "latency_ms", "upstream_latency_ms", "finished_at")})
)
_COUNTERS = UsageCounter.__table__
_MOVE_COUNTER = (
    update(_COUNTERS)
    .where(_COUNTERS.c.user_id == bindparam("match_user"), _COUNTERS.c.period == bindparam("match_period"),
           _COUNTERS.c.period_start == bindparam("match_start"))
    .values(requests=_COUNTERS.c.requests + bindparam("add_requests"),
            tokens=_COUNTERS.c.tokens + bindparam("add_tokens"),
            spend_nanousd=_COUNTERS.c.spend_nanousd + bindparam("add_cost"))
)


def _finish_record(record_id: int, outcome: Outcome, expected_status: str) -> bool:
    return db.session.execute(_FINISH_RECORD, {
        "match_id": record_id, "match_status": expected_status, "new_status": outcome.status,
        "new_http_status": outcome.http_status, "new_error_type": outcome.error_type,
        "new_counted": outcome.charged, "new_prompt_tokens": outcome.prompt_tokens,
        "new_completion_tokens": outcome.completion_tokens, "new_cached_tokens": outcome.cached_tokens,
        "new_cost_nanousd": outcome.cost_nanousd if outcome.charged else 0,
        "new_latency_ms": outcome.latency_ms, "new_upstream_latency_ms": outcome.upstream_latency_ms,
        "new_finished_at": utcnow(),
    }).rowcount == 1


def _move_counters(reservation: Reservation, requests: int, tokens: int, cost: int) -> None:
    for period, start in (("day", reservation.day_start), ("month", reservation.month_start)):
        db.session.execute(_MOVE_COUNTER, {
            "match_user": reservation.user_id, "match_period": period, "match_start": start,
            "add_requests": requests, "add_tokens": tokens, "add_cost": cost})


def sweep_stale_reservations(older_than_s: int, now=None, batch: int = 500) -> int:
    """Release pending reservations older than older_than_s (RESERVATION_TTL_S), meant for crashed workers."""
    cutoff = (now or utcnow()) - timedelta(seconds=older_than_s)
    stale = db.session.execute(
        select(UsageRecord.id, UsageRecord.user_id, UsageRecord.day_start, UsageRecord.month_start,
               UsageRecord.reserved_prompt_tokens, UsageRecord.reserved_completion_tokens,
               UsageRecord.reserved_cost_nanousd)
        .where(UsageRecord.status == "pending", UsageRecord.created_at < cutoff)
        .order_by(UsageRecord.id).limit(batch)
    ).all()
    db.session.rollback()
    released = 0
    for row in stale:
        reservation = Reservation(row.id, row.user_id, row.day_start, row.month_start,
                                  row.reserved_prompt_tokens + row.reserved_completion_tokens,
                                  row.reserved_cost_nanousd)
        outcome = Outcome(status="released", http_status=None, charged=False, error_type="reservation_expired")
        if _finish_record(row.id, outcome, expected_status="pending"):
            _move_counters(reservation, -1, -reservation.tokens, -reservation.cost_nanousd)
            released += 1
        db.session.commit()
    if released:
        log.warning("released stale reservations", extra={"count": released})
    return released
