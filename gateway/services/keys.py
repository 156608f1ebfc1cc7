"""Gateway keys: issue (plaintext shown once, argon2id hash stored), list, revoke."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from gateway.errors import InvalidRequest, NotFound
from gateway.extensions import db
from gateway.models import ApiKey
from gateway.models.types import MAX_ID, utcnow
from gateway.services.key_cache import VerifiedKeyCache
from gateway.services.key_material import display_prefix, generate_key, hash_key, key_check
from gateway.services.users import load_user
from gateway.services.views import iso, key_view

SAVE_WARNING = "Save this key now! It will not be shown again."


def create_key(user_id: int, name: str, expires_at: datetime | None = None) -> dict:
    """Issue a key for a user; the answer is the only place the plaintext ever appears."""
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidRequest("expires_at: must be in the future (ISO 8601; a time without offset is UTC).",
                             code="invalid_field", param="expires_at")
    public_id, plaintext = generate_key()
    key_hash = hash_key(plaintext)
    user = load_user(user_id)
    key = ApiKey(user_id=user.id, name=name.strip(), public_id=public_id, key_hash=key_hash,
                 key_check=key_check(plaintext), expires_at=expires_at)
    db.session.add(key)
    db.session.flush()
    db.session.refresh(key)
    body = {"id": key.id, "api_key": plaintext, "prefix": display_prefix(key.public_id), "name": key.name,
            "user_id": key.user_id, "created_at": iso(key.created_at), "expires_at": iso(key.expires_at),
            "message": SAVE_WARNING}
    db.session.commit()
    return body


def list_keys(user_id: int | None = None) -> list[dict]:
    """Every key (of one user when user_id is given, 404 if that user does not exist), by id."""
    query = select(ApiKey).order_by(ApiKey.id)
    if user_id is not None:
        load_user(user_id)
        query = query.where(ApiKey.user_id == user_id)
    now = utcnow()
    views = [key_view(key, now) for key in db.session.execute(query).scalars()]
    db.session.rollback()
    return views


def revoke_key(key_id: int, key_cache: VerifiedKeyCache) -> dict:
    """Revoke a key now; revoking again keeps the first revoked_at. Refused from the next request on."""
    now = utcnow()
    if 1 <= key_id <= MAX_ID:
        db.session.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                           .values(revoked_at=now).execution_options(synchronize_session=False))
    key = _load_key(key_id)
    view = key_view(key, now)
    db.session.commit()
    key_cache.forget_key(key_id)
    return view


def _load_key(key_id: int) -> ApiKey:
    key = db.session.get(ApiKey, key_id, populate_existing=True) if 1 <= key_id <= MAX_ID else None
    if key is None:
        db.session.rollback()
        raise NotFound(f"No key with id {key_id}. List keys with GET /admin/keys or `flask keys list`.",
                       code="key_not_found", param="key_id")
    return key
