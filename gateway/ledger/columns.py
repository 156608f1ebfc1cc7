"""The columns the ledger writes or compares: one list for both dialects, values converted once by the
columns' own SQLAlchemy types (JSON, UTC timestamps, dates, decimals), exactly as the ORM would store them."""

from __future__ import annotations

from functools import cache

from sqlalchemy.engine import Dialect

from gateway.models import ApiKey, UsageRecord, User
from gateway.services.limits import LIMIT_NAMES

# Written when a row is created (pending or refused), in this order.
RECORD_COLUMNS = ("request_id", "user_id", "key_id", "endpoint", "provider", "model", "status", "counted", "stream",
                  "http_status", "error_type", "reserved_prompt_tokens", "reserved_completion_tokens",
                  "reserved_cost_nanousd", "price_snapshot", "client_ip", "prompt_record", "day_start",
                  "month_start", "finished_at")
# Written when a row is settled.
SETTLED_COLUMNS = ("status", "http_status", "error_type", "counted", "prompt_tokens", "completion_tokens",
                   "cached_tokens", "cost_nanousd", "latency_ms", "upstream_latency_ms", "finished_at",
                   "billing_rule")


# The caller check of admission (gateway/ledger/__init__.py): the parameter each users column is compared with.
STORED_LIMITS = {name: f"stored_{name}" for name in LIMIT_NAMES}
_CALLER_PARAMETERS = {"now": ApiKey.__table__.c.expires_at,
                      **{parameter: User.__table__.c[name] for name, parameter in STORED_LIMITS.items()}}


@cache
def _processors(dialect: Dialect, names: tuple[str, ...]) -> tuple[tuple[str, object], ...]:
    columns = {**UsageRecord.__table__.c, **_CALLER_PARAMETERS}
    found = ((name, columns[name].type.bind_processor(dialect)) for name in names)
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


def caller_values(dialect: Dialect, now, limits_as_stored: dict) -> dict:
    """The caller check's parameters as the driver takes them: now, and stored_<limit> per users column."""
    values = {"now": now, **{STORED_LIMITS[name]: value for name, value in limits_as_stored.items()}}
    return _converted(dialect, tuple(_CALLER_PARAMETERS), values)
