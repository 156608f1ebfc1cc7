"""Every setting of the gateway, read once from a mapping (the environment), validated, with defaults.

A bad value stops start-up with one line naming the setting and what is allowed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

ENVIRONMENTS = ("development", "production", "testing")
PROMPT_LOGGING_MODES = ("off", "redacted", "full")
# What a failure after the request reached the upstream costs (the audit row names the rule applied).
BILL_FAILED_UPSTREAM_RULES = ("prompt", "none")
DATABASE_SCHEMES = ("postgresql", "postgresql+psycopg2", "postgres", "sqlite")
LIMITER_SCHEMES = ("memory", "redis", "rediss", "redis+sentinel", "redis+cluster")
MIN_PRODUCTION_ADMIN_TOKEN = 32


class ConfigError(ValueError):
    """A setting has a value the gateway cannot run with."""


# gunicorn's "worker failed to boot" status: its arbiter stops instead of re-spawning the worker forever.
CONFIG_ERROR_EXIT = 3


def exit_on_config_error(error: ConfigError):
    """For entry points: end the process with one line naming the setting and what is allowed."""
    print(f"dominion-gateway: configuration error: {error}", file=sys.stderr)
    raise SystemExit(CONFIG_ERROR_EXIT)


@dataclass(frozen=True)
class Settings:
    """The validated configuration; attribute names are the environment names, lower-cased."""

    gateway_env: str
    host: str
    port: int
    database_url: str
    db_pool_size: int
    db_max_overflow: int
    openai_api_key: str | None
    anthropic_api_key: str | None
    openai_base_url: str
    anthropic_base_url: str
    mock_provider: bool
    admin_token: str | None
    rate_limit_max: int
    rate_limit_window_ms: int
    ip_rate_limit_max: int
    auth_failure_limit: int
    ratelimit_storage_uri: str
    trusted_proxy_count: int
    default_daily_requests: int
    default_daily_tokens: int
    default_monthly_spend_cap_usd: Decimal
    default_max_tokens: int
    default_max_concurrent_requests: int
    bill_failed_upstream: str
    default_model: str
    upstream_timeout_s: float
    upstream_connect_timeout_s: float
    upstream_max_retries: int
    prompt_logging: str
    model_catalog_file: str | None
    providers_file: str | None
    upstream_cooldown_s: float
    upstream_cooldown_failures: int
    max_request_bytes: int
    reservation_ttl_s: int
    sweep_interval_s: int
    key_cache_size: int
    key_cache_ttl_s: int
    web_concurrency: int
    metrics_token: str | None

    @property
    def is_production(self) -> bool:
        return self.gateway_env == "production"

    @property
    def rate_limit_window_s(self) -> int:
        return self.rate_limit_window_ms // 1000


def _text(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def integer_setting(env, name: str, default: int, minimum: int = 0) -> int:
    """An integer setting >= minimum (also for deploy/gunicorn.conf.py's own knobs); ConfigError if not."""
    raw = _text(env, name, None)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: must be an integer >= {minimum}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be an integer >= {minimum}, got {raw!r}")
    return value


def _number(env, name: str, default: float, minimum: float = 0.0) -> float:
    raw = _text(env, name, None)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: must be a number >= {minimum}, got {raw!r}") from None
    if not value >= minimum or value == float("inf"):
        raise ConfigError(f"{name}: must be a number >= {minimum}, got {raw!r}")
    return value


def _money(env, name: str, default: str) -> Decimal:
    raw = _text(env, name, default) or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name}: must be a non-negative amount in USD, got {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{name}: must be a non-negative amount in USD, got {raw!r}")
    return value


def _boolean(env, name: str, default: bool) -> bool:
    raw = _text(env, name, None)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: must be on or off (true/false, 1/0), got {raw!r}")


def _choice(env, name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = (_text(env, name, default) or default).lower()
    if raw not in allowed:
        raise ConfigError(f"{name}: must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _url(env, name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
    raw = _text(env, name, default)
    if raw is None:
        return None
    scheme = urlsplit(raw).scheme.lower()
    if scheme not in schemes:
        raise ConfigError(f"{name}: scheme must be one of {', '.join(schemes)}, got {scheme or raw!r}")
    return raw


def _database_url(env) -> str:
    """DATABASE_URL, or SQLite at SQLITE_PATH when it is unset."""
    url = _url(env, "DATABASE_URL", None, DATABASE_SCHEMES)
    if url is None:
        return f"sqlite:///{os.path.abspath(_text(env, 'SQLITE_PATH', './data/gateway.db'))}"
    return normalise_database_url(url)


def normalise_database_url(url: str) -> str:
    """postgres:// and postgresql:// use psycopg2, the driver we ship (SQLAlchemy 2.1 defaults to psycopg 3)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg2://{rest}" if scheme in ("postgres", "postgresql") else url


def _window_ms(env) -> int:
    value = integer_setting(env, "RATE_LIMIT_WINDOW_MS", 60000, minimum=1000)
    if value % 1000:
        raise ConfigError(f"RATE_LIMIT_WINDOW_MS: must be a whole number of seconds (a multiple of 1000), got {value}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from a mapping (os.environ by default); raises ConfigError on a bad value."""
    env = os.environ if env is None else env
    gateway_env = _choice(env, "GATEWAY_ENV", "development", ENVIRONMENTS)
    database_url = _database_url(env)
    openai_key = _text(env, "OPENAI_API_KEY", None)
    anthropic_key = _text(env, "ANTHROPIC_API_KEY", None)
    mock_default = gateway_env == "development" and not (openai_key or anthropic_key)
    mock = _boolean(env, "MOCK_PROVIDER", mock_default)
    settings = Settings(
        gateway_env=gateway_env,
        host=_text(env, "HOST", "0.0.0.0"),
        port=integer_setting(env, "PORT", 3100, minimum=1),
        database_url=database_url,
        db_pool_size=integer_setting(env, "DB_POOL_SIZE", 10, minimum=1),
        db_max_overflow=integer_setting(env, "DB_MAX_OVERFLOW", 10),
        openai_api_key=openai_key,
        anthropic_api_key=anthropic_key,
        openai_base_url=_url(env, "OPENAI_BASE_URL", "https://api.openai.com/v1", ("http", "https")).rstrip("/"),
        anthropic_base_url=_url(env, "ANTHROPIC_BASE_URL", "https://api.anthropic.com", ("http", "https")).rstrip("/"),
        mock_provider=mock,
        admin_token=_text(env, "ADMIN_TOKEN", None),
        rate_limit_max=integer_setting(env, "RATE_LIMIT_MAX", 60, minimum=1),
        rate_limit_window_ms=_window_ms(env),
        ip_rate_limit_max=integer_setting(env, "IP_RATE_LIMIT_MAX", 300, minimum=1),
        auth_failure_limit=integer_setting(env, "AUTH_FAILURE_LIMIT", 10, minimum=1),
        ratelimit_storage_uri=_url(env, "RATELIMIT_STORAGE_URI", "memory://", LIMITER_SCHEMES),
        trusted_proxy_count=integer_setting(env, "TRUSTED_PROXY_COUNT", 0),
        default_daily_requests=integer_setting(env, "DEFAULT_DAILY_REQUESTS", 1000),
        default_daily_tokens=integer_setting(env, "DEFAULT_DAILY_TOKENS", 100000),
        default_monthly_spend_cap_usd=_money(env, "DEFAULT_MONTHLY_SPEND_CAP_USD", "50"),
        default_max_tokens=integer_setting(env, "DEFAULT_MAX_TOKENS", 1024, minimum=1),
        default_max_concurrent_requests=integer_setting(env, "DEFAULT_MAX_CONCURRENT_REQUESTS", 0),
        bill_failed_upstream=_choice(env, "BILL_FAILED_UPSTREAM", "prompt", BILL_FAILED_UPSTREAM_RULES),
        default_model=_text(env, "DEFAULT_MODEL", _default_model(openai_key, anthropic_key, mock)),
        upstream_timeout_s=_number(env, "UPSTREAM_TIMEOUT_S", 120.0, minimum=0.001),
        upstream_connect_timeout_s=_number(env, "UPSTREAM_CONNECT_TIMEOUT_S", 5.0, minimum=0.001),
        upstream_max_retries=integer_setting(env, "UPSTREAM_MAX_RETRIES", 2),
        prompt_logging=_choice(env, "PROMPT_LOGGING", "redacted", PROMPT_LOGGING_MODES),
        model_catalog_file=_text(env, "MODEL_CATALOG_FILE", None),
        providers_file=_text(env, "PROVIDERS_FILE", None),
        upstream_cooldown_s=_number(env, "UPSTREAM_COOLDOWN_S", 30.0, minimum=0.0),
        upstream_cooldown_failures=integer_setting(env, "UPSTREAM_COOLDOWN_FAILURES", 3, minimum=1),
        max_request_bytes=integer_setting(env, "MAX_REQUEST_BYTES", 1048576, minimum=1024),
        reservation_ttl_s=integer_setting(env, "RESERVATION_TTL_S", 0),
        sweep_interval_s=integer_setting(env, "SWEEP_INTERVAL_S", 60, minimum=0),
        key_cache_size=integer_setting(env, "KEY_CACHE_SIZE", 10000, minimum=0),
        key_cache_ttl_s=integer_setting(env, "KEY_CACHE_TTL_S", 300, minimum=0),
        web_concurrency=integer_setting(env, "WEB_CONCURRENCY", 1, minimum=1),
        metrics_token=_text(env, "METRICS_TOKEN", None),
    )
    _check_production(settings)
    return _with_derived_defaults(settings)


def _default_model(openai_key: str | None, anthropic_key: str | None, mock: bool) -> str:
    """A default model some configured provider can serve."""
    if openai_key or not (anthropic_key or mock):
        return "gpt-4o-mini"
    return "claude-haiku-4-5" if anthropic_key else "mock-1"


def _with_derived_defaults(settings: Settings) -> Settings:
    """Fill settings whose default depends on others (a reservation outlives the longest call)."""
    if settings.reservation_ttl_s:
        return settings
    ttl = int(settings.upstream_timeout_s * (settings.upstream_max_retries + 1)) + 300
    return _replace(settings, reservation_ttl_s=ttl)


def _replace(settings: Settings, **changes) -> Settings:
    values = {f.name: getattr(settings, f.name) for f in fields(settings)}
    values.update(changes)
    return Settings(**values)


def _check_production(settings: Settings) -> None:
    if not settings.is_production:
        return
    token = settings.admin_token or ""
    if len(token) < MIN_PRODUCTION_ADMIN_TOKEN:
        raise ConfigError(
            f"ADMIN_TOKEN: production needs a token of at least {MIN_PRODUCTION_ADMIN_TOKEN} characters "
            f"(got {len(token)}); generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if settings.mock_provider:
        raise ConfigError("MOCK_PROVIDER: must be off in production")

