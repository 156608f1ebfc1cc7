"""Gateway-key authentication: argon2 once per key per process, status from the database every request.

argon2 runs only for a presented key that can be the stored one: an unknown key id, or a secret that
fails the stored sha256 check, is refused without it, so wrong keys cannot burn CPU. Failed attempts are
counted per address and per key id (services/failure_throttle.py) after they failed, so a valid key is
never refused by somebody else's failures.

The key's status (revoked, expired, suspended) and the user's limits are read with the key on every request,
except on the endpoints that reserve quota: there the reservation statement itself admits only while the key
is live, its user active and the user's limits exactly those the cached Caller holds (gateway/ledger), so
the separate read is skipped and a change is still seen by the next request (the reservation then refuses
with CallerChanged, and the request authenticates afresh).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.engine import Row

from gateway.config import Settings
from gateway.errors import AuthenticationFailed, PermissionDenied
from gateway.models import ApiKey, User
from gateway.models.types import utcnow
from gateway.request_db import request_connection
from gateway.services.failure_throttle import FailureThrottle
from gateway.services.key_cache import OneAtATime, VerifiedKeyCache
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
# argon2 for one presented key at a time per process: a burst of its first requests shares one check.
_ARGON2 = OneAtATime()


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: who, with which key, under which limits."""

    user_id: int
    key_id: int
    key_prefix: str
    limits: EffectiveLimits
    last_used_at: datetime | None = None  # as last written (at most once a minute, see _touch_last_used)


def authenticate(presented: str | None, ip: str, settings: Settings, cache: VerifiedKeyCache[Caller],
                 throttle: FailureThrottle, *, status_checked_later: bool = False) -> Caller:
    """Resolve a presented dom_ key to a Caller, or raise 401/403 (429 once failures pass their budget).

    status_checked_later: the request reserves quota, whose statement checks the key's status and the
    user's limits (see the module's docstring), so a key verified in this process is not read again.
    """
    public_id = parse_public_id(presented or "")
    if public_id is None:
        raise throttle.failed(ip) or AuthenticationFailed(
            "Missing or malformed API key. Send Authorization: Bearer dom_<id>_<secret>.",
            code="invalid_api_key")
    digest = cache.digest(presented)
    cached = cache.get(digest)
    if cached is not None and status_checked_later:
        return _touched(cached, digest, cache, read=False)
    key = _verified_key(presented, public_id, digest, cached, cache)
    if key is None:
        raise throttle.failed(ip, public_id) or AuthenticationFailed("Invalid API key.", code="invalid_api_key")
    _check_status(key)
    caller = Caller(user_id=key.user_id, key_id=key.id, key_prefix=display_prefix(key.public_id),
                    limits=effective_limits(key, settings), last_used_at=key.last_used_at)
    needs_check = key.key_check is None
    caller = _touched(caller, digest, cache, read=True, verified=cached is None)
    if needs_check:
        _store_check(caller.key_id, presented)
    return caller


def _verified_key(presented: str, public_id: str, digest: bytes, cached: Caller | None,
                  cache: VerifiedKeyCache[Caller]) -> Row | None:
    """Read the key and its user's row fresh from the database; argon2 only on a cache miss."""
    connection = request_connection()
    if cached is not None:
        key = connection.execute(_BY_ID, {"key_id": cached.key_id}).one_or_none()
        if key is not None and key.public_id == public_id:
            return key
        cache.forget_key(cached.key_id)
    key = connection.execute(_BY_PUBLIC_ID, {"public_id": public_id}).one_or_none()
    if key is None or not passes_check(key.key_check, presented):
        return None
    if not _ARGON2.run(digest, lambda: verify_key(key.key_hash, presented)):
        return None
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


def _touched(caller: Caller, digest: bytes, cache: VerifiedKeyCache[Caller], *, read: bool,
             verified: bool = False) -> Caller:
    """The caller with last_used_at brought up to date, cached as it is now: read, it was just read from the
    database; verified, argon2 just passed, and the cache entry's lifetime starts over."""
    now = utcnow()
    stale = caller.last_used_at is None or now - caller.last_used_at >= LAST_USED_RESOLUTION
    if stale:
        _touch_last_used(caller.key_id, now)
        caller = replace(caller, last_used_at=now)
    if stale or read:
        cache.put(digest, caller, renew=verified)
    return caller


def _touch_last_used(key_id: int, now: datetime) -> None:
    """At most one write per key per minute, whatever the request rate or the number of processes.

    The connection stays checked out for the request's next statements (the reservation,
    gateway/request_db.py), saving a pool checkin + checkout; the commit leaves no transaction open. The
    connection goes back at the end of the request.
    """
    connection = request_connection()
    connection.execute(
        update(_KEYS)
        .where(_KEYS.c.id == key_id)
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
