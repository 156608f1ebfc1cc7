"""Credentials as callers present them (Bearer, Anthropic-style x-api-key), parsed and checked in one place."""

from __future__ import annotations

import hmac

from gateway.context import this_request
from gateway.errors import AuthenticationFailed
from gateway.extensions import limiter
from gateway.net import client_ip
from gateway.services.failure_throttle import FailureThrottle
from gateway.current import gateway_state


def bearer_token() -> str:
    """The token of `Authorization: Bearer <token>`, or '' when the request has none."""
    scheme, _, token = this_request().headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def presented_key() -> str | None:
    """A gateway key as Bearer, or as Anthropic-style x-api-key."""
    return bearer_token() or this_request().headers.get("x-api-key") or None


def tokens_match(presented: str, expected: str) -> bool:
    """Whether presented is expected, in time that does not depend on where they first differ."""
    return hmac.compare_digest(presented.encode(), expected.encode())


def require_static_token(expected: str, kind: str, failure: AuthenticationFailed) -> None:
    """The request must carry `Bearer <expected>`, compared in constant time before anything else: the
    right token is never refused by the failure throttle (a shared address cannot lock the operator
    out); wrong ones are counted per address and get 429 once past the budget."""
    if tokens_match(bearer_token(), expected):
        return
    settings = gateway_state().settings
    throttle = FailureThrottle(limiter.limiter, settings.auth_failure_limit, settings.rate_limit_window_s, kind)
    raise throttle.failed(client_ip()) or failure
