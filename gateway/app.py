"""The app factory: named steps that build one Dominion Gateway app from a settings mapping."""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable, Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import rate_window
from gateway.config import ConfigError, Settings, exit_on_config_error, load_settings
from gateway.current import STATE_EXTENSION
from gateway.database import register_database
from gateway.error_handlers import register_error_handlers
from gateway.extensions import limiter
from gateway.logs import configure_logging
from gateway.observability import register_observability
from gateway.providers.registry import MOCK, build_providers
from gateway.rate_limits import KEY_PREFIX
from gateway.request_context import register_request_context
from gateway.request_db import register_request_db
from gateway.services.catalog import ModelCatalog
from gateway.services.key_cache import VerifiedKeyCache
from gateway.services.routing import Router
from gateway.services.upstream_health import CooldownPolicy
from gateway.state import GatewayState
from gateway.upstream_config import load_upstreams

log = logging.getLogger("gateway")


@functools.lru_cache(maxsize=1024)
def _is_coroutine_function(func: Callable) -> bool:
    return inspect.iscoroutinefunction(func)


class GatewayFlask(Flask):
    """Flask that asks once per function, not on every call, whether a view or hook is async.

    Flask runs every view and request hook through ensure_sync, which asks inspect on each call: 14 times
    per completion, 0.6% of its instructions. The answer for a given function never changes.
    """

    def ensure_sync(self, func: Callable) -> Callable:
        try:
            is_async = _is_coroutine_function(func)
        except TypeError:  # an unhashable callable: asked every time, as Flask does
            return super().ensure_sync(func)
        return self.async_to_sync(func) if is_async else func


def create_app(config: Mapping[str, str] | None = None) -> Flask:
    """Build the app; config (tests) replaces the environment, which is read otherwise."""
    env = dict(os.environ) if config is None else dict(config)
    settings = load_settings(env)
    app = GatewayFlask(__name__, static_folder=None)
    configure_logging(settings)
    register_settings(app, settings)
    register_proxy_fix(app, settings)
    register_request_context(app)
    register_database(app, settings)
    register_request_db(app)
    register_limiter(app, settings)
    register_state(app, settings, env)
    register_blueprints(app)
    register_error_handlers(app)
    register_observability(app)
    register_cli(app)
    return app


def serve_app(config: Mapping[str, str] | None = None) -> Flask:
    """For entry points (wsgi, the flask CLI): a bad setting ends the process with one line, not a traceback."""
    try:
        return create_app(config)
    except ConfigError as error:
        exit_on_config_error(error)


def register_settings(app: Flask, settings: Settings) -> None:
    """Copy what Flask and its extensions read from app.config."""
    app.config.update(
        GATEWAY_SETTINGS=settings,
        TESTING=settings.gateway_env == "testing",
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    app.json.compact = True


def register_proxy_fix(app: Flask, settings: Settings) -> None:
    """Trust exactly TRUSTED_PROXY_COUNT proxies' X-Forwarded-For; never more."""
    if settings.trusted_proxy_count:
        count = settings.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=0, x_port=0, x_prefix=0)


def register_limiter(app: Flask, settings: Settings) -> None:
    """Flask-Limiter: one per-IP bucket across routes; per-user limits are declared on /v1 views."""
    from gateway.blueprints.caller import user_hit_after_ip_hit

    app.config.update(
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_uri,
        RATELIMIT_STORAGE_OPTIONS=_limiter_storage_options(settings.ratelimit_storage_uri),
        # The per-IP limit is the limiter's application limit (gateway/rate_limits.py): one for the process,
        # reading IP_RATE_LIMIT_MAX of the app serving the request.
        # limits' fixed window, with the X-RateLimit-* headers answered from the hit (gateway/rate_window.py).
        RATELIMIT_STRATEGY=rate_window.register(),
        RATELIMIT_HEADERS_ENABLED=True,
        # Flask-Limiter would stamp Retry-After on every response and overwrite an upstream's own
        # hint; our 429 handler sets Retry-After itself, so its copy goes under another name.
        RATELIMIT_HEADER_RETRY_AFTER="X-RateLimit-Retry-After",
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_KEY_PREFIX=KEY_PREFIX,
    )
    limiter.init_app(app)
    limiter.count_ahead(user_hit_after_ip_hit)  # on Redis, both limits of a /v1 completion in one round trip
    _warn_if_limits_multiply(settings)


def _limiter_storage_options(uri: str) -> dict:
    if uri.startswith("memory"):
        return {}
    return {"socket_connect_timeout": 0.25, "socket_timeout": 0.5, "health_check_interval": 30}


def _warn_if_limits_multiply(settings: Settings) -> None:
    if settings.ratelimit_storage_uri.startswith("memory") and settings.web_concurrency > 1:
        log.warning(
            "RATE LIMITS WILL MULTIPLY: WEB_CONCURRENCY=%s processes each keep their own memory:// "
            "limiter, so every limit is effectively %sx higher. Set RATELIMIT_STORAGE_URI=redis://... "
            "or run one worker.", settings.web_concurrency, settings.web_concurrency)


def register_state(app: Flask, settings: Settings, env: Mapping[str, str]) -> None:
    """Load the upstreams and the model catalog, build providers, the router and the key cache once."""
    upstreams = load_upstreams(settings, env)
    for upstream in upstreams:
        if upstream.unavailable_reason and upstream.source != "environment":
            log.warning("upstream %s is unavailable: %s", upstream.name, upstream.unavailable_reason)
    catalog = ModelCatalog.load(settings.model_catalog_file, [u.name for u in upstreams] + [MOCK])
    providers = build_providers([u for u in upstreams if not u.unavailable_reason], settings.mock_provider)
    router = Router(catalog, providers, CooldownPolicy(settings.upstream_cooldown_failures,
                                                       settings.upstream_cooldown_s))
    key_cache = VerifiedKeyCache(settings.key_cache_size, settings.key_cache_ttl_s)
    app.extensions[STATE_EXTENSION] = GatewayState(settings, catalog, providers, key_cache, router, upstreams)


def register_blueprints(app: Flask) -> None:
    """Every blueprint, in one place; health, metrics and the static docs and console files are never rate
    limited (the /admin calls the console makes are limited as usual)."""
    from gateway.blueprints.admin import admin_bp
    from gateway.blueprints.admin_reports import admin_reports_bp
    from gateway.blueprints.anthropic_compat import anthropic_bp
    from gateway.blueprints.console import console_bp
    from gateway.blueprints.docs import docs_bp
    from gateway.blueprints.health import health_bp
    from gateway.blueprints.llm import llm_bp
    from gateway.blueprints.metrics import metrics_bp
    from gateway.blueprints.openai_compat import openai_bp

    for unlimited in (health_bp, metrics_bp, docs_bp, console_bp):
        limiter.exempt(unlimited)
    for blueprint in (health_bp, llm_bp, openai_bp, anthropic_bp, admin_bp, admin_reports_bp, metrics_bp, docs_bp,
                      console_bp):
        app.register_blueprint(blueprint)


def register_cli(app: Flask) -> None:
    """flask users|keys|limits|usage|quotas commands."""
    from gateway.cli import register_commands

    register_commands(app)
