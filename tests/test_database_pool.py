"""DB_POOL_SIZE / DB_MAX_OVERFLOW size each process's PostgreSQL pool, so a deployment can keep
workers x (pool + overflow) under the server's max_connections (docker-compose.yml does)."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_settings
from gateway.extensions import db
from tests.conftest import base_config, make_app, postgres_url


def test_pool_defaults_to_ten_plus_ten():
    settings = load_settings({})
    assert (settings.db_pool_size, settings.db_max_overflow) == (10, 10)


@pytest.mark.parametrize("env, message", [
    ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE: must be an integer >= 1, got '0'"),
    ({"DB_MAX_OVERFLOW": "-1"}, "DB_MAX_OVERFLOW: must be an integer >= 0, got '-1'"),
])
def test_bad_pool_sizes_name_the_setting(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_postgres_engine_uses_the_configured_pool():
    app = make_app(base_config(postgres_url(), DB_POOL_SIZE=3, DB_MAX_OVERFLOW=2), reset=False)
    try:
        with app.app_context():
            pool = db.engine.pool
            assert (pool.size(), pool._max_overflow) == (3, 2)
    finally:
        with app.app_context():
            db.engine.dispose()
