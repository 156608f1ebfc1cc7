"""Usage reports and the audit-row listing, summed and grouped in SQL from usage_records.

Definitions (also in docs/admin.md):
- requests: rows with counted = true, i.e. requests admitted against the user's quota;
- errors: rows whose status is neither 'ok' nor 'pending' (upstream errors, client disconnects,
  internal errors, quota and concurrency refusals, reconciled and released reservations);
- tokens and cost: the actual amounts billed, from counted rows (a pending row adds 0 until it settles);
- a row belongs to the UTC day in its day_start column; from/to are inclusive.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import case, func, select

from gateway.errors import InvalidRequest
from gateway.extensions import db
from gateway.models import UsageRecord, User
from gateway.models.types import utcnow
from gateway.services.pagination import decode_cursor, page
from gateway.services.users import load_user
from gateway.services.views import record_view, usd_number

NOT_ERRORS = ("ok", "pending")
GROUP_COLUMNS = {"day": UsageRecord.day_start, "model": UsageRecord.model}
SERIES_DAYS = 30
MAX_SERIES_DAYS = 366


def report_period(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """Fill the defaults (the current month so far; from = the 1st of to's month) and check from <= to."""
    end = end or today
    start = start or end.replace(day=1)
    _check_order(start, end)
    return start, end


def _check_order(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and start > end:
        raise InvalidRequest(f"from: {start.isoformat()} is after to ({end.isoformat()}); from must be on "
                             "or before to.", code="invalid_range", param="from")


def usage_report(user_id: int | None = None, start: date | None = None, end: date | None = None,
                 group_by: str | None = None, today: date | None = None) -> dict:
    """Totals for the period (one user or everyone), optionally grouped by day or model."""
    start, end = report_period(start, end, today or utcnow().date())
    if group_by is not None and group_by not in GROUP_COLUMNS:
        raise ValueError(f"unknown group_by {group_by!r}")
    if user_id is not None:
        load_user(user_id)
    filters = _filters(user_id, None, start, end)
    totals = _totals(db.session.execute(select(*_sums()).where(*filters)).one())
    groups = _groups(group_by, filters) if group_by else []
    db.session.rollback()
    return {"from": start.isoformat(), "to": end.isoformat(), "user_id": user_id, "group_by": group_by,
            "totals": totals, "groups": groups}


def _sums() -> tuple:
    counted = UsageRecord.counted.is_(True)
    errors = case((UsageRecord.status.not_in(NOT_ERRORS), 1), else_=0)
    billed = (case((counted, column), else_=0) for column in
              (UsageRecord.prompt_tokens, UsageRecord.completion_tokens, UsageRecord.cost_nanousd))
    return tuple(func.coalesce(func.sum(column), 0) for column in (case((counted, 1), else_=0), errors, *billed))


def _totals(row) -> dict:
    requests, errors, prompt, completion, cost = (int(value) for value in row)
    return {"requests": requests, "errors": errors, "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "cost_usd": usd_number(cost)}


def _groups(group_by: str, filters: list) -> list[dict]:
    column = GROUP_COLUMNS[group_by]
    query = (select(column, *_sums()).where(*filters).group_by(column)
             .order_by(column.is_(None), column))
    groups = []
    for key, *sums in db.session.execute(query):
        label = key.isoformat() if isinstance(key, date) else key
        groups.append({"key": label, **_totals(sums)})
    return groups


def usage_by_user(start: date | None = None, end: date | None = None, limit: int = 10,
                  today: date | None = None) -> dict:
    """Totals per user for the period (default: this month so far), biggest spenders first.

    Ties go to more requests, then the lower user id; users with no audit rows in the period are absent.
    """
    start, end = report_period(start, end, today or utcnow().date())
    sums = _sums()
    query = (select(UsageRecord.user_id, User.name, User.email, User.status, *sums)
             .join(User, User.id == UsageRecord.user_id)
             .where(*_filters(None, None, start, end))
             .group_by(UsageRecord.user_id, User.name, User.email, User.status)
             .order_by(sums[-1].desc(), sums[0].desc(), UsageRecord.user_id).limit(limit))
    data = [{"user_id": user_id, "name": name, "email": email, "status": status, **_totals(row)}
            for user_id, name, email, status, *row in db.session.execute(query)]
    db.session.rollback()
    return {"from": start.isoformat(), "to": end.isoformat(), "data": data}


def daily_series(user_id: int | None = None, start: date | None = None, end: date | None = None,
                 today: date | None = None) -> dict:
    """One entry per UTC day from..to (default: the 30 days ending today), zeros on days without rows."""
    end = end or today or utcnow().date()
    start = start or end - timedelta(days=SERIES_DAYS - 1)
    _check_order(start, end)
    if (end - start).days >= MAX_SERIES_DAYS:
        raise InvalidRequest(f"from..to spans {(end - start).days + 1} days; a daily series covers at most "
                             f"{MAX_SERIES_DAYS}.", code="invalid_range", param="from")
    if user_id is not None:
        load_user(user_id)
    by_day = {group.pop("key"): group for group in _groups("day", _filters(user_id, None, start, end))}
    db.session.rollback()
    days = (start + timedelta(days=offset) for offset in range((end - start).days + 1))
    data = [{"day": day.isoformat(), **by_day.get(day.isoformat(), _totals((0, 0, 0, 0, 0)))} for day in days]
    return {"from": start.isoformat(), "to": end.isoformat(), "user_id": user_id, "data": data}


def _filters(user_id: int | None, status: str | None, start: date | None, end: date | None,
             model: str | None = None) -> list:
    filters = []
    if user_id is not None:
        filters.append(UsageRecord.user_id == user_id)
    if status is not None:
        filters.append(UsageRecord.status == status)
    if model is not None:
        filters.append(UsageRecord.model == model)
    if start is not None:
        filters.append(UsageRecord.day_start >= start)
    if end is not None:
        filters.append(UsageRecord.day_start <= end)
    return filters


def list_records(user_id: int | None = None, status: str | None = None, start: date | None = None,
                 end: date | None = None, limit: int = 50, cursor: str | None = None,
                 model: str | None = None) -> dict:
    """One page of audit rows, newest first: {"data": [...], "next_cursor": str | None}."""
    _check_order(start, end)
    after = decode_cursor(cursor)
    if user_id is not None:
        load_user(user_id)
    query = (select(UsageRecord).where(*_filters(user_id, status, start, end, model))
             .order_by(UsageRecord.id.desc()).limit(limit + 1))
    if after is not None:
        query = query.where(UsageRecord.id < after)
    rows, next_cursor = page(list(db.session.execute(query).scalars()), limit)
    data = [record_view(record) for record in rows]
    db.session.rollback()
    return {"data": data, "next_cursor": next_cursor}
