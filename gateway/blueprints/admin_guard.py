"""The admin API's door: Bearer ADMIN_TOKEN, compared in constant time, failures throttled per IP."""

from __future__ import annotations

from gateway.blueprints.credentials import require_static_token
from gateway.current import gateway_state
from gateway.errors import AuthenticationFailed, ServiceUnavailable


def require_admin() -> None:
    """before_request of the admin blueprint."""
    settings = gateway_state().settings
    if not settings.admin_token:
        raise ServiceUnavailable(
            "The admin API is disabled because ADMIN_TOKEN is not set. Set ADMIN_TOKEN in the "
            "environment (or .env) and restart the gateway.", code="admin_disabled")
    require_static_token(settings.admin_token, "admin_auth", AuthenticationFailed(
        "Invalid or missing admin token. Send Authorization: Bearer <ADMIN_TOKEN>.", code="invalid_admin_token"))
