"""The per-IP and per-user rate limits as Flask-Limiter limits that parse their limit string once.

Flask-Limiter asks a limit declared with a callable for its string on every request, parses it
(limits.parse_many) and builds a RuntimeLimit for each item it names. The strings take very few values
(the configured defaults and the per-user overrides in use), and what Flask-Limiter builds from one
depends only on the string and the declaration, so these declarations keep it per string instead.
"""

from __future__ import annotations

from flask_limiter import ApplicationLimit, RouteLimit

from gateway.current import gateway_state

# Distinct limit strings remembered per declaration; past it the memory starts over (overrides are few).
MAX_REMEMBERED_VALUES = 1024


class _ParsedOnce:
    """Mixin for Flask-Limiter's Limit dataclasses: the RuntimeLimits of each limit string, built once."""

    def __post_init__(self, *init_vars) -> None:
        super().__post_init__(*init_vars)
        self._runtime_by_value: dict[str, tuple] = {}

    def __iter__(self):
        value = self.limit_provider() if callable(self.limit_provider) else self.limit_provider
        runtime = self._runtime_by_value.get(value)
        if runtime is None:
            # Flask-Limiter's own construction (it asks the provider again: same request, same string).
            runtime = tuple(super().__iter__())
            if len(self._runtime_by_value) >= MAX_REMEMBERED_VALUES:
                self._runtime_by_value = {}
            self._runtime_by_value[value] = runtime
        return iter(runtime)


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
    return ParsedOnceApplicationLimit(limit_provider=ip_rate_limit_value, finalized=False)
