"""The ledger on PostgreSQL: admission and settlement are one statement each, all or nothing, so they run in
autocommit (gateway/request_db.py) and cost one round trip apiece.

Admission checks the caller (the key live, the user active, the limits unchanged: gateway/ledger/__init__.py),
locks the user's slot row and both counters with FOR UPDATE, in the ledger's lock order, decides
from the rows it holds (FOR UPDATE returns the latest committed version, after waiting for any concurrent
holder) and only then raises all three and inserts the pending row, or changes nothing. Concurrent admissions
of one user therefore queue on the slot row and none passes a limit. A user's first request of a day or
month finds a counter missing; the rows are created empty and the decision made again.

Settlement chains data-modifying CTEs so that each step runs only if the one before it succeeded: a CTE
that reads another's output runs after it, which is what orders the locks, and `(SELECT count(*) FROM
released) >= 0` (always true) makes the counters wait for the released slot (PostgreSQL runs every
data-modifying CTE to completion whether or not the final SELECT reads it). Under READ COMMITTED an UPDATE
that waited for a row lock re-checks its WHERE against the committed row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from gateway.ledger.columns import RECORD_COLUMNS, SETTLED_COLUMNS, STORED_LIMITS
from gateway.ledger.prepared import Prepared, column_types
from gateway.ledger.refusals import CALLER, CONCURRENCY, DAILY, MONTHLY_SPEND
from gateway.models import ApiKey, UsageCounter, UsageRecord, User

if TYPE_CHECKING:
    from gateway.ledger import Hold, Move

_COUNTS = "BIGINT"  # requests, tokens and nano-dollars added or compared: as wide as the counters
_CALLER_TYPES = {"now": column_types(ApiKey.__table__, ["expires_at"])["expires_at"],
                 **{parameter: column_types(User.__table__, [name])[name] for name, parameter in STORED_LIMITS.items()}}
_HOLD_TYPES = {**column_types(UsageCounter.__table__, ["user_id"]), **_CALLER_TYPES,
               "day": "DATE", "month": "DATE", "tokens": _COUNTS, "cost": _COUNTS, "max_concurrent": _COUNTS,
               "max_requests": _COUNTS, "max_tokens": _COUNTS, "max_spend": _COUNTS}
_RECORD_INSERT = (f"INSERT INTO usage_records ({', '.join(RECORD_COLUMNS)}) "
                  f"SELECT {', '.join(f'%({name})s' for name in RECORD_COLUMNS)}")


_ENSURE_ROWS = """
WITH slot AS (
    INSERT INTO usage_in_flight (user_id, requests) VALUES (%(user_id)s, 0) ON CONFLICT DO NOTHING
)
INSERT INTO usage_counters (user_id, period, period_start, requests, tokens, spend_nanousd)
VALUES (%(user_id)s, 'day', %(day)s, 0, 0, 0), (%(user_id)s, 'month', %(month)s, 0, 0, 0) ON CONFLICT DO NOTHING
"""


def _counter(period: str, start: str) -> str:
    return f"user_id = %(user_id)s AND period = '{period}' AND period_start = %({start})s"


def _counter_raise(period: str, start: str) -> str:
    return f"""
    UPDATE usage_counters SET requests = requests + 1, tokens = tokens + %(tokens)s,
        spend_nanousd = spend_nanousd + %(cost)s
    WHERE {_counter(period, start)} AND EXISTS (SELECT 1 FROM admitted)"""


# The key, live, of an active user whose limit columns are the ones the limits were worked out from.
_SAME_LIMITS = " AND ".join(f"users.{name} IS NOT DISTINCT FROM %({parameter})s"
                            for name, parameter in STORED_LIMITS.items())
_CALLER = f"""
    SELECT 1 FROM api_keys JOIN users ON users.id = api_keys.user_id
    WHERE api_keys.id = %(key_id)s AND api_keys.user_id = %(user_id)s AND api_keys.revoked_at IS NULL
      AND (api_keys.expires_at IS NULL OR api_keys.expires_at > %(now)s) AND users.status = 'active'
      AND {_SAME_LIMITS}"""

# The verdict's three subqueries run in the order written, each locking its row (FOR UPDATE returns the
# latest committed version, waiting for a concurrent holder): that is the ledger's lock order, and with all
# three rows held the verdict cannot go stale before the UPDATEs below apply it.
_ADMIT = Prepared("dominion_ledger_admit", f"""
WITH caller AS ({_CALLER}
), slot AS (
    SELECT requests FROM usage_in_flight WHERE user_id = %(user_id)s FOR UPDATE
), day AS (
    SELECT requests, tokens FROM usage_counters WHERE {_counter("day", "day")} FOR UPDATE
), month AS (
    SELECT spend_nanousd FROM usage_counters WHERE {_counter("month", "month")} FOR UPDATE
), verdict AS (
    SELECT EXISTS (SELECT 1 FROM caller) AS caller_fits,
           (SELECT %(max_concurrent)s = 0 OR requests < %(max_concurrent)s FROM slot) AS slot_fits,
           (SELECT requests + 1 <= %(max_requests)s AND tokens + %(tokens)s <= %(max_tokens)s FROM day) AS day_fits,
           (SELECT spend_nanousd + %(cost)s <= %(max_spend)s FROM month) AS month_fits
), admitted AS (
    SELECT 1 FROM verdict WHERE caller_fits AND slot_fits AND day_fits AND month_fits
), slot_taken AS (
    UPDATE usage_in_flight SET requests = requests + 1
    WHERE user_id = %(user_id)s AND EXISTS (SELECT 1 FROM admitted)
), day_raised AS ({_counter_raise("day", "day")}
), month_raised AS ({_counter_raise("month", "month")}
), record AS (
    {_RECORD_INSERT} FROM admitted RETURNING id
)
SELECT caller_fits, slot_fits, day_fits, month_fits, (SELECT id FROM record) FROM verdict
""", {**column_types(UsageRecord.__table__, RECORD_COLUMNS), **_HOLD_TYPES})


def admit(connection: Connection, hold: Hold, record: dict, caller: dict) -> int | str:
    """All or nothing in one statement, so it needs no transaction around it: autocommit is one round trip."""
    params = {**record, **caller, "user_id": hold.user_id, "key_id": hold.key_id, "day": hold.day,
              "month": hold.month, "tokens": hold.tokens, "cost": hold.cost_nanousd,
              "max_concurrent": hold.max_concurrent, "max_requests": hold.max_requests,
              "max_tokens": hold.max_tokens, "max_spend": hold.max_spend_nanousd}
    caller_fits, slot, day, month, record_id = _ADMIT.run(connection, params).one()
    if not caller_fits:
        return CALLER
    if None in (slot, day, month):
        # The user's slot row or this period's counters do not exist yet (the first request of a day or month):
        # create them empty (a concurrent request may do the same; neither fails) and decide again.
        connection.exec_driver_sql(_ENSURE_ROWS, params)
        caller_fits, slot, day, month, record_id = _ADMIT.run(connection, params).one()
    if record_id is not None:
        return record_id
    return CALLER if not caller_fits else CONCURRENCY if not slot else DAILY if not day else MONTHLY_SPEND


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
_FINISH = Prepared("dominion_ledger_finish", f"""
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
""", {**column_types(UsageRecord.__table__, SETTLED_COLUMNS), "record_id": "BIGINT",
      **column_types(UsageCounter.__table__, ["user_id"]), "day": "DATE", "month": "DATE",
      "add_requests": _COUNTS, "add_tokens": _COUNTS, "add_cost": _COUNTS})


def finish(connection: Connection, move: Move, settled: dict) -> str | None:
    params = {**settled, "record_id": move.record_id, "user_id": move.user_id, "day": move.day,
              "month": move.month, "add_requests": move.add_requests, "add_tokens": move.add_tokens,
              "add_cost": move.add_cost_nanousd}
    for _ in range(2):
        finished, corrected = _FINISH.run(connection, params).one()
        if finished or corrected:
            return "pending" if finished else "reconciled"
        # Neither: the row may have been reconciled while this statement waited for its lock (the statement's
        # snapshot still saw it pending). Once more with a fresh snapshot; nothing was changed the first time.
    return None
