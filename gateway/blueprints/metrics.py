"""GET /metrics: Prometheus text format, optionally behind Bearer METRICS_TOKEN; never rate limited."""

from __future__ import annotations

from flask import Blueprint, Response

from gateway import metrics
from gateway.blueprints.credentials import require_static_token
from gateway.current import gateway_state
from gateway.errors import AuthenticationFailed

metrics_bp = Blueprint("metrics", __name__)


@metrics_bp.get("/metrics")
def scrape():
    """Every series, summed over all gunicorn workers."""
    _require_metrics_token()
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


def _require_metrics_token() -> None:
    """When METRICS_TOKEN is set, only a scraper presenting it may read; failures are throttled per IP."""
    token = gateway_state().settings.metrics_token
    if token:
        require_static_token(token, "metrics_auth", AuthenticationFailed(
            "Invalid or missing metrics token. Send Authorization: Bearer <METRICS_TOKEN>.",
            code="invalid_metrics_token", headers={"WWW-Authenticate": "Bearer"}))
