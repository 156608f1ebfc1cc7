"""GET /metrics: Prometheus text format, optionally behind Bearer METRICS_TOKEN; never rate limited."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request

from gateway import metrics
from gateway.errors import AuthenticationFailed
from gateway.extensions import limiter
from gateway.net import client_ip
from gateway.services.failure_throttle import FailureThrottle
from gateway.state import gateway_state

metrics_bp = Blueprint("metrics", __name__)


@metrics_bp.get("/metrics")
def scrape():
    """Every series, summed over all gunicorn workers."""
    _require_metrics_token()
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


def _require_metrics_token() -> None:
    """When METRICS_TOKEN is set, only a scraper presenting it may read; failures are throttled per IP."""
    settings = gateway_state().settings
    if not settings.metrics_token:
        return
    throttle = FailureThrottle(limiter.limiter, settings.auth_failure_limit, settings.rate_limit_window_s,
                               "metrics_auth")
    ip = client_ip()
    throttle.check(ip)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    presented = token.strip() if scheme.lower() == "bearer" else ""
    if not hmac.compare_digest(presented.encode(), settings.metrics_token.encode()):
        throttle.record_failure(ip)
        raise AuthenticationFailed("Invalid or missing metrics token. Send Authorization: Bearer <METRICS_TOKEN>.",
                                   code="invalid_metrics_token", headers={"WWW-Authenticate": "Bearer"})
