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

from sqlalchemy import or_, select, update
from sqlalchemy.orm import defaultload

from gateway.config import Settings
from gateway.errors import AuthenticationFailed, PermissionDenied
from gateway.extensions import db
from gateway.models import ApiKey, User
from gateway.models.types import utcnow
from gateway.services.failure_throttle import FailureThrottle
from gateway.services.key_cache import VerifiedKeyCache
from gateway.services.key_material import display_prefix, key_check, parse_public_id, passes_check, verify_key
from gateway.services.limits import EffectiveLimits, effective_limits

log = logging.getLogger("gateway.auth")
LAST_USED_RESOLUTION = timedelta(seconds=60)
# One joined SELECT for key + user; the user's other keys are not needed to authenticate.
_KEY_WITH_USER_ONLY = (defaultload(ApiKey.user).lazyload(User.keys),)


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
    # Built before _touch_last_used: its rollback expires the rows, and reading them again costs queries.
    caller = Caller(user_id=key.user_id, key_id=key.id, key_prefix=display_prefix(key.public_id),
                    limits=effective_limits(key.user, settings))
    needs_check = key.key_check is None
    _touch_last_used(key)
    if needs_check:
        _store_check(caller.key_id, presented)
    return caller


def _verified_key(presented: str, public_id: str, cache: VerifiedKeyCache) -> ApiKey | None:
    """Load the key row (with its user) fresh from the database; argon2 only on a cache miss."""
    digest = cache.digest(presented)
    cached_id = cache.get(digest)
    if cached_id is not None:
        key = db.session.get(ApiKey, cached_id, populate_existing=True, options=_KEY_WITH_USER_ONLY)
        if key is not None and key.public_id == public_id:
            return key
    key = db.session.execute(select(ApiKey).where(ApiKey.public_id == public_id)
                             .options(*_KEY_WITH_USER_ONLY)).scalar_one_or_none()
    if key is None or not passes_check(key.key_check, presented) or not verify_key(key.key_hash, presented):
        return None
    cache.put(digest, key.id)
    return key


def _check_status(key: ApiKey) -> None:
    now = utcnow()
    if key.revoked_at is not None:
        raise AuthenticationFailed("This API key has been revoked.", code="key_revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise AuthenticationFailed("This API key has expired.", code="key_expired")
    if key.user.status != "active":
        raise PermissionDenied("This user is suspended; ask an administrator to reactivate it.",
                               code="user_suspended")


def _touch_last_used(key: ApiKey) -> None:
    """At most one write per key per minute, whatever the request rate."""
    now = utcnow()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        db.session.rollback()
        return
    db.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key.id)
        .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
        .values(last_used_at=now)
    )
    db.session.commit()


def _store_check(key_id: int, presented: str) -> None:
    """Keys issued before key checks get theirs from the first verified use (the plaintext is never kept)."""
    db.session.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.key_check.is_(None))
                       .values(key_check=key_check(presented)))
    db.session.commit()
