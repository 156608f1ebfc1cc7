"""The ledger on PostgreSQL: admission and settlement are one statement each, data-modifying CTEs chained so
that each step runs only if the one before it succeeded, and in the ledger's lock order.

A CTE that reads another's output runs after it, which is what orders the locks: `FROM slot` makes the day
counter wait for the slot, `(SELECT count(*) FROM released) >= 0` (always true) makes the counters wait for
the released slot (PostgreSQL runs every data-modifying CTE to completion whether or not the final
SELECT reads it). Conditional upserts create a user's first counter or slot row in the same statement.
Under READ COMMITTED each UPDATE that waited for a row lock re-checks its WHERE against the committed row,
so concurrent admissions of one user queue on the row and none passes a limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from gateway.ledger.columns import RECORD_COLUMNS, SETTLED_COLUMNS
from gateway.ledger.refusals import CONCURRENCY, DAILY, MONTHLY_SPEND

if TYPE_CHECKING:
    from gateway.ledger import Hold, Move

_RECORD_INSERT = (f"INSERT INTO usage_records ({', '.join(RECORD_COLUMNS)}) "
                  f"SELECT {', '.join(f'%({name})s' for name in RECORD_COLUMNS)}")


def _counter_upsert(period: str, start: str, after: str, fits_new: str, fits_old: str) -> str:
    """Raise one counter by this request if it stays within its limit, creating the row on first use."""
    return f"""
    INSERT INTO usage_counters AS c (user_id, period, period_start, requests, tokens, spend_nanousd)
    SELECT %(user_id)s, '{period}', %({start})s, 1, %(tokens)s, %(cost)s FROM {after} WHERE {fits_new}
    ON CONFLICT (user_id, period, period_start) DO UPDATE
    SET requests = c.requests + 1, tokens = c.tokens + excluded.tokens,
        spend_nanousd = c.spend_nanousd + excluded.spend_nanousd
    WHERE {fits_old}
    RETURNING 1"""


_ADMIT = f"""
WITH slot AS (
    INSERT INTO usage_in_flight AS f (user_id, requests) VALUES (%(user_id)s, 1)
    ON CONFLICT (user_id) DO UPDATE SET requests = f.requests + 1
    WHERE %(max_concurrent)s = 0 OR f.requests < %(max_concurrent)s
    RETURNING 1
), day AS ({_counter_upsert(
    "day", "day", "slot", "1 <= %(max_requests)s AND %(tokens)s <= %(max_tokens)s",
    "c.requests + 1 <= %(max_requests)s AND c.tokens + excluded.tokens <= %(max_tokens)s")}
), month AS ({_counter_upsert(
    "month", "month", "day", "%(cost)s <= %(max_spend)s",
    "c.spend_nanousd + excluded.spend_nanousd <= %(max_spend)s")}
), record AS (
    {_RECORD_INSERT} FROM month RETURNING id
)
SELECT EXISTS (SELECT 1 FROM slot), EXISTS (SELECT 1 FROM day), (SELECT id FROM record)
"""


def admit(connection: Connection, hold: Hold, record: dict) -> int | str:
    params = {**record, "user_id": hold.user_id, "day": hold.day, "month": hold.month, "tokens": hold.tokens,
              "cost": hold.cost_nanousd, "max_concurrent": hold.max_concurrent, "max_requests": hold.max_requests,
              "max_tokens": hold.max_tokens, "max_spend": hold.max_spend_nanousd}
    slot, day, record_id = connection.exec_driver_sql(_ADMIT, params).one()
    if record_id is not None:
        return record_id
    return CONCURRENCY if not slot else DAILY if not day else MONTHLY_SPEND


def insert_record(connection: Connection, record: dict) -> int:
    return connection.exec_driver_sql(f"{_RECORD_INSERT} RETURNING id", record).scalar_one()


_SETTLED = ", ".join(f"{name} = %({name})s" for name in SETTLED_COLUMNS)


def _counter_move(period: str, start: str, after: str) -> str:
    return f"""
    UPDATE usage_counters
    SET requests = requests + %(add_requests)s, tokens = tokens + %(add_tokens)s,
        spend_nanousd = spend_nanousd + %(add_cost)s
    WHERE user_id = %(user_id)s AND period = '{period}' AND period_start = %({start})s
      AND (SELECT count(*) FROM {after}) >= 0
      AND (EXISTS (SELECT 1 FROM finished) OR EXISTS (SELECT 1 FROM corrected))
    RETURNING 1"""


# `finished` settles a pending row and gives its slot back; `corrected` is a late settlement of a row the
# reconciler already charged in full (it gave the slot back then).
_FINISH = f"""
WITH finished AS (
    UPDATE usage_records SET {_SETTLED} WHERE id = %(record_id)s AND status = 'pending' RETURNING 1
), corrected AS (
    UPDATE usage_records SET {_SETTLED}
    WHERE id = %(record_id)s AND status = 'reconciled' AND NOT EXISTS (SELECT 1 FROM finished) RETURNING 1
), released AS (
    UPDATE usage_in_flight SET requests = requests - 1
    WHERE user_id = %(user_id)s AND EXISTS (SELECT 1 FROM finished) RETURNING 1
), moved_day AS ({_counter_move("day", "day", "released")}
), moved_month AS ({_counter_move("month", "month", "moved_day")}
)
SELECT EXISTS (SELECT 1 FROM finished), EXISTS (SELECT 1 FROM corrected)
"""


def finish(connection: Connection, move: Move, settled: dict) -> str | None:
    params = {**settled, "record_id": move.record_id, "user_id": move.user_id, "day": move.day,
              "month": move.month, "add_requests": move.add_requests, "add_tokens": move.add_tokens,
              "add_cost": move.add_cost_nanousd}
    for _ in range(2):
        finished, corrected = connection.exec_driver_sql(_FINISH, params).one()
        if finished or corrected:
            return "pending" if finished else "reconciled"
        # Neither: the row may have been reconciled while this statement waited for its lock (the statement's
        # snapshot still saw it pending). Once more with a fresh snapshot; nothing was changed the first time.
    return None
