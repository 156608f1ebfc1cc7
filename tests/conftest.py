"""Shared fixtures: an app per test on SQLite (always) and PostgreSQL (when TEST_DATABASE_URL is set),
a client, a CLI runner, a user with a key, and one real fake upstream for the session."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text

from gateway.app import create_app
from gateway.config import normalise_database_url
from gateway.extensions import db
from gateway.services import key_material
from tests.fake_upstream import FakeUpstream

ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123"
REQUIRE_SERVICES = os.environ.get("DOMINION_REQUIRE_SERVICES") == "1"
TABLES = ("usage_records", "usage_counters", "usage_in_flight", "api_keys", "users")
# argon2id at its smallest cost for keys made by in-process apps: the shipped cost (19 MiB, two passes) took
# ~70 ms per key made and first used, most of a typical test's time. Same algorithm, same code path; the
# shipped parameters are asserted by test_admin_keys (real_key_hashing) and used by every gunicorn-served test.
TEST_ARGON2_PARAMS = {**key_material.ARGON2_PARAMS, "time_cost": 1, "memory_cost": 64}


def missing_service(message: str):
    """Skip locally, fail in CI (DOMINION_REQUIRE_SERVICES=1): a skipped PostgreSQL test is a failure there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {message}")
    pytest.skip(message)


def postgres_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        missing_service("TEST_DATABASE_URL is not set")
    return normalise_database_url(url)


def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        missing_service("TEST_REDIS_URL is not set")
    return url


@pytest.fixture(scope="session", autouse=True)
def cheap_key_hashing():
    """Hash keys with TEST_ARGON2_PARAMS in this process for the whole session."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(key_material, "_hasher", PasswordHasher(**TEST_ARGON2_PARAMS))
        yield


@pytest.fixture
def real_key_hashing(monkeypatch):
    """The shipped argon2 parameters, for a test that checks them."""
    monkeypatch.setattr(key_material, "_hasher", PasswordHasher(**key_material.ARGON2_PARAMS))


@pytest.fixture(scope="session")
def fake_upstream():
    """One real HTTP server speaking OpenAI and Anthropic for the whole session."""
    server = FakeUpstream()
    server.start()
    yield server
    server.stop()


@contextmanager
def temporary_postgres_database(prefix: str):
    """A fresh, empty database on the TEST_DATABASE_URL server; dropped afterwards."""
    server_url = postgres_url()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def session_postgres_url():
    """This session's own database, so concurrent test runs never truncate each other's tables."""
    with temporary_postgres_database("dominion_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    """Every database-backed test runs once per backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "gateway.db"
        return f"sqlite:///{path}"
    return request.getfixturevalue("session_postgres_url")


def base_config(database_url: str, upstream: FakeUpstream | None = None, **overrides) -> dict:
    """Settings of a test app: real fake upstream, known admin token, fast upstream timeouts."""
    config = {
        "GATEWAY_ENV": "testing",
        "DATABASE_URL": database_url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "MOCK_PROVIDER": "on",
        "UPSTREAM_TIMEOUT_S": "5",
        "UPSTREAM_MAX_RETRIES": "0",
        "SWEEP_INTERVAL_S": "0",
    }
    if upstream is not None:
        config.update(OPENAI_API_KEY="sk-test-openai-key", ANTHROPIC_API_KEY="sk-ant-test-key",
                      OPENAI_BASE_URL=upstream.openai_base_url,
                      ANTHROPIC_BASE_URL=upstream.anthropic_base_url)
    config.update({k: str(v) for k, v in overrides.items()})
    return config


def make_app(config: dict, reset: bool = True):
    """An app with an empty schema (created from the models; migrations are tested separately)."""
    app = create_app(config)
    if reset:
        with app.app_context():
            reset_schema()
    return app


# Emptied rows and restarted ids: DELETE on tables of a few rows takes ~1 ms where TRUNCATE took ~17 ms (it
# swaps every table's files). TABLES lists children before parents.
_EMPTY_POSTGRES = "; ".join([*(f"DELETE FROM {table}" for table in TABLES),
                             *(f"ALTER SEQUENCE {table}_id_seq RESTART" for table in TABLES
                               if table != "usage_in_flight")])


def reset_schema() -> None:
    """Empty tables on PostgreSQL (fast), or create them on a fresh SQLite file."""
    engine = db.engine
    db.metadata.create_all(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql(_EMPTY_POSTGRES)


@pytest.fixture
def app_factory(database_url, fake_upstream):
    """Build an app with extra settings; the fake upstream is reset for each test."""
    fake_upstream.reset()
    apps = []

    def factory(**overrides):
        app = make_app(base_config(database_url, fake_upstream, **overrides), reset=not apps)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def admin_headers():
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Account:
    """A user with one key, made through the admin API like a real operator would."""

    user_id: int
    key_id: int
    api_key: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"}


def create_account(client, admin_headers, email="ada@example.com", **limits) -> Account:
    """POST /admin/users, optional /admin/limits, POST /admin/keys."""
    user = client.post("/admin/users", json={"name": "Ada", "email": email}, headers=admin_headers)
    assert user.status_code == 201, user.get_json()
    user_id = user.get_json()["id"]
    if limits:
        response = client.post("/admin/limits", json={"user_id": user_id, **limits}, headers=admin_headers)
        assert response.status_code == 200, response.get_json()
    key = client.post("/admin/keys", json={"user_id": user_id, "name": "test"}, headers=admin_headers)
    assert key.status_code == 201, key.get_json()
    body = key.get_json()
    return Account(user_id=user_id, key_id=body["id"], api_key=body["api_key"])


@pytest.fixture
def account(client, admin_headers) -> Account:
    return create_account(client, admin_headers)


@pytest.fixture(scope="session")
def pg_engine():
    """A raw engine on TEST_DATABASE_URL for tests that need one."""
    engine = create_engine(postgres_url())
    yield engine
    engine.dispose()


@dataclass
class LiveServer:
    """The app served by a real threaded WSGI server on 127.0.0.1."""

    app: object
    url: str


@pytest.fixture
def live_server_factory():
    """Serve an app over real HTTP (threads), for concurrency and SDK tests."""
    import threading

    from werkzeug.serving import make_server

    servers = []

    def factory(app) -> LiveServer:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append(server)
        return LiveServer(app, f"http://127.0.0.1:{server.server_port}")

    yield factory
    for server in servers:
        server.shutdown()


def counters_match_audit(app, user_id=None) -> list:
    """[] when every counter equals the sums of its audit rows."""
    from gateway.services.reconcile import counter_mismatches

    with app.app_context():
        return counter_mismatches(user_id)
