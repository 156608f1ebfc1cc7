"""The client's errors: one class per outcome a script must tell apart, each with its exit code.

Every failure from outside (an HTTP error reply, a broken connection, an `error` stream event) becomes
one of these in exactly one place: `error_from_reply` and `error_from_event` here, and the
transport boundary in api.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone


class DominionError(Exception):
    """A failure told to the user as one line; `exit_code` is what the CLI exits with."""

    exit_code = 5

    def __init__(self, message: str, *, status: int | None = None, error_type: str | None = None,
                 code: str | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.code = code
        self.request_id = request_id

    def line(self) -> str:
        """The one line the CLI prints: the message and, when known, the request id to quote."""
        suffix = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.message}{suffix}"


class UsageError(DominionError):
    """The command or the request was wrong: bad option, bad configuration, 400 from the gateway."""

    exit_code = 2


class AuthenticationError(DominionError):
    """No token, or the gateway refused it (401), or its owner may not call (403)."""

    exit_code = 3


class LimitExceeded(DominionError):
    """A quota, rate limit or concurrency limit said no (429); says when to try again."""

    exit_code = 4

    def __init__(self, message: str, *, retry_after: float | None = None, resets_at: str | None = None,
                 **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.resets_at = resets_at

    def line(self) -> str:
        """The gateway's message plus the wait, unless the message already names the reset time."""
        base = super().line()
        if self.retry_after is None or (self.resets_at and self.resets_at in self.message):
            return base
        at = datetime.now(timezone.utc) + timedelta(seconds=self.retry_after)
        return f"{base} Retry after {self.retry_after:g} s (at {at:%Y-%m-%d %H:%M:%S} UTC)."


class GatewayFailure(DominionError):
    """The gateway or its upstream failed (5xx, a broken stream, a reply that is not the gateway's)."""

    exit_code = 5


class ConnectionFailed(DominionError):
    """The gateway could not be reached at all (refused, DNS, connect timeout)."""

    exit_code = 6


def error_class(status: int) -> type[DominionError]:
    """The error class for an HTTP status the gateway answered with."""
    if status in (401, 403):
        return AuthenticationError
    if status == 429:
        return LimitExceeded
    if status in (400, 413, 422):
        return UsageError
    return GatewayFailure


def error_from_reply(status: int, body: bytes, headers: Mapping[str, str]) -> DominionError:
    """Turn a non-2xx reply into the matching error, reading the gateway's one error envelope."""
    envelope = _envelope(body)
    request_id = envelope.get("request_id") or headers.get("x-request-id")
    if "message" not in envelope:
        hint = " (is the URL the gateway's root, e.g. http://localhost:3100?)" if status == 404 else ""
        return error_class(status)(f"The gateway answered HTTP {status} without an error message{hint}.",
                                   status=status, request_id=request_id)
    kwargs = {"status": status, "error_type": envelope.get("type"), "code": envelope.get("code"),
              "request_id": request_id}
    cls = error_class(status)
    if cls is LimitExceeded:
        return LimitExceeded(envelope["message"], retry_after=_retry_after(headers),
                             resets_at=envelope.get("resets_at"), **kwargs)
    if status == 404:
        envelope["message"] += " Check that the URL is the gateway's root, e.g. http://localhost:3100."
    return cls(envelope["message"], **kwargs)


def error_from_event(data: Mapping) -> DominionError:
    """An `event: error` in a stream: the upstream failed after the answer began."""
    error = data.get("error") if isinstance(data.get("error"), Mapping) else {}
    message = error.get("message") or "The stream ended with an error the gateway did not describe."
    return GatewayFailure(message, error_type=error.get("type"), code=error.get("code"),
                          request_id=error.get("request_id"))


def _envelope(body: bytes) -> dict:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return dict(error) if isinstance(error, dict) and isinstance(error.get("message"), str) else {}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers.get("retry-after", "")))
    except ValueError:
        return None
