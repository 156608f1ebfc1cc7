"""The admin API's door: Bearer ADMIN_TOKEN, compared in constant time, failures throttled per IP."""

from __future__ import annotations

import hmac

from flask import request

from gateway.errors import AuthenticationFailed, ServiceUnavailable
from gateway.extensions import limiter
from gateway.net import client_ip
from gateway.services.failure_throttle import FailureThrottle
from gateway.state import gateway_state


def require_admin() -> None:
    """before_request of the admin blueprint."""
    settings = gateway_state().settings
    if not settings.admin_token:
        raise ServiceUnavailable(
            "The admin API is disabled because ADMIN_TOKEN is not set. Set ADMIN_TOKEN in the "
            "environment (or .env) and restart the gateway.", code="admin_disabled")
    throttle = FailureThrottle(limiter.limiter, settings.auth_failure_limit,
                               settings.rate_limit_window_s, "admin_auth")
    ip = client_ip()
    throttle.check(ip)
    presented = _bearer_token(request.headers.get("Authorization", ""))
    if not hmac.compare_digest(presented.encode(), settings.admin_token.encode()):
        throttle.record_failure(ip)
        raise AuthenticationFailed("Invalid or missing admin token. Send Authorization: Bearer <ADMIN_TOKEN>.",
                                   code="invalid_admin_token")


def _bearer_token(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
