"""Flask-Limiter: per-user and per-IP limits, headers, envelopes, Redis sharing and Redis outages."""

import os
import signal
import socket
import time

import pytest
import requests

from tests.deploy_support import start_gunicorn
from tests.conftest import ADMIN_TOKEN, base_config, create_account, redis_url

HELLO = {"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]}


def test_per_user_limit_with_headers_and_envelope(app_factory, admin_headers):
    client = app_factory(RATE_LIMIT_MAX=3).test_client()
    account = create_account(client, admin_headers)
    responses = [client.post("/v1/llm/complete", json=HELLO, headers=account.headers) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["X-RateLimit-Limit"] == "3"
    assert responses[0].headers["X-RateLimit-Remaining"] == "2"
    assert int(responses[0].headers["X-RateLimit-Reset"]) > time.time()
    error = responses[3].get_json()["error"]
    assert (error["type"], error["code"], error["limit_scope"]) == ("rate_limit_exceeded", "user_rate_limit", "user")
    assert 0 < int(responses[3].headers["Retry-After"]) <= 60


def test_user_override_of_rate_limit(app_factory, admin_headers):
    client = app_factory(RATE_LIMIT_MAX=100).test_client()
    account = create_account(client, admin_headers, rate_limit_max=2)
    codes = [client.get("/v1/llm/models", headers=account.headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    other = create_account(client, admin_headers, email="bob@example.com")
    assert client.get("/v1/llm/models", headers=other.headers).status_code == 200


def test_per_ip_limit_covers_admin_and_spares_health(app_factory, admin_headers):
    client = app_factory(IP_RATE_LIMIT_MAX=3).test_client()
    codes = [client.get("/admin/users", headers=admin_headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    error = client.get("/admin/users", headers=admin_headers).get_json()["error"]
    assert (error["code"], error["limit_scope"]) == ("ip_rate_limit", "ip")
    assert all(client.get("/health").status_code == 200 for _ in range(5))
    other = client.get("/admin/users", headers=admin_headers, environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert other.status_code == 200


def test_redis_down_falls_back_to_memory_and_reports_degraded(app_factory, admin_headers):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    client = app_factory(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{dead_port}/0", RATE_LIMIT_MAX=2).test_client()
    account = create_account(client, admin_headers)
    codes = [client.get("/v1/llm/models", headers=account.headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # still limited, per process, never a 500
    ready = client.get("/health/ready").get_json()
    assert ready["checks"]["limiter_storage"]["status"] == "degraded"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_processes_on_redis(tmp_path, database_url, fake_upstream):
    """Two separate gunicorn processes sharing one database and one Redis limiter storage."""
    import redis

    from tests.conftest import make_app

    url = redis_url()
    redis.Redis.from_url(url).flushdb()
    make_app(base_config(database_url, fake_upstream))  # empty schema
    env = {**os.environ, **base_config(database_url, fake_upstream, RATELIMIT_STORAGE_URI=url,
                                       RATE_LIMIT_MAX=5, WEB_CONCURRENCY=1, HOST="127.0.0.1",
                                       DOTENV_PATH=str(tmp_path / "none.env"))}
    ports = [_free_port(), _free_port()]
    processes = [start_gunicorn(env, port) for port in ports]
    yield [f"http://127.0.0.1:{port}" for port in ports]
    for process in processes:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_two_processes_share_one_limit_through_redis(two_processes_on_redis):
    first, second = two_processes_on_redis
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    user = requests.post(f"{first}/admin/users", json={"name": "R", "email": "r@example.com"},
                         headers=admin).json()
    key = requests.post(f"{first}/admin/keys", json={"user_id": user["id"], "name": "k"},
                        headers=admin).json()["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    codes = [requests.get(f"{base}/v1/llm/models", headers=headers).status_code
             for base in [first, second] * 6]
    # Per-process limits would admit 5 + 5; shared storage admits 5 in all.
    assert codes.count(200) == 5 and codes.count(429) == 7, codes
