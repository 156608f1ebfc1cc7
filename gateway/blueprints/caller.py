"""The /v1 door: who is calling (gateway key) and their per-user rate limit."""

from __future__ import annotations

from flask import g

from gateway.context import request_globals, this_app, this_request

from gateway.blueprints.credentials import presented_key
from gateway.extensions import limiter
from gateway.net import client_ip
from gateway.rate_limits import IP_LIMIT_SCOPE, KEY_PREFIX, ParsedOnceRouteLimit
from gateway.rate_window import Hit
from gateway.services.auth import Caller, authenticate
from gateway.services.completion_io import RequestMeta
from gateway.services.failure_throttle import FailureThrottle
from gateway.current import gateway_state


_CHECKED_BY_RESERVATION = "dominion_status_checked_by_reservation"


def reserves_quota(view):
    """Mark a view that serves nothing without a quota reservation, whose statement checks the key's status
    and the user's limits (gateway/ledger): its authentication need not read them first."""
    setattr(view, _CHECKED_BY_RESERVATION, True)
    return view


def require_gateway_key() -> None:
    """before_request of /v1 blueprints: sets g.caller or raises 401/403/429."""
    g.caller = _authenticated(status_checked_later=_view_reserves_quota())


def _view_reserves_quota() -> bool:
    """Whether the view this request is routed to is marked reserves_quota."""
    view = this_app().view_functions.get(this_request().endpoint)
    return getattr(view, _CHECKED_BY_RESERVATION, False)


def refresh_caller() -> None:
    """Authenticate again, reading the key's status and the user's limits (after CallerChanged)."""
    g.caller = _authenticated(status_checked_later=False)


def _authenticated(status_checked_later: bool):
    state = gateway_state()
    settings = state.settings
    throttle = FailureThrottle(limiter.limiter, settings.auth_failure_limit, settings.rate_limit_window_s,
                               "api_key")
    return authenticate(presented_key(), client_ip(), settings, state.key_cache, throttle,
                        status_checked_later=status_checked_later)


def _user_limit_value() -> str:
    return _user_limit_value_of(request_globals().caller)


def _user_limit_value_of(caller: Caller) -> str:
    return f"{caller.limits.rate_limit_max} per {gateway_state().settings.rate_limit_window_s} second"


def _user_key() -> str:
    return _user_key_of(request_globals().caller)


def _user_key_of(caller: Caller) -> str:
    return f"user:{caller.user_id}"


def user_hit_after_ip_hit(_item, identifiers: tuple[str, ...]) -> tuple[Hit, ...]:
    """The per-user hit this request will make right after its per-IP one, to count with it (one Redis round
    trip for both, gateway/rate_window.py): named only when nothing but a cache lookup stands between them,
    on a view whose authentication reads nothing (reserves_quota) and a key this process has verified.

    Flask-Limiter's own terms, so the keys are the ones it will hit: the per-user declaration's RuntimeLimits
    for the cached caller's limit, its key function's value and scope, its cost. Should the request fail
    before it makes the hit, the hit is given back when the request ends.
    """
    if identifiers != (KEY_PREFIX, client_ip(), IP_LIMIT_SCOPE):
        return ()
    if not _view_reserves_quota():
        return ()
    presented = presented_key()
    cache = gateway_state().key_cache
    caller = cache.get(cache.digest(presented)) if presented else None
    if caller is None:
        return ()
    identity = (KEY_PREFIX, _user_key_of(caller))
    served = this_request()
    return tuple((limit.limit, (*identity, limit.scope_for(served.endpoint, served.method)), limit.deduction_amount)
                 for limit in user_rate_limit.runtime_limits(_user_limit_value_of(caller))
                 if not (limit.is_exempt or limit.method_exempt))


def request_meta(endpoint: str) -> RequestMeta:
    """The request's id, endpoint and client address, for the pipeline."""
    here = request_globals()
    return RequestMeta(request_id=here.request_id, endpoint=endpoint, client_ip=client_ip(),
                       started_at=here.started_at)


# What limiter.shared_limit(_user_limit_value, scope="user", key_func=_user_key) builds, parsed once per value.
user_rate_limit = ParsedOnceRouteLimit(_user_limit_value, limiter=limiter, key_function=_user_key, scope="user",
                                       shared=True, override_defaults=True, cost=1)
