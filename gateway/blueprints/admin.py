"""Admin API: users, keys, limits, usage and upstreams, behind ADMIN_TOKEN."""

from __future__ import annotations

from flask import Blueprint, jsonify

from gateway.blueprints.admin_guard import require_admin
from gateway.blueprints.body import load_body, load_query
from gateway.errors import NotFound
from gateway.models.types import MAX_ID
from gateway.schemas.admin import (KeyCreateSchema, KeyListQuerySchema, LimitsSchema,
                                   RecordsQuerySchema, UsageQuerySchema, UserCreateSchema, UserListQuerySchema)
from gateway.services import keys, usage_reports, users
from gateway.services.upstream_report import upstream_report
from gateway.current import gateway_state

admin_bp = Blueprint("admin", __name__, url_prefix="/admin")
admin_bp.before_request(require_admin)


def path_id(raw: str, what: str) -> int:
    """An id from the URL; anything that cannot be one is simply not found."""
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID:
        return int(raw)
    raise NotFound(f"No {what} with id {raw!r}.", code=f"{what}_not_found", param=f"{what}_id")


def _settings():
    return gateway_state().settings


@admin_bp.post("/users")
def create_user():
    """Create a user."""
    data = load_body(UserCreateSchema())
    return jsonify(users.create_user(data["name"], data["email"], _settings())), 201


@admin_bp.get("/users")
def list_users():
    """Users by id, paginated, optionally by status."""
    query = load_query(UserListQuerySchema())
    return jsonify(users.list_users(_settings(), limit=query["limit"], cursor=query["cursor"],
                                    status=query["status"]))


@admin_bp.get("/users/<user_id>")
def show_user(user_id: str):
    """A user with its keys."""
    return jsonify(users.get_user(path_id(user_id, "user"), _settings()))


@admin_bp.post("/users/<user_id>/suspend")
def suspend_user(user_id: str):
    """Suspend a user: every key is refused from the next request on."""
    return jsonify(users.set_user_status(path_id(user_id, "user"), "suspended", _settings()))


@admin_bp.post("/users/<user_id>/activate")
def activate_user(user_id: str):
    """Reactivate a suspended user."""
    return jsonify(users.set_user_status(path_id(user_id, "user"), "active", _settings()))


@admin_bp.post("/keys")
def create_key():
    """Issue a key; the plaintext is in this answer only."""
    data = load_body(KeyCreateSchema())
    return jsonify(keys.create_key(data["user_id"], data["name"], data["expires_at"])), 201


@admin_bp.get("/keys")
def list_keys():
    """Every key, or one user's."""
    query = load_query(KeyListQuerySchema())
    return jsonify(data=keys.list_keys(query["user_id"]))


@admin_bp.delete("/keys/<key_id>")
def revoke_key(key_id: str):
    """Revoke a key; revoking it again answers the same."""
    return jsonify(keys.revoke_key(path_id(key_id, "key"), gateway_state().key_cache))


@admin_bp.post("/limits")
def set_limits():
    """Change a user's limit overrides; null puts one back to the default."""
    data = load_body(LimitsSchema())
    user_id = data.pop("user_id")
    return jsonify(users.update_limits(user_id, data, _settings()))


@admin_bp.get("/limits/<user_id>")
def show_limits(user_id: str):
    """A user's effective limits."""
    return jsonify(users.user_limits(path_id(user_id, "user"), _settings()))


@admin_bp.get("/usage")
def usage():
    """Usage totals for a period, optionally grouped by day or model."""
    query = load_query(UsageQuerySchema())
    return jsonify(usage_reports.usage_report(query["user_id"], query["start"], query["end"], query["group_by"]))


@admin_bp.get("/usage/records")
def usage_records():
    """Audit rows, newest first, paginated."""
    query = load_query(RecordsQuerySchema())
    return jsonify(usage_reports.list_records(**query))


@admin_bp.get("/upstreams")
def upstreams():
    """Each upstream and deployment: state, cooldown, last error, requests and failures (this process)."""
    return jsonify(upstream_report(gateway_state()))
