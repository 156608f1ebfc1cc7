"""The /v1 door: who is calling (gateway key) and their per-user rate limit."""

from __future__ import annotations

from flask import g

from gateway.blueprints.credentials import presented_key
from gateway.extensions import limiter
from gateway.net import client_ip
from gateway.rate_limits import ParsedOnceRouteLimit
from gateway.services.auth import authenticate
from gateway.services.completion_io import RequestMeta
from gateway.services.failure_throttle import FailureThrottle
from gateway.current import gateway_state


def require_gateway_key() -> None:
    """before_request of /v1 blueprints: sets g.caller or raises 401/403/429."""
    state = gateway_state()
    settings = state.settings
    throttle = FailureThrottle(limiter.limiter, settings.auth_failure_limit, settings.rate_limit_window_s,
                               "api_key")
    g.caller = authenticate(presented_key(), client_ip(), settings, state.key_cache, throttle)


def _user_limit_value() -> str:
    return f"{g.caller.limits.rate_limit_max} per {gateway_state().settings.rate_limit_window_s} second"


def _user_key() -> str:
    return f"user:{g.caller.user_id}"


def request_meta(endpoint: str) -> RequestMeta:
    """The request's id, endpoint and client address, for the pipeline."""
    return RequestMeta(request_id=g.request_id, endpoint=endpoint, client_ip=client_ip(),
                       started_at=g.started_at)


# What limiter.shared_limit(_user_limit_value, scope="user", key_func=_user_key) builds, parsed once per value.
user_rate_limit = ParsedOnceRouteLimit(_user_limit_value, limiter=limiter, key_function=_user_key, scope="user",
                                       shared=True, override_defaults=True, cost=1)
