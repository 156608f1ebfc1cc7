"""Flask-Limiter, minus work it repeats on every request for answers that cannot change.

- The per-IP and per-user limits parse their limit string once per value. Flask-Limiter asks a limit
  declared with a callable for its string on every request, parses it (limits.parse_many) and builds a
  RuntimeLimit for each item it names. The strings take very few values (the configured defaults and the
  per-user overrides in use), and what it builds from one depends only on the string and the
  declaration, so these declarations keep it per string.
- GatewayLimiter resolves a route's exemptions once per app. Flask-Limiter works them out four times per
  request (twice per limit check) from the view's name and every blueprint exemption, though they change
  only when limiter.exempt is called, which happens while apps are built.
- GatewayLimiter finds its per-request state with one context-local lookup; Flask-Limiter's own
  `context` property (read ~11 times per request) goes through the request-context proxy three times.
- GatewayLimiter lets the app name the hits a request will make after a given one (`count_ahead`): on
  Redis they are counted with it in one round trip (gateway/rate_window.py), and given back at the end of
  a request that did not make them.
"""

from __future__ import annotations

import copy
from collections import defaultdict

from flask import Flask
from flask.globals import request_ctx
from flask_limiter import ApplicationLimit, ExemptionScope, Limiter, RouteLimit
from flask_limiter._extension import LimiterContext
from flask_limiter._manager import LimitManager
from werkzeug.local import LocalProxy

from gateway.current import gateway_state
from gateway.rate_window import CountingFixedWindow, FollowUps

# RATELIMIT_KEY_PREFIX: the first identifier of every key Flask-Limiter counts.
KEY_PREFIX = "dominion"
# The per-IP limit's scope, the last identifier of its key.
IP_LIMIT_SCOPE = "global"
# Distinct limit strings remembered per declaration; past it the memory starts over (overrides are few).
MAX_REMEMBERED_VALUES = 1024
EXEMPTIONS_EXTENSION = "dominion_limiter_exemptions"


class _ParsedOnce:
    """Mixin for Flask-Limiter's Limit dataclasses: the RuntimeLimits of each limit string, built once."""

    def __post_init__(self, *init_vars) -> None:
        super().__post_init__(*init_vars)
        self._runtime_by_value: dict[str, tuple] = {}

    def __iter__(self):
        value = self.limit_provider() if callable(self.limit_provider) else self.limit_provider
        return iter(self.runtime_limits(value))

    def runtime_limits(self, value: str) -> tuple:
        """The RuntimeLimits Flask-Limiter builds from this declaration when its provider gives value."""
        runtime = self._runtime_by_value.get(value)
        if runtime is None:
            # Flask-Limiter's own construction, run on a copy whose provider is the value (this declaration
            # is shared by every thread, so its own provider is never swapped).
            declaration = copy.copy(self)
            declaration.limit_provider = value
            runtime = tuple(super(_ParsedOnce, declaration).__iter__())
            if len(self._runtime_by_value) >= MAX_REMEMBERED_VALUES:
                self._runtime_by_value = {}
            self._runtime_by_value[value] = runtime
        return runtime


class ParsedOnceApplicationLimit(_ParsedOnce, ApplicationLimit):
    """An application-wide (shared by every route) limit, parsed once per limit string."""


class ParsedOnceRouteLimit(_ParsedOnce, RouteLimit):
    """A route decorator limit (as Limiter.limit / shared_limit make), parsed once per limit string."""


def ip_rate_limit_value() -> str:
    """IP_RATE_LIMIT_MAX per RATE_LIMIT_WINDOW_MS of the current app."""
    settings = gateway_state().settings
    return f"{settings.ip_rate_limit_max} per {settings.rate_limit_window_s} second"


def per_ip_limit() -> ParsedOnceApplicationLimit:
    """The per-IP limit over every route not exempted (keyed by Limiter's key_func, the client address)."""
    # Not finalized: init_app gives it the RATELIMIT_APPLICATION_LIMITS_* settings, as it would a string.
    return ParsedOnceApplicationLimit(limit_provider=ip_rate_limit_value, scope=IP_LIMIT_SCOPE, finalized=False)


class GatewayLimiter(Limiter):
    """Flask-Limiter's Limiter whose limit manager remembers each route's exemptions per app."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limit_manager = ExemptionsOnce(self.limit_manager)
        self._follow_ups: FollowUps | None = None

    def init_app(self, app: Flask) -> None:
        """Flask-Limiter's init_app, for a storage not yet found dead (the flag is the limiter's, and outlived
        the app whose storage it was); hits counted ahead and not made are given back when a request ends."""
        self._storage_dead = False
        super().init_app(app)
        self._count_ahead_in(self._limiter)
        app.teardown_request(self._give_back_unclaimed)

    def count_ahead(self, follow_ups: FollowUps) -> None:
        """Count the hits follow_ups names for a hit together with it, where the storage can (Redis)."""
        self._follow_ups = follow_ups
        self._count_ahead_in(self._limiter)

    def _count_ahead_in(self, strategy) -> None:
        if isinstance(strategy, CountingFixedWindow):
            strategy.follow_ups = self._follow_ups

    def _give_back_unclaimed(self, _error: BaseException | None = None) -> None:
        if isinstance(self._limiter, CountingFixedWindow):
            self._limiter.give_back_unclaimed()

    @property
    def context(self) -> LimiterContext:
        """Limiter.context (this limiter's state for the current request, kept on the request context
        where Flask-Limiter keeps it), found without going through the proxy more than once."""
        ctx = request_ctx._get_current_object()
        contexts = ctx.__dict__.get("_limiter_request_context")
        if contexts is None:
            contexts = ctx._limiter_request_context = defaultdict(LimiterContext)
        return contexts[self]


class ExemptionsOnce(LimitManager):
    """A LimitManager with the same registrations (it shares the original's dicts and lists) whose
    exemption_scope is computed once per (app, endpoint, blueprint) and again after any new exemption."""

    def __init__(self, manager: LimitManager) -> None:
        # Not LimitManager.__init__: the state is the original manager's own objects, not copies of them.
        self.__dict__.update(vars(manager))
        self._exemptions_version = 0

    def add_route_exemption(self, route: str, scope: ExemptionScope) -> None:
        super().add_route_exemption(route, scope)
        self._exemptions_version += 1

    def add_blueprint_exemption(self, blueprint: str, scope: ExemptionScope) -> None:
        super().add_blueprint_exemption(blueprint, scope)
        self._exemptions_version += 1

    def exemption_scope(self, app: Flask, endpoint: str | None, blueprint: str | None) -> ExemptionScope:
        """LimitManager.exemption_scope, remembered in the app (its routes and blueprints are fixed once
        it serves requests)."""
        # Flask-Limiter passes current_app: read the app behind the proxy (gateway/context.py says why).
        extensions = (app._get_current_object() if isinstance(app, LocalProxy) else app).extensions
        version, remembered = extensions.get(EXEMPTIONS_EXTENSION, (None, None))
        if version != self._exemptions_version:
            remembered = {}
            extensions[EXEMPTIONS_EXTENSION] = (self._exemptions_version, remembered)
        scope = remembered.get((endpoint, blueprint))
        if scope is None:
            scope = remembered[(endpoint, blueprint)] = super().exemption_scope(app, endpoint, blueprint)
        return scope
