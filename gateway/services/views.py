"""Plain, JSON-ready dict views of users, keys and audit rows, shared by the admin API and the CLI.

Money is summed and converted exactly (integer nano-USD -> Decimal) and only turned into a JSON
number at the very end; timestamps are ISO 8601 in UTC with a trailing Z.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.config import Settings
from gateway.models import ApiKey, UsageRecord, User
from gateway.money import usd_number
from gateway.services.key_material import display_prefix
from gateway.services.limits import effective_limits

def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC, e.g. 2026-11-29T10:00:00.123456Z."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def key_status(key: ApiKey, now: datetime) -> str:
    """active, revoked (wins) or expired."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def key_view(key: ApiKey, now: datetime) -> dict:
    """A key as an operator sees it: never its secret or hash."""
    return {
        "id": key.id,
        "user_id": key.user_id,
        "name": key.name,
        "prefix": display_prefix(key.public_id),
        "status": key_status(key, now),
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "expires_at": iso(key.expires_at),
        "revoked_at": iso(key.revoked_at),
    }


def user_view(user: User, settings: Settings) -> dict:
    """A user with its effective limits (and which of them are overrides)."""
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "status": user.status,
        "limits": effective_limits(user, settings).as_dict(),
        "created_at": iso(user.created_at),
    }


def record_view(record: UsageRecord) -> dict:
    """One audit row."""
    return {
        "request_id": record.request_id,
        "user_id": record.user_id,
        "key_id": record.key_id,
        "endpoint": record.endpoint,
        "provider": record.provider,
        "model": record.model,
        "status": record.status,
        "http_status": record.http_status,
        "error_type": record.error_type,
        "stream": record.stream,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cached_tokens": record.cached_tokens,
        "cost_usd": usd_number(record.cost_nanousd),
        "price_snapshot": record.price_snapshot,
        "billing_rule": record.billing_rule,
        "fallback_from": record.fallback_from,
        "attempts": record.attempts,
        "latency_ms": record.latency_ms,
        "upstream_latency_ms": record.upstream_latency_ms,
        "client_ip": record.client_ip,
        "prompt_record": record.prompt_record,
        "created_at": iso(record.created_at),
        "finished_at": iso(record.finished_at),
    }
