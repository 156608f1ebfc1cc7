"""The domain's errors: what a caller is told, as plain exceptions with no web framework attached.

The HTTP side (status mapping, the JSON envelope as a response, handlers) is gateway/error_handlers.py.
"""

from __future__ import annotations


class GatewayError(Exception):
    """An error the caller is told about: status, type, message, optional code/param/headers."""

    status = 500
    error_type = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.details = details or {}


class InvalidRequest(GatewayError):
    status, error_type = 400, "invalid_request_error"


class AuthenticationFailed(GatewayError):
    status, error_type = 401, "authentication_error"


class PermissionDenied(GatewayError):
    status, error_type = 403, "permission_error"


class NotFound(GatewayError):
    status, error_type = 404, "not_found_error"


class Conflict(GatewayError):
    status, error_type = 409, "conflict_error"


class RateLimited(GatewayError):
    status, error_type = 429, "rate_limit_exceeded"


class QuotaExceeded(GatewayError):
    status, error_type = 429, "quota_exceeded"


class ServiceUnavailable(GatewayError):
    status, error_type = 503, "service_unavailable"


class CallerChanged(ServiceUnavailable):
    """The reservation found the key or its user changed since they were read (gateway/ledger's caller
    check): the request authenticates afresh and tries once more; a 503 only if it changes again."""

    def __init__(self) -> None:
        super().__init__("This key or its user's limits changed while the request was admitted; retry it.",
                         code="caller_changed", headers={"Retry-After": "1"})


def error_body(error_type: str, message: str, *, code: str | None = None, param: str | None = None,
               details: dict | None = None, request_id: str | None = None) -> dict:
    """The one error envelope, shaped like OpenAI's so SDKs parse it."""
    error = {"type": error_type, "message": message, "code": code, "param": param, "request_id": request_id}
    if details:
        error.update(details)
    return {"error": error}


# The gateway's error types as Anthropic's (docs.claude.com/en/api/errors), for /v1/messages.
ANTHROPIC_ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "conflict_error": "invalid_request_error",
    "request_too_large": "request_too_large",
    "rate_limit_exceeded": "rate_limit_error",
    "quota_exceeded": "rate_limit_error",
    "concurrency_limit_exceeded": "rate_limit_error",
    "upstream_rate_limited": "rate_limit_error",
    "upstream_timeout": "timeout_error",
    "upstream_error": "api_error",
    "service_unavailable": "api_error",
    "internal_error": "api_error",
}


def anthropic_error_body(error_type: str, message: str, *, code: str | None = None, request_id: str | None = None,
                         details: dict | None = None, **_ignored) -> dict:
    """Anthropic's envelope {"type": "error", "error": {"type", "message"}, "request_id"}, with Anthropic's
    error types; the gateway's own type rides along as error.gateway_type (quota vs rate limit), and so do
    the gateway's code and details such as upstream_status or limit_scope. There is no param: the message
    names the field."""
    error = {"type": ANTHROPIC_ERROR_TYPES.get(error_type, "api_error"), "message": message}
    if error["type"] != error_type:
        error["gateway_type"] = error_type
    if code is not None:
        error["code"] = code
    error.update(details or {})
    return {"type": "error", "error": error, "request_id": request_id}


def validation_message(messages) -> tuple[str, str | None]:
    """Flatten marshmallow's nested messages into one sentence and the first offending field."""
    parts: list[str] = []
    first: list[str] = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, [*path, str(key)])
        elif isinstance(node, list) and node and all(isinstance(m, str) for m in node):
            name = ".".join(p for p in path if p != "_schema") or "body"
            parts.append(f"{name}: {' '.join(node)}")
            first.append(name)
        elif isinstance(node, list):
            for item in node:
                walk(item, path)
        else:
            parts.append(f"{'.'.join(path) or 'body'}: {node}")
            first.append(".".join(path) or "body")

    walk(messages, [])
    return "; ".join(parts) or "invalid request body", (first[0] if first else None)
