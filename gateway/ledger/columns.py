"""The audit row's columns as the ledger writes them: one list for both dialects, values converted once by
the columns' own SQLAlchemy types (JSON, UTC timestamps, dates), exactly as the ORM would store them."""

from __future__ import annotations

from functools import cache

from sqlalchemy.engine import Dialect

from gateway.models import UsageRecord

# Written when a row is created (pending or refused), in this order.
RECORD_COLUMNS = ("request_id", "user_id", "key_id", "endpoint", "provider", "model", "status", "counted", "stream",
                  "http_status", "error_type", "reserved_prompt_tokens", "reserved_completion_tokens",
                  "reserved_cost_nanousd", "price_snapshot", "client_ip", "prompt_record", "day_start",
                  "month_start", "finished_at")
# Written when a row is settled.
SETTLED_COLUMNS = ("status", "http_status", "error_type", "counted", "prompt_tokens", "completion_tokens",
                   "cached_tokens", "cost_nanousd", "latency_ms", "upstream_latency_ms", "finished_at",
                   "billing_rule")


@cache
def _processors(dialect: Dialect, names: tuple[str, ...]) -> tuple[tuple[str, object], ...]:
    table = UsageRecord.__table__
    found = ((name, table.c[name].type.bind_processor(dialect)) for name in names)
    return tuple((name, processor) for name, processor in found if processor is not None)


def _converted(dialect: Dialect, names: tuple[str, ...], values: dict) -> dict:
    converted = dict(values)
    for name, processor in _processors(dialect, names):
        converted[name] = processor(converted[name])
    return converted


def record_values(dialect: Dialect, values: dict) -> dict:
    """values (one per RECORD_COLUMNS) as the driver takes them."""
    return _converted(dialect, RECORD_COLUMNS, values)


def settled_values(dialect: Dialect, values: dict) -> dict:
    """values (one per SETTLED_COLUMNS) as the driver takes them."""
    return _converted(dialect, SETTLED_COLUMNS, values)
