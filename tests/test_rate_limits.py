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


@pytest.fixture
def redis_limited(app_factory, admin_headers):
    """A client of an app whose limiter counts in a flushed Redis database; that database; one account."""
    import redis

    url = redis_url()
    storage = redis.Redis.from_url(url)
    storage.flushdb()

    def build(**overrides):
        client = app_factory(RATELIMIT_STORAGE_URI=url, **overrides).test_client()
        return client, create_account(client, admin_headers)

    yield storage, build
    storage.flushdb()


def _counters(storage) -> dict[str, int]:
    """Every limiter counter in the Redis database, by the part of its key that names the bucket."""
    return {key.decode().split("/")[2]: int(storage.get(key)) for key in storage.keys("LIMITS:LIMITER/*")}


def _storage_commands(monkeypatch) -> list:
    """The commands the limiter's Redis client sends from now on (one round trip each)."""
    from gateway.extensions import limiter

    sent = []
    client = limiter.storage.storage
    send = client.execute_command

    def counted(*args, **options):
        sent.append(args[0])
        return send(*args, **options)

    monkeypatch.setattr(client, "execute_command", counted)
    return sent


def test_on_redis_a_completion_counts_both_limits_in_one_round_trip(redis_limited, monkeypatch):
    storage, build = redis_limited
    client, account = build(RATE_LIMIT_MAX=4, IP_RATE_LIMIT_MAX=100)
    elsewhere = {"REMOTE_ADDR": "192.0.2.7"}
    first = client.post("/v1/chat/completions", json=HELLO, headers=account.headers, environ_base=elsewhere)
    assert first.status_code == 200  # this process verifies the key: two hits, as Flask-Limiter makes them
    sent = _storage_commands(monkeypatch)
    rounds, remaining = [], []
    for _ in range(4):
        sent.clear()
        response = client.post("/v1/chat/completions", json=HELLO, headers=account.headers, environ_base=elsewhere)
        rounds.append((response.status_code, list(sent)))
        remaining.append(response.headers["X-RateLimit-Remaining"])
    assert rounds == [(200, ["EVALSHA"])] * 3 + [(429, ["EVALSHA"])]
    assert remaining == ["2", "1", "0", "0"]
    assert _counters(storage) == {"127.0.0.1": 2, "192.0.2.7": 5, f"user:{account.user_id}": 5}


def _mixed_traffic(client, account, monkeypatch) -> list[int]:
    """Admitted, refused by the per-user limit, refused by the per-IP limit, and failed between the two."""
    import gateway.blueprints.caller as caller
    from gateway.errors import ServiceUnavailable

    def post(address: str) -> int:
        return client.post("/v1/chat/completions", json=HELLO, headers=account.headers,
                           environ_base={"REMOTE_ADDR": address}).status_code

    codes = [post("192.0.2.1") for _ in range(2)]
    with monkeypatch.context() as patch:  # the request fails after its per-IP hit, before its per-user one
        patch.setattr(caller, "authenticate", lambda *args, **kwargs: (_ for _ in ()).throw(
            ServiceUnavailable("injected", code="injected")))
        codes += [post("192.0.2.1")]
    codes += [post("192.0.2.2") for _ in range(3)] + [post("192.0.2.1") for _ in range(3)]
    return codes


@pytest.mark.parametrize("count_ahead", [False, True], ids=["hit-by-hit", "counted-ahead"])
def test_counting_ahead_leaves_every_counter_as_hit_by_hit_counting_does(redis_limited, monkeypatch, count_ahead):
    """A refused per-IP hit counts no per-user hit; a request that fails between the two gets its per-user
    hit given back; the counters and the answers are those of one round trip per hit."""
    from gateway.extensions import limiter

    storage, build = redis_limited
    client, account = build(RATE_LIMIT_MAX=5, IP_RATE_LIMIT_MAX=4)
    if not count_ahead:
        monkeypatch.setattr(limiter._limiter, "follow_ups", None)
    codes = _mixed_traffic(client, account, monkeypatch)
    assert codes == [200, 200, 503, 200, 200, 200, 429, 429, 429]
    assert _counters(storage) == {"127.0.0.1": 2, "192.0.2.1": 6, "192.0.2.2": 3, f"user:{account.user_id}": 6}


def test_parallel_completions_on_redis_admit_exactly_the_per_user_limit(redis_limited, live_server_factory):
    """Forty completions at once over real HTTP, each thread counting both limits in one script: exactly the
    limit admitted, and every counter holds every hit."""
    from concurrent.futures import ThreadPoolExecutor

    storage, build = redis_limited
    client, account = build(RATE_LIMIT_MAX=10, IP_RATE_LIMIT_MAX=1000)
    server = live_server_factory(client.application)
    post = lambda _: requests.post(f"{server.url}/v1/chat/completions", json=HELLO,  # noqa: E731
                                   headers=account.headers, timeout=60).status_code
    assert post(0) == 200  # the key verified: from here on, one script per completion
    with ThreadPoolExecutor(max_workers=40) as pool:
        codes = list(pool.map(post, range(40)))
    assert (codes.count(200), codes.count(429)) == (9, 31), codes
    assert _counters(storage) == {"127.0.0.1": 2 + 41, f"user:{account.user_id}": 41}


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
    # Completions count both limits in one script once a process has verified the key: the same sharing.
    user = requests.post(f"{first}/admin/users", json={"name": "C", "email": "c@example.com"},
                         headers=admin).json()
    key = requests.post(f"{first}/admin/keys", json={"user_id": user["id"], "name": "k"},
                        headers=admin).json()["api_key"]
    codes = [requests.post(f"{base}/v1/chat/completions", json=HELLO, headers={"Authorization": f"Bearer {key}"})
             .status_code for base in [first, second] * 6]
    assert codes == [200] * 5 + [429] * 7, codes
