"""Every quota's use right now for many users at once: the console's quota bars and its near-caps list.

Read from what admission reads (the day and month usage_counters) plus the pending audit rows, so a bar
shows exactly what the next request is admitted against: `used` is settled, `reserved` is held by requests
in flight, and `fraction` = (used + reserved) / limit. A limit of 0 admits nothing, so its fraction is 1.
Concurrency counts requests in flight against max_concurrent_requests (`limit: null` when it is 0, unlimited).
A constant number of queries per call, whatever the number of users on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import noload

from gateway.config import Settings
from gateway.extensions import db
from gateway.models import UsageCounter, UsageRecord, User
from gateway.models.types import utcnow
from gateway.services.limits import effective_limits
from gateway.services.pagination import decode_cursor, page
from gateway.services.quotas import period_starts
from gateway.services.users import load_user
from gateway.services.views import usd_number

QUOTA_NAMES = ("daily_requests", "daily_tokens", "monthly_spend_usd", "concurrent_requests")


@dataclass
class Use:
    """One user's counters for the current day and month, and what pending rows hold of them."""

    day_requests: int = 0
    day_tokens: int = 0
    month_spend: int = 0
    pending_day_requests: int = 0
    pending_day_tokens: int = 0
    pending_month_spend: int = 0
    in_flight: int = 0


def list_quotas(settings: Settings, *, search: str | None = None, status: str | None = None, limit: int = 50,
                cursor: str | None = None, now: datetime | None = None) -> dict:
    """One page of users by id with each quota's use; search matches name or email, case-insensitively."""
    after = decode_cursor(cursor)
    query = select(User).options(noload(User.keys)).order_by(User.id).limit(limit + 1)
    if search:
        needle = search.lower()
        query = query.where(or_(func.lower(User.name).contains(needle, autoescape=True),
                                func.lower(User.email).contains(needle, autoescape=True)))
    if status is not None:
        query = query.where(User.status == status)
    if after is not None:
        query = query.where(User.id > after)
    rows, next_cursor = page(list(db.session.execute(query).scalars()), limit)
    uses = _uses([user.id for user in rows], now or utcnow())
    data = [quota_view(user, settings, uses.get(user.id, Use())) for user in rows]
    db.session.rollback()
    return {"data": data, "next_cursor": next_cursor}


def user_quotas(user_id: int, settings: Settings, now: datetime | None = None) -> dict:
    """One user's quota use."""
    user = load_user(user_id)
    view = quota_view(user, settings, _uses([user.id], now or utcnow()).get(user.id, Use()))
    db.session.rollback()
    return view


def near_caps(settings: Settings, threshold: float, limit: int = 20, now: datetime | None = None) -> dict:
    """Active users with some quota at or past threshold of its limit, the fullest first (then by id)."""
    users = list(db.session.execute(select(User).options(noload(User.keys))
                                    .where(User.status == "active").order_by(User.id)).scalars())
    uses = _uses(None, now or utcnow())
    flagged = []
    for user in users:
        view = quota_view(user, settings, uses.get(user.id, Use()))
        nearest = max(((name, entry["fraction"]) for name, entry in view["quotas"].items()
                       if entry["fraction"] is not None), key=lambda item: item[1])
        if nearest[1] >= threshold:
            flagged.append({**view, "nearest": {"quota": nearest[0], "fraction": nearest[1]}})
    db.session.rollback()
    flagged.sort(key=lambda view: (-view["nearest"]["fraction"], view["user_id"]))
    return {"threshold": threshold, "data": flagged[:limit]}


def quota_view(user: User, settings: Settings, use: Use) -> dict:
    """A user and each of their quotas as {limit, used, reserved, fraction}."""
    limits = effective_limits(user, settings)
    spend = _entry(limits.monthly_spend_cap_nanousd, use.month_spend, use.pending_month_spend)
    spend.update({name: usd_number(spend[name]) for name in ("limit", "used", "reserved")})
    return {
        "user_id": user.id, "name": user.name, "email": user.email, "status": user.status,
        "quotas": {
            "daily_requests": _entry(limits.daily_requests, use.day_requests, use.pending_day_requests),
            "daily_tokens": _entry(limits.daily_tokens, use.day_tokens, use.pending_day_tokens),
            "monthly_spend_usd": spend,
            "concurrent_requests": _in_flight_entry(limits.max_concurrent_requests, use.in_flight),
        },
    }


def _in_flight_entry(limit: int, in_flight: int) -> dict:
    """Requests in flight against max_concurrent_requests; 0 means unlimited, so no limit and no fraction."""
    if limit <= 0:
        return {"limit": None, "used": in_flight, "reserved": 0, "fraction": None}
    return {"limit": limit, "used": in_flight, "reserved": 0, "fraction": round(in_flight / limit, 4)}


def _entry(limit: int, total: int, reserved: int) -> dict:
    fraction = 1.0 if limit <= 0 else round(total / limit, 4)
    return {"limit": limit, "used": total - reserved, "reserved": reserved, "fraction": fraction}


def _uses(user_ids: list[int] | None, now: datetime) -> dict[int, Use]:
    """Current-period counters and pending holds per user (every user when user_ids is None)."""
    if user_ids == []:
        return {}
    day, month = period_starts(now)
    uses: dict[int, Use] = {}
    counters = select(UsageCounter).where(or_(
        and_(UsageCounter.period == "day", UsageCounter.period_start == day),
        and_(UsageCounter.period == "month", UsageCounter.period_start == month)))
    if user_ids is not None:
        counters = counters.where(UsageCounter.user_id.in_(user_ids))
    for counter in db.session.execute(counters).scalars():
        use = uses.setdefault(counter.user_id, Use())
        if counter.period == "day":
            use.day_requests, use.day_tokens = counter.requests, counter.tokens
        else:
            use.month_spend = counter.spend_nanousd
    for user_id, *pending in db.session.execute(_pending_query(user_ids, day, month)):
        use = uses.setdefault(user_id, Use())
        (use.in_flight, use.pending_day_requests, use.pending_day_tokens,
         use.pending_month_spend) = (int(value or 0) for value in pending)
    return uses


def _pending_query(user_ids: list[int] | None, day, month):
    """Per user: pending rows, and of them what today's and this month's counters hold."""
    today = UsageRecord.day_start == day
    this_month = UsageRecord.month_start == month
    tokens = UsageRecord.reserved_prompt_tokens + UsageRecord.reserved_completion_tokens
    query = (select(UsageRecord.user_id, func.count(),
                    func.sum(case((today, 1), else_=0)),
                    func.sum(case((today, tokens), else_=0)),
                    func.sum(case((this_month, UsageRecord.reserved_cost_nanousd), else_=0)))
             .where(UsageRecord.status == "pending").group_by(UsageRecord.user_id))
    if user_ids is not None:
        query = query.where(UsageRecord.user_id.in_(user_ids))
    return query
