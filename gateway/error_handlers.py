"""The HTTP side of errors: every failure becomes the one JSON envelope, from app-level handlers."""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app, g, jsonify, request
from flask_limiter.errors import RateLimitExceeded
from marshmallow import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from gateway import metrics
from gateway.errors import GatewayError, RateLimited, anthropic_error_body, error_body, validation_message
from gateway.extensions import limiter
from gateway.providers.base import ProviderError

log = logging.getLogger("gateway.errors")
DATABASE_RETRY_AFTER_S = 5

HTTP_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_exceeded",
    502: "upstream_error",
    503: "service_unavailable",
    504: "upstream_timeout",
}


# Error envelopes by name; a blueprint that speaks another API declares `error_format = "anthropic"`.
ERROR_FORMATS = {"openai": error_body, "anthropic": anthropic_error_body}


def error_format():
    """The envelope builder of the blueprint serving this request (OpenAI-shaped unless it declares one)."""
    blueprint = current_app.blueprints.get(request.blueprint) if request.blueprint else None
    return ERROR_FORMATS[getattr(blueprint, "error_format", "openai")]


def error_response(status: int, error_type: str, message: str, *, code=None, param=None,
                   headers=None, details=None):
    """A Flask response carrying the envelope of the endpoint's own API."""
    response = jsonify(error_format()(error_type, message, code=code, param=param, details=details,
                                      request_id=g.get("request_id")))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """App-level handlers, so routing 404/405 and extension errors get the envelope too."""

    @app.errorhandler(GatewayError)
    def _gateway_error(error: GatewayError):
        if isinstance(error, RateLimited):
            metrics.rate_limited(error.details.get("limit_scope", "auth"))
        return error_response(error.status, error.error_type, error.message, code=error.code,
                              param=error.param, headers=error.headers, details=error.details)

    @app.errorhandler(ValidationError)
    def _validation_error(error: ValidationError):
        message, param = validation_message(error.messages)
        return error_response(400, "invalid_request_error", message, code="invalid_field", param=param)

    @app.errorhandler(ProviderError)
    def _provider_error(error: ProviderError):
        headers = {}
        if error.retry_after is not None:
            headers["Retry-After"] = str(max(1, int(round(error.retry_after))))
        details = {"upstream_status": error.upstream_status} if error.upstream_status else None
        return error_response(error.http_status, error.error_type, error.message, param=error.param,
                              headers=headers, details=details)

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(error: RateLimitExceeded):
        scope = rate_limit_scope(error)
        metrics.rate_limited(scope)
        message = (f"Rate limit exceeded for this {scope}: {error.limit.limit}. "
                   "Wait for the window to reset (see Retry-After) and retry.")
        return error_response(429, "rate_limit_exceeded", message, code=f"{scope}_rate_limit",
                              headers={"Retry-After": str(_seconds_to_reset())}, details={"limit_scope": scope})

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        message = _http_message(error)
        headers = {"Allow": ", ".join(error.valid_methods)} if getattr(error, "valid_methods", None) else None
        return error_response(status, HTTP_ERROR_TYPES.get(status, "invalid_request_error"), message,
                              headers=headers)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def _database_unavailable(error: Exception):
        # Only the driver's class name: a SQLAlchemy error's text carries the statement's parameters.
        log.error("database unavailable", extra={"request_id": g.get("request_id"),
                                                 "error": type(getattr(error, "orig", None) or error).__name__})
        return error_response(503, "service_unavailable", "The gateway's database is unavailable right now. "
                              "Retry in a few seconds.", code="database_unavailable",
                              headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        return error_response(500, "internal_error", "The gateway hit an internal error. "
                              "It has been logged; quote the request_id when reporting it.")


def rate_limit_scope(error: RateLimitExceeded) -> str:
    """Which limiter bucket refused: 'user', 'auth' (failed key attempts) or 'ip'."""
    scope = getattr(error.limit, "scope", None)
    return scope if scope in ("user", "auth") else "ip"


def _seconds_to_reset() -> int:
    current = limiter.current_limit
    return max(1, int(current.reset_at - time.time())) if current else 1


def _http_message(error: HTTPException) -> str:
    status = error.code or 500
    if status == 404:
        return "No such endpoint. GET /docs lists every endpoint of this gateway."
    if status == 405:
        return f"Method not allowed here. Allowed: {', '.join(getattr(error, 'valid_methods', None) or [])}."
    if status == 413:
        return (f"Request body is too large; the limit is {current_app.config.get('MAX_CONTENT_LENGTH')} "
                "bytes (MAX_REQUEST_BYTES).")
    return error.description or error.name
