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

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from gateway import ledger
from gateway.extensions import db
from gateway.models import UsageRecord
from gateway.models.types import utcnow
from gateway.request_db import ledger_step_connection
from gateway.services.quotas import Reservation

log = logging.getLogger("gateway.quotas")
# Settlement retries a failing database this many times, after these pauses, before it leaves the row
# to the reconciler (the caller still gets the answer).
SETTLE_RETRY_DELAYS_S = (0.2, 1.0)
RECONCILED = ledger.RECONCILED


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
            # A connection of its own, not the session's: the settlement is one ledger step and needs none
            # of the ORM's transaction bookkeeping (a third of the step's CPU); on PostgreSQL one statement.
            with ledger_step_connection() as connection:
                _settle(connection, reservation, outcome)
            return True
        except SQLAlchemyError as error:
            if delay is None:
                log.error("settlement failed; the reconciler will charge the reservation",
                          extra={"record_id": reservation.record_id,
                                 "error": type(getattr(error, "orig", None) or error).__name__})
                return False
            sleep(delay)
    return False


def _settle(connection, reservation: Reservation, outcome: Outcome) -> None:
    """The row takes the outcome and the counters go from holding the reservation to holding the outcome:
    by (charged - reserved) <= 0. A row the reconciler charged first (this worker looked dead) is corrected
    down the same way; the ledger knows which it was."""
    tokens = outcome.prompt_tokens + outcome.completion_tokens if outcome.charged else 0
    cost = outcome.cost_nanousd if outcome.charged else 0
    ledger.finish(connection, ledger.Move(
        record_id=reservation.record_id, user_id=reservation.user_id, day=reservation.day_start,
        month=reservation.month_start, add_requests=0 if outcome.charged else -1,
        add_tokens=tokens - reservation.tokens, add_cost_nanousd=cost - reservation.cost_nanousd,
        columns={"status": outcome.status, "http_status": outcome.http_status, "error_type": outcome.error_type,
                 "counted": outcome.charged, "prompt_tokens": outcome.prompt_tokens,
                 "completion_tokens": outcome.completion_tokens, "cached_tokens": outcome.cached_tokens,
                 "cost_nanousd": cost, "latency_ms": outcome.latency_ms,
                 "upstream_latency_ms": outcome.upstream_latency_ms, "finished_at": utcnow(),
                 "billing_rule": outcome.billing_rule}))


_HEARTBEAT_BATCH = 500


def heartbeat(record_ids, now=None) -> int:
    """Say that this worker still serves these pending rows, so the reconciler leaves them alone."""
    ids = sorted(record_ids)
    now = now or utcnow()
    touched = 0
    for start in range(0, len(ids), _HEARTBEAT_BATCH):
        touched += ledger.heartbeat(db.session.connection(), ids[start:start + _HEARTBEAT_BATCH], now)
        db.session.commit()
    return touched


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
        reconciled += ledger.charge_reservation(db.session.connection(), row.id, row.user_id, now)
        db.session.commit()
    if reconciled:
        log.warning("charged abandoned reservations", extra={"count": reconciled})
    return reconciled
