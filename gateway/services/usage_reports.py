"""Usage reports and the audit-row listing, summed and grouped in SQL from usage_records.

Definitions (also in docs/admin.md):
- requests: rows with counted = true, i.e. requests admitted against the user's quota;
- errors: rows whose status is neither 'ok' nor 'pending' (upstream errors, client disconnects,
  quota refusals, invalid requests, released reservations);
- tokens and cost: the actual amounts billed, from counted rows (a pending row adds 0 until it settles);
- a row belongs to the UTC day in its day_start column; from/to are inclusive.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import case, func, select

from gateway.errors import InvalidRequest
from gateway.extensions import db
from gateway.models import UsageRecord
from gateway.models.types import utcnow
from gateway.services.pagination import decode_cursor, page
from gateway.services.users import load_user
from gateway.services.views import record_view, usd_number

NOT_ERRORS = ("ok", "pending")
GROUP_COLUMNS = {"day": UsageRecord.day_start, "model": UsageRecord.model}


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


def _filters(user_id: int | None, status: str | None, start: date | None, end: date | None) -> list:
    filters = []
    if user_id is not None:
        filters.append(UsageRecord.user_id == user_id)
    if status is not None:
        filters.append(UsageRecord.status == status)
    if start is not None:
        filters.append(UsageRecord.day_start >= start)
    if end is not None:
        filters.append(UsageRecord.day_start <= end)
    return filters


def list_records(user_id: int | None = None, status: str | None = None, start: date | None = None,
                 end: date | None = None, limit: int = 50, cursor: str | None = None) -> dict:
    """One page of audit rows, newest first: {"data": [...], "next_cursor": str | None}."""
    _check_order(start, end)
    after = decode_cursor(cursor)
    if user_id is not None:
        load_user(user_id)
    query = (select(UsageRecord).where(*_filters(user_id, status, start, end))
             .order_by(UsageRecord.id.desc()).limit(limit + 1))
    if after is not None:
        query = query.where(UsageRecord.id < after)
    rows, next_cursor = page(list(db.session.execute(query).scalars()), limit)
    data = [record_view(record) for record in rows]
    db.session.rollback()
    return {"data": data, "next_cursor": next_cursor}
