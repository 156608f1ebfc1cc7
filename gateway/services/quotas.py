"""Quota reservations that hold under concurrency: conditional counter updates plus a pending audit row.

reserve() admits a request only if the ledger's conditional updates succeed (gateway/ledger: one round
trip), in the same transaction that inserts the pending audit row: a concurrency slot, then the
user's day and month counters (`... WHERE used + n <= limit`). The amounts reserved are the request's
worst case (services/pricing.py: every prompt byte a token, plus max_tokens of output), and settlement
(services/settlement.py) never charges more than was reserved, so counters can only go down after
admission: no burst and no settlement ever takes a counter past its limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway import ledger, metrics
from gateway.errors import CallerChanged, Conflict, QuotaExceeded, RateLimited
from gateway.extensions import db
from gateway.models import UsageCounter, UsageRecord
from gateway.models.types import utcnow
from gateway.request_db import ledger_turn, request_connection
from gateway.money import usd_number
from gateway.services.in_flight import in_flight
from gateway.services.limits import EffectiveLimits
from gateway.services.reconcile import snapshot

CONCURRENCY_RETRY_AFTER_S = 1


STATUS_KEYS = {"daily_requests": "daily_requests", "daily_tokens": "daily_tokens",
               "monthly_spend_cap_usd": "monthly_spend_usd"}


@dataclass(frozen=True)
class Reservation:
    """What a pending audit row holds against the counters."""

    record_id: int
    user_id: int
    day_start: date
    month_start: date
    prompt_tokens: int
    completion_tokens: int
    cost_nanousd: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ReservationFacts:
    """Everything the audit row records at reservation time."""

    request_id: str
    user_id: int
    key_id: int
    endpoint: str
    provider: str
    model: str
    stream: bool
    client_ip: str
    prompt_tokens: int
    completion_tokens: int
    cost_nanousd: int
    price_snapshot: dict | None
    prompt_record: dict | None


def period_starts(now: datetime) -> tuple[date, date]:
    """UTC day and month the moment `now` belongs to."""
    today = now.astimezone(UTC).date()
    return today, today.replace(day=1)


def reserve(facts: ReservationFacts, limits: EffectiveLimits, now: datetime | None = None) -> Reservation:
    """Admit and hold the request's worst case, or raise QuotaExceeded / RateLimited (concurrency)
    leaving a refused audit row; CallerChanged, leaving nothing, if the key is no longer live, its user
    not active, or the limits not the user's (the caller authenticates afresh and tries again)."""
    now = now or utcnow()
    day, month = period_starts(now)
    tokens = facts.prompt_tokens + facts.completion_tokens
    hold = ledger.Hold(user_id=facts.user_id, key_id=facts.key_id, now=now, limits_as_stored=limits.as_stored(),
                       day=day, month=month, tokens=tokens, cost_nanousd=facts.cost_nanousd,
                       max_concurrent=limits.max_concurrent_requests, max_requests=limits.daily_requests,
                       max_tokens=limits.daily_tokens, max_spend_nanousd=limits.monthly_spend_cap_nanousd)
    # The request's connection (authentication's, if it read the key): one checkout. On PostgreSQL admit() is
    # one all-or-nothing statement in autocommit (commit and rollback send nothing); on SQLite a transaction.
    connection = request_connection()
    try:
        with ledger_turn(connection):
            admitted = ledger.admit(connection, hold, _record(facts, day, month, status="pending", counted=True))
            if not isinstance(admitted, str):
                connection.commit()
                return Reservation(admitted, facts.user_id, day, month, facts.prompt_tokens,
                                   facts.completion_tokens, facts.cost_nanousd)
            connection.rollback()
        refused = _which_daily_quota(connection, facts.user_id, day, limits) if admitted == ledger.DAILY else admitted
    except IntegrityError:
        raise Conflict("X-Request-ID was already used by another request; send a unique one.",
                       code="duplicate_request_id", param="X-Request-ID") from None
    finally:
        # Given back now: the refusal reads its figures on connections of its own, and one request must
        # never hold two at once (a burst of refusals would drain the pool).
        connection.close()
    if refused == ledger.CALLER:
        raise CallerChanged()
    if refused == ledger.CONCURRENCY:
        raise _concurrency_refusal(facts, day, month, limits)
    raise _refusal(facts, day, month, refused, limits, now)


def _counter(user_id: int, period: str, start: date, session=None) -> UsageCounter | None:
    return (session or db.session).execute(
        select(UsageCounter).where(UsageCounter.user_id == user_id, UsageCounter.period == period,
                                   UsageCounter.period_start == start)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _which_daily_quota(connection, user_id: int, day: date, limits: EffectiveLimits) -> str:
    counters = UsageCounter.__table__
    requests = connection.execute(
        select(counters.c.requests).where(counters.c.user_id == user_id, counters.c.period == "day",
                                          counters.c.period_start == day)).scalar_one_or_none()
    if requests is not None and requests + 1 > limits.daily_requests:
        return "daily_requests"
    return "daily_tokens"


def _record(facts: ReservationFacts, day: date, month: date, *, status: str, counted: bool,
            http_status: int | None = None, error_type: str | None = None) -> dict:
    """The audit row's columns at reservation (pending) or refusal."""
    return {
        "request_id": facts.request_id, "user_id": facts.user_id, "key_id": facts.key_id,
        "endpoint": facts.endpoint, "provider": facts.provider, "model": facts.model, "status": status,
        "counted": counted, "stream": facts.stream, "http_status": http_status, "error_type": error_type,
        "reserved_prompt_tokens": facts.prompt_tokens, "reserved_completion_tokens": facts.completion_tokens,
        "reserved_cost_nanousd": facts.cost_nanousd, "price_snapshot": facts.price_snapshot,
        "client_ip": facts.client_ip, "prompt_record": facts.prompt_record, "day_start": day,
        "month_start": month, "finished_at": None if status == "pending" else utcnow(),
    }


def _insert_refusal(facts: ReservationFacts, day: date, month: date, status: str, error_type: str) -> None:
    """The refused request's audit row (holding nothing); a duplicate request id is already on record."""
    try:
        ledger.insert_record(db.session.connection(), _record(facts, day, month, status=status, counted=False,
                                                              http_status=429, error_type=error_type))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()


def _refusal(facts, day, month, quota, limits: EffectiveLimits, now: datetime) -> QuotaExceeded:
    """Record the refused request and build the 429 naming the quota, its use and its reset."""
    status = quota_status(facts.user_id, limits, now)[STATUS_KEYS[quota]]
    _insert_refusal(facts, day, month, "quota_exceeded", "quota_exceeded")
    metrics.quota_rejected(quota)
    retry_after = max(1, int((datetime.fromisoformat(status["resets_at"]) - now).total_seconds()))
    return QuotaExceeded(
        f"Quota {quota} exceeded: limit {status['limit']}, used {status['used']}, reserved by requests "
        f"in flight {status['reserved']}; it resets at {status['resets_at']}.",
        code=quota, headers={"Retry-After": str(retry_after)},
        details={"quota": quota, "limit": status["limit"], "used": status["used"],
                 "reserved": status["reserved"], "resets_at": status["resets_at"]})


def _concurrency_refusal(facts, day, month, limits: EffectiveLimits) -> RateLimited:
    """Record the refused request and build the 429 naming the cap and the requests in flight."""
    current = in_flight(facts.user_id) or 0
    _insert_refusal(facts, day, month, "concurrency_limited", "concurrency_limit_exceeded")
    return RateLimited(
        f"Too many requests in flight: this user may have {limits.max_concurrent_requests} at once "
        f"(max_concurrent_requests) and has {current}. Retry when one of them has finished.",
        code="concurrency_limit_exceeded", headers={"Retry-After": str(CONCURRENCY_RETRY_AFTER_S)},
        details={"limit_scope": "concurrency", "limit": limits.max_concurrent_requests, "in_flight": current})


def quota_status(user_id: int, limits: EffectiveLimits, now: datetime | None = None) -> dict:
    """Each quota's limit, used (settled), reserved (in flight), remaining and reset time, and the
    concurrency cap's in-flight count, read in one snapshot so that used = counter - pending is never torn by
    a concurrent reservation."""
    now = now or utcnow()
    day, month = period_starts(now)
    with snapshot() as session:
        day_counter = _counter(user_id, "day", day, session)
        month_counter = _counter(user_id, "month", month, session)
        pending = _pending_totals(session, user_id, day, month)
        running = in_flight(user_id, session) or 0
    next_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    next_month = datetime.combine(_next_month(month), datetime.min.time(), UTC)
    spend_total = month_counter.spend_nanousd if month_counter else 0
    return {
        "daily_requests": _entry(limits.daily_requests, day_counter.requests if day_counter else 0,
                                 pending["day_requests"], next_day),
        "daily_tokens": _entry(limits.daily_tokens, day_counter.tokens if day_counter else 0,
                               pending["day_tokens"], next_day),
        "monthly_spend_usd": _money_entry(limits.monthly_spend_cap_nanousd, spend_total,
                                              pending["month_cost"], next_month),
        "concurrent_requests": _concurrency_entry(limits.max_concurrent_requests, running),
    }


def _concurrency_entry(limit: int, running: int) -> dict:
    """Requests in flight against max_concurrent_requests; 0 is unlimited: no limit, nothing remaining to say."""
    if limit <= 0:
        return {"limit": None, "in_flight": running, "remaining": None}
    return {"limit": limit, "in_flight": running, "remaining": max(0, limit - running)}


def _entry(limit: int, total: int, reserved: int, resets: datetime) -> dict:
    return {"limit": limit, "used": total - reserved, "reserved": reserved,
            "remaining": max(0, limit - total), "resets_at": resets.isoformat()}


def _money_entry(limit: int, total: int, reserved: int, resets: datetime) -> dict:
    entry = _entry(limit, total, reserved, resets)
    for name in ("limit", "used", "reserved", "remaining"):
        entry[name] = usd_number(entry[name])
    return entry


def _pending_totals(session, user_id: int, day: date, month: date) -> dict:
    rows = session.execute(
        select(UsageRecord.day_start, UsageRecord.month_start, UsageRecord.reserved_prompt_tokens,
               UsageRecord.reserved_completion_tokens, UsageRecord.reserved_cost_nanousd)
        .where(UsageRecord.user_id == user_id, UsageRecord.status == "pending",
               UsageRecord.month_start == month)
    ).all()
    today = [r for r in rows if r.day_start == day]
    return {"day_requests": len(today),
            "day_tokens": sum(r.reserved_prompt_tokens + r.reserved_completion_tokens for r in today),
            "month_cost": sum(r.reserved_cost_nanousd for r in rows)}


def _next_month(month: date) -> date:
    return month.replace(year=month.year + 1, month=1) if month.month == 12 else month.replace(month=month.month + 1)
