"""The invariant check: every counter equals the sum of the audit rows that hold a share of it."""

from __future__ import annotations

from sqlalchemy import case, func, select

from gateway.extensions import db
from gateway.models import UsageCounter, UsageRecord


def counter_mismatches(user_id: int | None = None) -> list[dict]:
    """Counters whose requests/tokens/spend differ from their audit rows; empty when all agree."""
    mismatches = []
    for period, column in (("day", UsageRecord.day_start), ("month", UsageRecord.month_start)):
        expected = _audit_sums(column, user_id)
        actual = _counters(period, user_id)
        for key in expected.keys() | actual.keys():
            want, have = expected.get(key, (0, 0, 0)), actual.get(key, (0, 0, 0))
            if want != have:
                mismatches.append({"user_id": key[0], "period": period, "period_start": str(key[1]),
                                   "audit": dict(zip(("requests", "tokens", "spend_nanousd"), want)),
                                   "counter": dict(zip(("requests", "tokens", "spend_nanousd"), have))})
    db.session.rollback()
    return mismatches


def _audit_sums(period_column, user_id):
    pending = UsageRecord.status == "pending"
    tokens = case((pending, UsageRecord.reserved_prompt_tokens + UsageRecord.reserved_completion_tokens),
                  else_=UsageRecord.prompt_tokens + UsageRecord.completion_tokens)
    cost = case((pending, UsageRecord.reserved_cost_nanousd), else_=UsageRecord.cost_nanousd)
    query = (select(UsageRecord.user_id, period_column, func.count(), func.sum(tokens), func.sum(cost))
             .where(UsageRecord.counted.is_(True)).group_by(UsageRecord.user_id, period_column))
    if user_id is not None:
        query = query.where(UsageRecord.user_id == user_id)
    return {(r[0], r[1]): (int(r[2]), int(r[3] or 0), int(r[4] or 0)) for r in db.session.execute(query)}


def _counters(period: str, user_id):
    query = select(UsageCounter).where(UsageCounter.period == period)
    if user_id is not None:
        query = query.where(UsageCounter.user_id == user_id)
    return {(c.user_id, c.period_start): (c.requests, c.tokens, c.spend_nanousd)
            for c in db.session.execute(query).scalars()}
