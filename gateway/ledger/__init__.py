"""The ledger: every statement that moves money or the in-flight count, in one place, per dialect.

A request costs the ledger two round trips: admit() (the caller checked, the concurrency slot, the day and
month counters raised by the worst case if each stays within its limit, and the pending audit row) and
finish() (the row settled, the slot given back, the counters moved by charged - reserved <= 0). The caller
check makes admission the authority on who may spend: it admits only while the key is neither revoked nor
expired, its user is active, and the user's limit columns hold exactly the values the limits were worked
out from, so the request never needs a separate read of them (gateway/services/auth.py). On PostgreSQL each is
one all-or-nothing statement, run in autocommit (postgresql.py); on SQLite, whose engine is in-process,
each is a few statements in one write transaction (sqlite.py). Both run as driver SQL on the connection
they are given (no ORM, no statement compilation) and leave the commit or rollback to the caller, who owns
the transaction: on SQLite a refused admit() has changed rows that the caller must roll back.

Locks are always taken in one order - the audit row, the user's in-flight row, the day counter, the
month counter - so reservations and settlements of one user queue behind each other and never deadlock.
The contract these statements keep is docs/reliability.md#the-ledger-contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection

from gateway.ledger import postgresql, sqlite
from gateway.ledger.columns import caller_values, record_values, settled_values
from gateway.ledger.refusals import CALLER, CONCURRENCY, DAILY, MONTHLY_SPEND  # noqa: F401 (what admit() returns)
from gateway.models import InFlight, UsageRecord

RECONCILED = "reconciled"


@dataclass(frozen=True)
class Hold:
    """What admit() raises the counters by, and the limits they must stay within (0 concurrency = none);
    key_id, now and limits_as_stored for the caller check (the users columns, None where the default)."""

    user_id: int
    key_id: int
    now: datetime
    limits_as_stored: dict
    day: date
    month: date
    tokens: int
    cost_nanousd: int
    max_concurrent: int
    max_requests: int
    max_tokens: int
    max_spend_nanousd: int


@dataclass(frozen=True)
class Move:
    """What finish() does to a pending row: its settled columns, and the counter move that goes with them."""

    record_id: int
    user_id: int
    day: date
    month: date
    add_requests: int
    add_tokens: int
    add_cost_nanousd: int
    columns: dict


def _dialect(connection: Connection):
    return postgresql if connection.dialect.name == "postgresql" else sqlite


def admit(connection: Connection, hold: Hold, record: dict) -> int | str:
    """The pending row's id, or what refused: CALLER, or the limit (CONCURRENCY, DAILY, MONTHLY_SPEND)."""
    dialect = connection.dialect
    return _dialect(connection).admit(connection, hold, record_values(dialect, record),
                                      caller_values(dialect, hold.now, hold.limits_as_stored))


def insert_record(connection: Connection, record: dict) -> int:
    """An audit row that holds nothing (a refusal); returns its id."""
    return _dialect(connection).insert_record(connection, record_values(connection.dialect, record))


def finish(connection: Connection, move: Move) -> str | None:
    """Settle a pending row (or correct one the reconciler charged): what the row was, None if neither."""
    return _dialect(connection).finish(connection, move, settled_values(connection.dialect, move.columns))


_RECORDS, _SLOTS = UsageRecord.__table__, InFlight.__table__
_HEARTBEAT = (
    update(_RECORDS)
    .where(_RECORDS.c.id.in_(bindparam("ids", expanding=True)), _RECORDS.c.status == "pending")
    .values(heartbeat_at=bindparam("now", type_=_RECORDS.c.heartbeat_at.type))
)
_RECONCILE = (
    update(_RECORDS)
    .where(_RECORDS.c.id == bindparam("match_id"), _RECORDS.c.status == "pending")
    .values(status=RECONCILED, error_type="settlement_missing", billing_rule="reservation",
            prompt_tokens=_RECORDS.c.reserved_prompt_tokens,
            completion_tokens=_RECORDS.c.reserved_completion_tokens,
            cost_nanousd=_RECORDS.c.reserved_cost_nanousd,
            finished_at=bindparam("now", type_=_RECORDS.c.finished_at.type))
)
_RELEASE = update(_SLOTS).where(_SLOTS.c.user_id == bindparam("match_user")).values(requests=_SLOTS.c.requests - 1)


def heartbeat(connection: Connection, record_ids: list[int], now: datetime) -> int:
    """Mark these pending rows as still served; returns how many were."""
    return connection.execute(_HEARTBEAT, {"ids": record_ids, "now": now}).rowcount


def charge_reservation(connection: Connection, record_id: int, user_id: int, now: datetime) -> bool:
    """Charge an abandoned pending row its whole reservation: the counters already hold exactly that, so
    they stay; only the user's slot comes back. False if the row was no longer pending."""
    if connection.execute(_RECONCILE, {"match_id": record_id, "now": now}).rowcount != 1:
        return False
    connection.execute(_RELEASE, {"match_user": user_id})
    return True
