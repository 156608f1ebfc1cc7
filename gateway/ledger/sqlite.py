"""The ledger on SQLite: the same steps as on PostgreSQL, as a few statements in one write transaction.

The caller check (gateway/ledger/__init__.py) is part of the statement that takes the slot. SQLite runs
in-process and has one writer at a time, so a statement costs no round trip and the first write
of the transaction takes the database's write lock, which serialises every admission and settlement.
Conditional upserts create a user's first counter or slot row; a DO UPDATE whose WHERE fails changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from gateway.ledger.columns import RECORD_COLUMNS, SETTLED_COLUMNS, STORED_LIMITS
from gateway.ledger.refusals import CALLER, CONCURRENCY, DAILY, MONTHLY_SPEND

if TYPE_CHECKING:
    from gateway.ledger import Hold, Move

# The key, live, of an active user whose limit columns are the ones the limits were worked out from (`IS` is
# SQLite's null-safe equality). Checked in the statement that takes the slot, which takes none without it.
_CALLER = f"""
SELECT 1 FROM api_keys JOIN users ON users.id = api_keys.user_id
WHERE api_keys.id = :key_id AND api_keys.user_id = :user_id AND api_keys.revoked_at IS NULL
  AND (api_keys.expires_at IS NULL OR api_keys.expires_at > :now) AND users.status = 'active'
  AND {" AND ".join(f"users.{name} IS :{parameter}" for name, parameter in STORED_LIMITS.items())}"""
_TAKE_SLOT = f"""
INSERT INTO usage_in_flight (user_id, requests) SELECT :user_id, 1 WHERE EXISTS ({_CALLER})
ON CONFLICT (user_id) DO UPDATE SET requests = requests + 1
WHERE :max_concurrent = 0 OR requests < :max_concurrent"""
_CALLER_FITS = f"SELECT EXISTS ({_CALLER})"


def _counter_upsert(period: str, start: str, fits_new: str, fits_old: str) -> str:
    return f"""
INSERT INTO usage_counters (user_id, period, period_start, requests, tokens, spend_nanousd)
SELECT :user_id, '{period}', :{start}, 1, :tokens, :cost WHERE {fits_new}
ON CONFLICT (user_id, period, period_start) DO UPDATE
SET requests = requests + 1, tokens = tokens + excluded.tokens, spend_nanousd = spend_nanousd + excluded.spend_nanousd
WHERE {fits_old}"""


_ADD_DAY = _counter_upsert("day", "day", ":max_requests >= 1 AND :tokens <= :max_tokens",
                           "requests + 1 <= :max_requests AND tokens + excluded.tokens <= :max_tokens")
_ADD_MONTH = _counter_upsert("month", "month", ":cost <= :max_spend",
                             "spend_nanousd + excluded.spend_nanousd <= :max_spend")
_RECORD_INSERT = (f"INSERT INTO usage_records ({', '.join(RECORD_COLUMNS)}) "
                  f"VALUES ({', '.join(f':{name}' for name in RECORD_COLUMNS)})")


def admit(connection: Connection, hold: Hold, record: dict, caller: dict) -> int | str:
    params = {**caller, "user_id": hold.user_id, "key_id": hold.key_id, "day": hold.day.isoformat(),
              "month": hold.month.isoformat(), "tokens": hold.tokens, "cost": hold.cost_nanousd,
              "max_concurrent": hold.max_concurrent, "max_requests": hold.max_requests,
              "max_tokens": hold.max_tokens, "max_spend": hold.max_spend_nanousd}
    for statement, refusal in ((_TAKE_SLOT, CONCURRENCY), (_ADD_DAY, DAILY), (_ADD_MONTH, MONTHLY_SPEND)):
        if connection.exec_driver_sql(statement, params).rowcount != 1:
            if refusal == CONCURRENCY and not connection.exec_driver_sql(_CALLER_FITS, params).scalar():
                return CALLER
            return refusal
    return insert_record(connection, record)


def insert_record(connection: Connection, record: dict) -> int:
    return connection.exec_driver_sql(_RECORD_INSERT, record).lastrowid


_SETTLED = ", ".join(f"{name} = :{name}" for name in SETTLED_COLUMNS)
_FINISH_RECORD = f"UPDATE usage_records SET {_SETTLED} WHERE id = :record_id AND status = :was"
_RELEASE_SLOT = "UPDATE usage_in_flight SET requests = requests - 1 WHERE user_id = :user_id"
_MOVE_COUNTERS = """
UPDATE usage_counters
SET requests = requests + :add_requests, tokens = tokens + :add_tokens, spend_nanousd = spend_nanousd + :add_cost
WHERE user_id = :user_id AND ((period = 'day' AND period_start = :day) OR (period = 'month' AND period_start = :month))"""


def finish(connection: Connection, move: Move, settled: dict) -> str | None:
    params = {**settled, "record_id": move.record_id, "user_id": move.user_id, "day": move.day.isoformat(),
              "month": move.month.isoformat(), "add_requests": move.add_requests, "add_tokens": move.add_tokens,
              "add_cost": move.add_cost_nanousd}
    for was in ("pending", "reconciled"):
        if connection.exec_driver_sql(_FINISH_RECORD, {**params, "was": was}).rowcount == 1:
            if was == "pending":
                connection.exec_driver_sql(_RELEASE_SLOT, params)
            connection.exec_driver_sql(_MOVE_COUNTERS, params)
            return was
    return None
