"""The invariant check: every counter equals the sum of the audit rows that hold a share of it, and every
user's in-flight count equals their pending rows, all read in one snapshot of the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2.extensions
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from gateway.extensions import db
from gateway.models import InFlight, UsageCounter, UsageRecord

FIELDS = ("requests", "tokens", "spend_nanousd")


@contextmanager
def snapshot() -> Iterator[Session]:
    """A read-only session whose statements all see one snapshot: REPEATABLE READ on PostgreSQL, an
    explicit BEGIN on SQLite (whose driver would otherwise run each SELECT in a transaction of its own)."""
    engine = db.engine
    with engine.connect() as connection:
        driver = connection.connection.dbapi_connection
        if engine.dialect.name == "postgresql":
            # The driver's own attribute, put back after: SQLAlchemy's execution_options(isolation_level=...)
            # would leave the connection with an explicit level, and every later switch into autocommit
            # (gateway/request_db.py) would then cost a SET round trip.
            driver.isolation_level = psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ
        else:
            connection.exec_driver_sql("BEGIN")
        session = Session(bind=connection)
        try:
            yield session
        finally:
            session.close()
            connection.rollback()
            if engine.dialect.name == "postgresql" and not driver.closed:
                driver.isolation_level = None  # the session's default: READ COMMITTED (database._read_committed)


def counter_mismatches(user_id: int | None = None) -> list[dict]:
    """Counters whose requests/tokens/spend differ from their audit rows; empty when all agree."""
    mismatches = []
    with snapshot() as session:
        for period, column in (("day", UsageRecord.day_start), ("month", UsageRecord.month_start)):
            expected = _audit_sums(session, column, user_id)
            actual = _counters(session, period, user_id)
            for key in expected.keys() | actual.keys():
                want, have = expected.get(key, (0, 0, 0)), actual.get(key, (0, 0, 0))
                if want != have:
                    mismatches.append({"user_id": key[0], "period": period, "period_start": str(key[1]),
                                       "audit": dict(zip(FIELDS, want)), "counter": dict(zip(FIELDS, have))})
        pending, in_flight = _pending_rows(session, user_id), _in_flight(session, user_id)
        for key in pending.keys() | in_flight.keys():
            if pending.get(key, 0) != in_flight.get(key, 0):
                mismatches.append({"user_id": key, "period": "in_flight", "period_start": "-",
                                   "audit": {"pending": pending.get(key, 0)},
                                   "counter": {"in_flight": in_flight.get(key, 0)}})
    return mismatches


def _audit_sums(session: Session, period_column, user_id):
    pending = UsageRecord.status == "pending"
    tokens = case((pending, UsageRecord.reserved_prompt_tokens + UsageRecord.reserved_completion_tokens),
                  else_=UsageRecord.prompt_tokens + UsageRecord.completion_tokens)
    cost = case((pending, UsageRecord.reserved_cost_nanousd), else_=UsageRecord.cost_nanousd)
    query = (select(UsageRecord.user_id, period_column, func.count(), func.sum(tokens), func.sum(cost))
             .where(UsageRecord.counted.is_(True)).group_by(UsageRecord.user_id, period_column))
    if user_id is not None:
        query = query.where(UsageRecord.user_id == user_id)
    return {(r[0], r[1]): (int(r[2]), int(r[3] or 0), int(r[4] or 0)) for r in session.execute(query)}


def _counters(session: Session, period: str, user_id):
    query = select(UsageCounter).where(UsageCounter.period == period)
    if user_id is not None:
        query = query.where(UsageCounter.user_id == user_id)
    return {(c.user_id, c.period_start): (c.requests, c.tokens, c.spend_nanousd)
            for c in session.execute(query).scalars()}


def _pending_rows(session: Session, user_id) -> dict[int, int]:
    query = (select(UsageRecord.user_id, func.count()).where(UsageRecord.status == "pending")
             .group_by(UsageRecord.user_id))
    if user_id is not None:
        query = query.where(UsageRecord.user_id == user_id)
    return {row[0]: int(row[1]) for row in session.execute(query)}


def _in_flight(session: Session, user_id) -> dict[int, int]:
    query = select(InFlight.user_id, InFlight.requests).where(InFlight.requests != 0)
    if user_id is not None:
        query = query.where(InFlight.user_id == user_id)
    return {row[0]: int(row[1]) for row in session.execute(query)}
