"""Readiness checks: the database must answer; the limiter storage may be degraded to memory."""

from __future__ import annotations

import logging
import time

from flask import current_app
from sqlalchemy import text

from gateway.extensions import db, limiter

log = logging.getLogger("gateway.health")


def readiness() -> dict:
    """Each check with its state and how long it took."""
    checks = {"database": _check_database(), "limiter_storage": _check_limiter()}
    ready = checks["database"]["status"] == "ok"
    return {"status": "ready" if ready else "unavailable", "checks": checks}


def _check_database() -> dict:
    started = time.perf_counter()
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    except Exception as error:  # any driver error means "not ready", never a 500
        db.session.rollback()
        log.warning("readiness: database check failed", extra={"error": type(error).__name__})
        return {"status": "failed", "error": type(error).__name__}


def _check_limiter() -> dict:
    backend = current_app.config.get("RATELIMIT_STORAGE_URI", "memory://").split(":", 1)[0]
    try:
        healthy = bool(limiter.storage.check())
    except Exception:  # a dead Redis must not fail readiness: limits fall back to memory
        healthy = False
    if healthy:
        return {"status": "ok", "backend": backend}
    return {"status": "degraded", "backend": backend,
            "detail": "limiter storage unreachable; limiting per process from memory"}
