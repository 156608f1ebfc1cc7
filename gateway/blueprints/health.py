"""Liveness and readiness: never touch an LLM; liveness never touches the database either."""

from __future__ import annotations

from flask import Blueprint, jsonify

from gateway.services.health import readiness

health_bp = Blueprint("health", __name__)


@health_bp.get("/health")
def live():
    """The process answers."""
    return jsonify(status="ok")


@health_bp.get("/health/ready")
def ready():
    """Database answers (required); limiter storage state is reported (degraded is still ready)."""
    report = readiness()
    return jsonify(report), (200 if report["status"] == "ready" else 503)
