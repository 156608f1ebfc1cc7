"""Settings are validated once at start-up; a bad value is one line naming the setting."""

import subprocess
from pathlib import Path
import sys

import pytest

from gateway.config import ConfigError, load_settings


@pytest.mark.parametrize("env, message", [
    ({"RATE_LIMIT_MAX": "abc"}, "RATE_LIMIT_MAX: must be an integer >= 1, got 'abc'"),
    ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL: scheme must be one of"),
    ({"DEFAULT_DAILY_REQUESTS": "-5"}, "DEFAULT_DAILY_REQUESTS: must be an integer >= 0"),
    ({"DEFAULT_MONTHLY_SPEND_CAP_USD": "-1"}, "DEFAULT_MONTHLY_SPEND_CAP_USD: must be a non-negative amount"),
    ({"DEFAULT_MONTHLY_SPEND_CAP_USD": "NaN"}, "DEFAULT_MONTHLY_SPEND_CAP_USD"),
    ({"PROMPT_LOGGING": "everything"}, "PROMPT_LOGGING: must be one of off, redacted, full"),
    ({"RATE_LIMIT_WINDOW_MS": "1500"}, "RATE_LIMIT_WINDOW_MS: must be a whole number of seconds"),
    ({"RATELIMIT_STORAGE_URI": "memcached://x"}, "RATELIMIT_STORAGE_URI: scheme must be one of"),
    ({"MOCK_PROVIDER": "maybe"}, "MOCK_PROVIDER: must be on or off"),
    ({"GATEWAY_ENV": "staging"}, "GATEWAY_ENV: must be one of development, production, testing"),
])
def test_bad_values_name_the_setting(env, message):
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_production_refuses_missing_or_short_admin_token():
    with pytest.raises(ConfigError, match="ADMIN_TOKEN: production needs a token of at least 32"):
        load_settings({"GATEWAY_ENV": "production"})
    with pytest.raises(ConfigError, match="ADMIN_TOKEN"):
        load_settings({"GATEWAY_ENV": "production", "ADMIN_TOKEN": "short"})
    settings = load_settings({"GATEWAY_ENV": "production", "ADMIN_TOKEN": "x" * 32, "OPENAI_API_KEY": "sk-1"})
    assert settings.is_production and not settings.mock_provider


def test_defaults_follow_the_design():
    settings = load_settings({})
    assert (settings.port, settings.rate_limit_max, settings.rate_limit_window_ms) == (3100, 60, 60000)
    assert (settings.ip_rate_limit_max, settings.default_daily_requests, settings.default_daily_tokens) == \
        (300, 1000, 100000)
    assert str(settings.default_monthly_spend_cap_usd) == "50"
    assert settings.prompt_logging == "redacted" and settings.ratelimit_storage_uri == "memory://"
    assert settings.mock_provider is True  # development without provider keys
    assert load_settings({"OPENAI_API_KEY": "sk-1"}).mock_provider is False
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("data/gateway.db")


def test_start_up_fails_with_one_line():
    result = subprocess.run(
        [sys.executable, "-c", "from gateway.app import create_app; create_app()"],
        env={"RATE_LIMIT_MAX": "abc", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode != 0
    assert "RATE_LIMIT_MAX: must be an integer >= 1, got 'abc'" in result.stderr
