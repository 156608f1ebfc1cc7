"""Settling reservations: actual usage replaces the reserved amounts, failures give them back.

Every change to an audit row is conditional on it still being `pending`, so a request's own
settlement and the sweeper can race without counting anything twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

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


def _finish_record(record_id: int, outcome: Outcome, expected_status: str) -> bool:
    statement = (
        update(UsageRecord)
        .where(UsageRecord.id == record_id, UsageRecord.status == expected_status)
        .values(status=outcome.status, http_status=outcome.http_status, error_type=outcome.error_type,
                counted=outcome.charged, prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens, cached_tokens=outcome.cached_tokens,
                cost_nanousd=outcome.cost_nanousd if outcome.charged else 0,
                latency_ms=outcome.latency_ms, upstream_latency_ms=outcome.upstream_latency_ms,
                finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return db.session.execute(statement).rowcount == 1


def _move_counters(reservation: Reservation, requests: int, tokens: int, cost: int) -> None:
    for period, start in (("day", reservation.day_start), ("month", reservation.month_start)):
        db.session.execute(
            update(UsageCounter)
            .where(UsageCounter.user_id == reservation.user_id, UsageCounter.period == period,
                   UsageCounter.period_start == start)
            .values(requests=UsageCounter.requests + requests, tokens=UsageCounter.tokens + tokens,
                    spend_nanousd=UsageCounter.spend_nanousd + cost)
            .execution_options(synchronize_session=False)
        )


def sweep_stale_reservations(older_than_s: int, now=None, batch: int = 500) -> int:
    """Release pending reservations older than the longest possible request (crashed workers)."""
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
