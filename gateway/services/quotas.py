"""Quota reservations that hold under concurrency: conditional counter UPDATEs plus a pending audit row.

reserve() admits a request only if single-statement conditional UPDATEs on the user's day and month
counters succeed (`... WHERE used + n <= limit`), in the same short transaction that inserts the
pending audit row. settle() moves the counters by (actual - reserved); release() gives the
reservation back. The database serialises the UPDATEs, so no burst can overshoot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from gateway import metrics
from gateway.errors import Conflict, QuotaExceeded
from gateway.extensions import db
from gateway.models import UsageCounter, UsageRecord
from gateway.models.types import utcnow
from gateway.services.limits import NANOS_PER_USD, EffectiveLimits


STATUS_KEYS = {"daily_requests": "daily_requests", "daily_tokens": "daily_tokens",
               "monthly_spend_cap_usd": "monthly_spend_usd"}


@dataclass(frozen=True)
class Reservation:
    """What a pending audit row holds against the counters."""

    record_id: int
    user_id: int
    day_start: date
    month_start: date
    tokens: int
    cost_nanousd: int


@dataclass(frozen=True)
class RequestFacts:
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


def reserve(facts: RequestFacts, limits: EffectiveLimits, now: datetime | None = None) -> Reservation:
    """Admit and hold the request's worst case, or raise QuotaExceeded leaving a refused audit row."""
    now = now or utcnow()
    day, month = period_starts(now)
    tokens = facts.prompt_tokens + facts.completion_tokens
    try:
        refused = _hold(facts.user_id, day, month, tokens, facts.cost_nanousd, limits)
        if refused is None:
            record_id = _insert_record(facts, day, month, status="pending", counted=True).id
            db.session.commit()  # read the id first: commit expires the row and reading it again is a query
            return Reservation(record_id, facts.user_id, day, month, tokens, facts.cost_nanousd)
        db.session.rollback()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("X-Request-ID was already used by another request; send a unique one.",
                       code="duplicate_request_id", param="X-Request-ID") from None
    except Exception:
        db.session.rollback()
        raise
    raise _refusal(facts, day, month, refused, limits, now)


def _hold(user_id: int, day: date, month: date, tokens: int, cost: int, limits: EffectiveLimits) -> str | None:
    """Raise both counters or neither; returns the name of the quota that refused, if any."""
    day_ok = _conditional_add(user_id, "day", day, tokens, cost, [
        (UsageCounter.requests + 1, limits.daily_requests),
        (UsageCounter.tokens + tokens, limits.daily_tokens),
    ])
    if not day_ok:
        return _which_daily_quota(user_id, day, tokens, limits)
    month_ok = _conditional_add(user_id, "month", month, tokens, cost, [
        (UsageCounter.spend_nanousd + cost, limits.monthly_spend_cap_nanousd),
    ])
    return None if month_ok else "monthly_spend_cap_usd"


def _conditional_add(user_id, period, start, tokens, cost, conditions) -> bool:
    """One UPDATE ... WHERE used + n <= limit; creates the period's row on first use."""
    statement = (
        update(UsageCounter)
        .where(UsageCounter.user_id == user_id, UsageCounter.period == period,
               UsageCounter.period_start == start)
        .where(*[expression <= limit for expression, limit in conditions])
        .values(requests=UsageCounter.requests + 1, tokens=UsageCounter.tokens + tokens,
                spend_nanousd=UsageCounter.spend_nanousd + cost)
        .execution_options(synchronize_session=False)
    )
    if db.session.execute(statement).rowcount == 1:
        return True
    # Refused, or the row did not exist yet when the UPDATE ran (a concurrent first request may
    # have created it since): make sure it exists, then try once more; a real refusal repeats.
    if _counter(user_id, period, start) is None:
        _create_counter(user_id, period, start)
    return db.session.execute(statement).rowcount == 1


def _create_counter(user_id: int, period: str, start: date) -> None:
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(UsageCounter).values(user_id=user_id, period=period, period_start=start,
                                            requests=0, tokens=0, spend_nanousd=0)
    db.session.execute(statement.on_conflict_do_nothing(
        index_elements=["user_id", "period", "period_start"]))


def _counter(user_id: int, period: str, start: date) -> UsageCounter | None:
    return db.session.execute(
        select(UsageCounter).where(UsageCounter.user_id == user_id, UsageCounter.period == period,
                                   UsageCounter.period_start == start)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _which_daily_quota(user_id: int, day: date, tokens: int, limits: EffectiveLimits) -> str:
    counter = _counter(user_id, "day", day)
    if counter is not None and counter.requests + 1 > limits.daily_requests:
        return "daily_requests"
    return "daily_tokens"


def _insert_record(facts: RequestFacts, day: date, month: date, *, status: str, counted: bool,
                   http_status: int | None = None, error_type: str | None = None) -> UsageRecord:
    record = UsageRecord(
        request_id=facts.request_id, user_id=facts.user_id, key_id=facts.key_id, endpoint=facts.endpoint,
        provider=facts.provider, model=facts.model, status=status, counted=counted, stream=facts.stream,
        http_status=http_status, error_type=error_type,
        reserved_prompt_tokens=facts.prompt_tokens, reserved_completion_tokens=facts.completion_tokens,
        reserved_cost_nanousd=facts.cost_nanousd, price_snapshot=facts.price_snapshot,
        client_ip=facts.client_ip, prompt_record=facts.prompt_record, day_start=day, month_start=month,
    )
    if status != "pending":
        record.finished_at = utcnow()
    db.session.add(record)
    db.session.flush()
    return record


def _refusal(facts, day, month, quota, limits: EffectiveLimits, now: datetime) -> QuotaExceeded:
    """Record the refused request and build the 429 naming the quota, its use and its reset."""
    status = quota_status(facts.user_id, limits, now)[STATUS_KEYS[quota]]
    try:
        _insert_record(facts, day, month, status="quota_exceeded", counted=False, http_status=429,
                       error_type="quota_exceeded")
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
    metrics.quota_rejected(quota)
    retry_after = max(1, int((datetime.fromisoformat(status["resets_at"]) - now).total_seconds()))
    return QuotaExceeded(
        f"Quota {quota} exceeded: limit {status['limit']}, used {status['used']}, reserved by requests "
        f"in flight {status['reserved']}; it resets at {status['resets_at']}.",
        code=quota, headers={"Retry-After": str(retry_after)},
        details={"quota": quota, "limit": status["limit"], "used": status["used"],
                 "reserved": status["reserved"], "resets_at": status["resets_at"]})


def quota_status(user_id: int, limits: EffectiveLimits, now: datetime | None = None) -> dict:
    """Each quota's limit, used (settled), reserved (in flight), remaining and reset time."""
    now = now or utcnow()
    day, month = period_starts(now)
    day_counter = _counter(user_id, "day", day)
    month_counter = _counter(user_id, "month", month)
    pending = _pending_totals(user_id, day, month)
    next_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    next_month = datetime.combine(_next_month(month), datetime.min.time(), UTC)
    spend_total = month_counter.spend_nanousd if month_counter else 0
    db.session.rollback()
    return {
        "daily_requests": _entry(limits.daily_requests, day_counter.requests if day_counter else 0,
                                 pending["day_requests"], next_day),
        "daily_tokens": _entry(limits.daily_tokens, day_counter.tokens if day_counter else 0,
                               pending["day_tokens"], next_day),
        "monthly_spend_usd": _money_entry(limits.monthly_spend_cap_nanousd, spend_total,
                                              pending["month_cost"], next_month),
    }


def _entry(limit: int, total: int, reserved: int, resets: datetime) -> dict:
    return {"limit": limit, "used": total - reserved, "reserved": reserved,
            "remaining": max(0, limit - total), "resets_at": resets.isoformat()}


def _money_entry(limit: int, total: int, reserved: int, resets: datetime) -> dict:
    entry = _entry(limit, total, reserved, resets)
    for name in ("limit", "used", "reserved", "remaining"):
        entry[name] = entry[name] / NANOS_PER_USD
    return entry


def _pending_totals(user_id: int, day: date, month: date) -> dict:
    rows = db.session.execute(
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
