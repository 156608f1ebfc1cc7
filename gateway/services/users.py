"""Users: create, list, show, suspend/activate, and their limit overrides (null = the configured default)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import noload

from gateway.config import Settings
from gateway.errors import Conflict, NotFound
from gateway.extensions import db
from gateway.models import User
from gateway.models.types import MAX_ID, utcnow
from gateway.models.user import LIMIT_FIELDS, USER_STATUSES
from gateway.services.limits import effective_limits
from gateway.services.pagination import decode_cursor, page
from gateway.services.views import key_view, user_view



def load_user(user_id: int) -> User:
    """The user with this id in the current transaction, or 404."""
    user = db.session.get(User, user_id) if 1 <= user_id <= MAX_ID else None
    if user is None:
        db.session.rollback()
        raise NotFound(f"No user with id {user_id}. List users with GET /admin/users or `flask users list`.",
                       code="user_not_found", param="user_id")
    return user


def create_user(name: str, email: str, settings: Settings) -> dict:
    """Create an active user; emails are unique regardless of case (stored lower-cased)."""
    email = email.strip().lower()
    taken = db.session.execute(select(User.id).where(func.lower(User.email) == email)).first()
    if taken is not None:
        db.session.rollback()
        raise _email_taken(email)
    user = User(name=name.strip(), email=email, status="active")
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise _email_taken(email) from None
    db.session.refresh(user)
    view = user_view(user, settings)
    db.session.commit()
    return view


def _email_taken(email: str) -> Conflict:
    return Conflict(f"A user with email {email} already exists.", code="email_taken", param="email")


def list_users(settings: Settings, *, limit: int = 50, cursor: str | None = None,
               status: str | None = None) -> dict:
    """One page of users by id: {"data": [...], "next_cursor": str | None}."""
    after = decode_cursor(cursor)
    query = select(User).options(noload(User.keys)).order_by(User.id).limit(limit + 1)
    if status is not None:
        query = query.where(User.status == status)
    if after is not None:
        query = query.where(User.id > after)
    rows, next_cursor = page(list(db.session.execute(query).scalars()), limit)
    data = [user_view(user, settings) for user in rows]
    db.session.rollback()
    return {"data": data, "next_cursor": next_cursor}


def get_user(user_id: int, settings: Settings) -> dict:
    """A user with its keys (never their secrets)."""
    user = load_user(user_id)
    now = utcnow()
    view = {**user_view(user, settings), "keys": [key_view(key, now) for key in user.keys]}
    db.session.rollback()
    return view


def set_user_status(user_id: int, status: str, settings: Settings) -> dict:
    """Suspend or activate; setting the status a user already has changes nothing."""
    if status not in USER_STATUSES:
        raise ValueError(f"unknown user status {status!r}")
    user = load_user(user_id)
    if user.status != status:
        user.status = status
        db.session.flush()
        db.session.refresh(user)
    view = user_view(user, settings)
    db.session.commit()
    return view


def update_limits(user_id: int, changes: dict, settings: Settings) -> dict:
    """Apply the given overrides (None = back to the default); fields not given stay as they are."""
    unknown = set(changes) - set(LIMIT_FIELDS)
    if unknown:
        raise ValueError(f"not limit fields: {sorted(unknown)}")
    user = load_user(user_id)
    for name, value in changes.items():
        setattr(user, name, value)
    db.session.flush()
    db.session.refresh(user)
    body = {"user_id": user.id, "limits": effective_limits(user, settings).as_dict()}
    db.session.commit()
    return body


def user_limits(user_id: int, settings: Settings) -> dict:
    """The effective limits of a user and which of them are overrides."""
    user = load_user(user_id)
    body = {"user_id": user.id, "limits": effective_limits(user, settings).as_dict()}
    db.session.rollback()
    return body
