"""Settling reservations: the statements that finish an audit row and move the counters, with the
invariants each keeps.

- Exactly once: every change to an audit row is conditional on its status (`pending`, or `reconciled`
  for a late correction), so a request's own settlement and the reconciler race without counting twice.
- Never over a limit: an outcome is capped at its reservation before it is written (settle_bounds), so
  counters move by (charged - reserved) <= 0 after admission.
- Counters equal the audit rows: each transaction changes a row's counted amounts and the counters
  (and the user's in-flight count, services/in_flight.py) together.

The billing rules a settled row names in billing_rule:
  usage          the upstream's reported usage
  usage_capped   the upstream reported more than the worst case reserved: the reservation is charged
  estimate       no usage reported: the prompt estimate plus the output delivered (bytes / 4)
  failed_prompt  a failure after the request reached the upstream, BILL_FAILED_UPSTREAM=prompt:
                 the prompt estimate plus any output delivered
  failed_none    the same with BILL_FAILED_UPSTREAM=none: only output delivered, if any, with its prompt
  not_sent       the upstream never got the request (connect failure): nothing
  refused        the upstream refused it with an error status (3xx, 4xx, 5xx): nothing
  reservation    the reconciler charged the whole reservation (worker died, or lost the database at
                 settlement after the upstream answered)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from gateway.extensions import db
from gateway.models import UsageCounter, UsageRecord
from gateway.models.types import utcnow
from gateway.services.in_flight import release_slot
from gateway.services.quotas import Reservation

log = logging.getLogger("gateway.quotas")
# Settlement retries a failing database this many times, after these pauses, before it leaves the row
# to the reconciler (the caller still gets the answer).
SETTLE_RETRY_DELAYS_S = (0.2, 1.0)
RECONCILED = "reconciled"


@dataclass(frozen=True)
class Outcome:
    """How a request ended. charged=False releases the reservation; True bills the amounts given."""

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
    billing_rule: str | None = None


def settle_bounds(reservation: Reservation, outcome: Outcome) -> Outcome:
    """The outcome as it may be charged: never more tokens or cost than the reservation holds."""
    if not outcome.charged:
        return outcome
    prompt = min(outcome.prompt_tokens, reservation.prompt_tokens)
    completion = min(outcome.completion_tokens, reservation.completion_tokens)
    cost = min(outcome.cost_nanousd, reservation.cost_nanousd)
    if (prompt, completion, cost) == (outcome.prompt_tokens, outcome.completion_tokens, outcome.cost_nanousd):
        return outcome
    log.warning("usage above the reservation; charging the reservation",
                extra={"record_id": reservation.record_id, "prompt_tokens": outcome.prompt_tokens,
                       "completion_tokens": outcome.completion_tokens, "cost_nanousd": outcome.cost_nanousd})
    return replace(outcome, prompt_tokens=prompt, completion_tokens=completion, cost_nanousd=cost,
                   cached_tokens=min(outcome.cached_tokens, prompt), billing_rule="usage_capped")


def settle(reservation: Reservation, outcome: Outcome, sleep=time.sleep) -> bool:
    """Finish the audit row and move the counters by (charged - reserved), in one transaction.

    Retries a failing database (SETTLE_RETRY_DELAYS_S); if it stays down, returns False and leaves the
    row pending: its worker stops heartbeating it and the reconciler charges the reservation.
    """
    for delay in (*SETTLE_RETRY_DELAYS_S, None):
        try:
            _settle(reservation, outcome)
            db.session.commit()
            return True
        except SQLAlchemyError as error:
            db.session.rollback()
            if delay is None:
                log.error("settlement failed; the reconciler will charge the reservation",
                          extra={"record_id": reservation.record_id,
                                 "error": type(getattr(error, "orig", None) or error).__name__})
                return False
            sleep(delay)
    return False


def _settle(reservation: Reservation, outcome: Outcome) -> None:
    if _finish_record(reservation.record_id, outcome, expected_status="pending"):
        release_slot(reservation.user_id)
        _move_to(reservation, outcome)
    elif _finish_record(reservation.record_id, outcome, expected_status=RECONCILED):
        # The reconciler charged the whole reservation first (this worker looked dead): correct it down
        # to the real outcome. The row held exactly the reservation, so the same move applies.
        _move_to(reservation, outcome)


def _move_to(reservation: Reservation, outcome: Outcome) -> None:
    """Counters go from holding the reservation to holding the outcome: by (charged - reserved) <= 0."""
    tokens = outcome.prompt_tokens + outcome.completion_tokens if outcome.charged else 0
    cost = outcome.cost_nanousd if outcome.charged else 0
    _move_counters(reservation, 0 if outcome.charged else -1, tokens - reservation.tokens,
                   cost - reservation.cost_nanousd)


# Built once with bound parameters: constructing them per request cost more CPU than running them.
_RECORDS = UsageRecord.__table__
_FINISHED_COLUMNS = ("status", "http_status", "error_type", "counted", "prompt_tokens", "completion_tokens",
                     "cached_tokens", "cost_nanousd", "latency_ms", "upstream_latency_ms", "finished_at",
                     "billing_rule")
_FINISH_RECORD = (
    update(_RECORDS)
    .where(_RECORDS.c.id == bindparam("match_id"), _RECORDS.c.status == bindparam("match_status"))
    .values({name: bindparam(f"new_{name}", type_=_RECORDS.c[name].type) for name in _FINISHED_COLUMNS})
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
        "new_finished_at": utcnow(), "new_billing_rule": outcome.billing_rule,
    }).rowcount == 1


def _move_counters(reservation: Reservation, requests: int, tokens: int, cost: int) -> None:
    for period, start in (("day", reservation.day_start), ("month", reservation.month_start)):
        db.session.execute(_MOVE_COUNTER, {
            "match_user": reservation.user_id, "match_period": period, "match_start": start,
            "add_requests": requests, "add_tokens": tokens, "add_cost": cost})


_HEARTBEAT_BATCH = 500
_HEARTBEAT = (
    update(_RECORDS)
    .where(_RECORDS.c.id.in_(bindparam("ids", expanding=True)), _RECORDS.c.status == "pending")
    .values(heartbeat_at=bindparam("now", type_=_RECORDS.c.heartbeat_at.type))
)


def heartbeat(record_ids, now=None) -> int:
    """Say that this worker still serves these pending rows, so the reconciler leaves them alone."""
    ids = sorted(record_ids)
    now = now or utcnow()
    touched = 0
    for start in range(0, len(ids), _HEARTBEAT_BATCH):
        touched += db.session.execute(_HEARTBEAT, {"ids": ids[start:start + _HEARTBEAT_BATCH], "now": now}).rowcount
        db.session.commit()
    return touched


_RECONCILE = (
    update(_RECORDS)
    .where(_RECORDS.c.id == bindparam("match_id"), _RECORDS.c.status == "pending")
    .values(status=RECONCILED, error_type="settlement_missing", billing_rule="reservation",
            prompt_tokens=_RECORDS.c.reserved_prompt_tokens,
            completion_tokens=_RECORDS.c.reserved_completion_tokens,
            cost_nanousd=_RECORDS.c.reserved_cost_nanousd,
            finished_at=bindparam("now", type_=_RECORDS.c.finished_at.type))
)


def reconcile_stale_reservations(older_than_s: int, now=None, batch: int = 500) -> int:
    """Charge the whole reservation of pending rows nobody heartbeated for older_than_s
    (RESERVATION_TTL_S): their worker died, or lost the database when it tried to settle.

    The row keeps counting exactly what it reserved, so the counters do not move; only the user's
    in-flight slot comes back. A worker that was merely slow can still settle later: that corrects the
    row down to its real outcome (settle()).
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=older_than_s)
    last_alive = func.coalesce(UsageRecord.heartbeat_at, UsageRecord.created_at)
    stale = db.session.execute(
        select(UsageRecord.id, UsageRecord.user_id)
        .where(UsageRecord.status == "pending", last_alive < cutoff)
        .order_by(UsageRecord.id).limit(batch)
    ).all()
    db.session.rollback()
    reconciled = 0
    for row in stale:
        if db.session.execute(_RECONCILE, {"match_id": row.id, "now": now}).rowcount == 1:
            release_slot(row.user_id)
            reconciled += 1
        db.session.commit()
    if reconciled:
        log.warning("charged abandoned reservations", extra={"count": reconciled})
    return reconciled
