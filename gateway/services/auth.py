"""Gateway-key authentication: argon2 once per key per process, status from the database every time.

argon2 runs only for a presented key that can be the stored one: an unknown key id, or a secret that
fails the stored sha256 check, is refused without it, so wrong keys cannot burn CPU. Failed attempts are
counted per address and per key id (services/failure_throttle.py) after they failed, so a valid key is
never refused by somebody else's failures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.engine import Row

from gateway.config import Settings
from gateway.errors import AuthenticationFailed, PermissionDenied
from gateway.models import ApiKey, User
from gateway.models.types import utcnow
from gateway.request_db import request_connection
from gateway.services.failure_throttle import FailureThrottle
from gateway.services.key_cache import VerifiedKeyCache
from gateway.services.key_material import display_prefix, key_check, parse_public_id, passes_check, verify_key
from gateway.services.limits import EffectiveLimits, effective_limits

log = logging.getLogger("gateway.auth")
LAST_USED_RESOLUTION = timedelta(seconds=60)
_KEYS, _USERS = ApiKey.__table__, User.__table__
# One Core SELECT of the key joined to its user, only the columns authentication reads, built once: status
# (revoked, expired, suspended) comes fresh from the database on every request, without ORM objects.
_KEY_AND_USER = select(
    _KEYS.c.id, _KEYS.c.user_id, _KEYS.c.public_id, _KEYS.c.key_hash, _KEYS.c.key_check, _KEYS.c.last_used_at,
    _KEYS.c.expires_at, _KEYS.c.revoked_at, _USERS.c.status.label("user_status"), _USERS.c.daily_requests,
    _USERS.c.daily_tokens, _USERS.c.monthly_spend_cap_usd, _USERS.c.rate_limit_max,
    _USERS.c.max_concurrent_requests,
).join_from(_KEYS, _USERS, _KEYS.c.user_id == _USERS.c.id)
_BY_ID = _KEY_AND_USER.where(_KEYS.c.id == bindparam("key_id"))
_BY_PUBLIC_ID = _KEY_AND_USER.where(_KEYS.c.public_id == bindparam("public_id"))


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: who, with which key, under which limits."""

    user_id: int
    key_id: int
    key_prefix: str
    limits: EffectiveLimits


def authenticate(presented: str | None, ip: str, settings: Settings, cache: VerifiedKeyCache,
                 throttle: FailureThrottle) -> Caller:
    """Resolve a presented dom_ key to a Caller, or raise 401/403 (429 once failures pass their budget)."""
    public_id = parse_public_id(presented or "")
    if public_id is None:
        raise throttle.failed(ip) or AuthenticationFailed(
            "Missing or malformed API key. Send Authorization: Bearer dom_<id>_<secret>.",
            code="invalid_api_key")
    key = _verified_key(presented, public_id, cache)
    if key is None:
        raise throttle.failed(ip, public_id) or AuthenticationFailed("Invalid API key.", code="invalid_api_key")
    _check_status(key)
    caller = Caller(user_id=key.user_id, key_id=key.id, key_prefix=display_prefix(key.public_id),
                    limits=effective_limits(key, settings))
    needs_check = key.key_check is None
    _touch_last_used(key)
    if needs_check:
        _store_check(caller.key_id, presented)
    return caller


def _verified_key(presented: str, public_id: str, cache: VerifiedKeyCache) -> Row | None:
    """Read the key and its user's row fresh from the database; argon2 only on a cache miss."""
    digest = cache.digest(presented)
    cached_id = cache.get(digest)
    connection = request_connection()
    if cached_id is not None:
        key = connection.execute(_BY_ID, {"key_id": cached_id}).one_or_none()
        if key is not None and key.public_id == public_id:
            return key
    key = connection.execute(_BY_PUBLIC_ID, {"public_id": public_id}).one_or_none()
    if key is None or not passes_check(key.key_check, presented) or not verify_key(key.key_hash, presented):
        return None
    cache.put(digest, key.id)
    return key


def _check_status(key: Row) -> None:
    now = utcnow()
    if key.revoked_at is not None:
        raise AuthenticationFailed("This API key has been revoked.", code="key_revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise AuthenticationFailed("This API key has expired.", code="key_expired")
    if key.user_status != "active":
        raise PermissionDenied("This user is suspended; ask an administrator to reactivate it.",
                               code="user_suspended")


def _touch_last_used(key: Row) -> None:
    """At most one write per key per minute, whatever the request rate.

    Otherwise nothing is written, and the connection stays checked out for the request's next statements
    (the reservation, gateway/request_db.py), saving a pool checkin + checkout. It holds no transaction open:
    on PostgreSQL it is in autocommit, and SQLite's driver begins no transaction for a SELECT. The connection
    goes back at the end of the request.
    """
    now = utcnow()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    connection = request_connection()
    connection.execute(
        update(_KEYS)
        .where(_KEYS.c.id == key.id)
        .where(or_(_KEYS.c.last_used_at.is_(None), _KEYS.c.last_used_at < now - LAST_USED_RESOLUTION))
        .values(last_used_at=now)
    )
    connection.commit()


def _store_check(key_id: int, presented: str) -> None:
    """Keys issued before key checks get theirs from the first verified use (the plaintext is never kept)."""
    connection = request_connection()
    connection.execute(update(_KEYS).where(_KEYS.c.id == key_id, _KEYS.c.key_check.is_(None))
                       .values(key_check=key_check(presented)))
    connection.commit()
