"""deploy/nginx.conf in front of real gunicorn (TRUSTED_PROXY_COUNT=1): per-IP limits follow the real
client address whatever X-Forwarded-For a client sends, and SSE passes through unbuffered."""

from __future__ import annotations

import json

import pytest

from tests.deploy_support import gateway_env, gunicorn, nginx, prepare_database, session_from, sse_events, usage_rows
from tests.fake_upstream import Behavior

IP_LIMIT = 3
CHUNK_DELAY_S = 0.3
CHUNKS = ["one ", "two ", "three ", "four ", "five ", "six"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, fake_upstream):
    """nginx -> gunicorn -> SQLite, with an account; torn down whatever happens."""
    fake_upstream.reset()
    workdir = tmp_path_factory.mktemp("nginx")
    db_path = workdir / "gateway.db"
    account = prepare_database(db_path, fake_upstream)
    env = gateway_env(db_path, fake_upstream, TRUSTED_PROXY_COUNT=1, IP_RATE_LIMIT_MAX=IP_LIMIT)
    with gunicorn(env, workdir / "gunicorn.out") as app_server, nginx(app_server.port, workdir) as proxy:
        yield proxy, app_server, account, db_path
    fake_upstream.reset()


def test_per_ip_limit_follows_the_real_client_not_a_forged_header(stack):
    proxy, app_server, account, _ = stack
    client = session_from("127.0.0.1")
    forged = [None, "1.2.3.4", "5.6.7.8"]
    for header in forged:
        headers = {**account.headers, **({"X-Forwarded-For": header} if header else {})}
        assert client.get(proxy.url + "/v1/llm/models", headers=headers, timeout=5).status_code == 200

    refused = client.get(proxy.url + "/v1/llm/models", timeout=5,
                         headers={**account.headers, "X-Forwarded-For": "9.9.9.9"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "ip_rate_limit"

    other_client = session_from("127.0.0.2")
    assert other_client.get(proxy.url + "/v1/llm/models", headers=account.headers, timeout=5).status_code == 200
    # Control: the gateway does trust the last X-Forwarded-For hop, so only nginx appending the real
    # address kept the forged ones above in the 127.0.0.1 bucket.
    direct = client.get(app_server.url + "/v1/llm/models", timeout=5,
                        headers={**account.headers, "X-Forwarded-For": "1.2.3.4"})
    assert direct.status_code == 200


def test_audit_log_records_the_real_client_address(stack, fake_upstream):
    proxy, _, account, db_path = stack
    response = session_from("127.0.0.4").post(
        proxy.url + "/v1/llm/complete", timeout=10,
        headers={**account.headers, "X-Forwarded-For": "1.2.3.4"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.text
    row = next(r for r in usage_rows(db_path) if r["request_id"] == response.json()["id"])
    assert row["client_ip"] == "127.0.0.4"


def test_stream_arrives_event_by_event(stack, fake_upstream):
    proxy, _, account, _ = stack
    fake_upstream.enqueue(Behavior(chunks=CHUNKS, chunk_delay_s=CHUNK_DELAY_S))
    with session_from("127.0.0.3").post(
            proxy.url + "/v1/llm/complete", headers=account.headers, stream=True, timeout=10,
            json={"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "count"}]},
    ) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = list(sse_events(response))

    deltas = [(at, json.loads(data)["content"]) for at, name, data in events if name == "delta"]
    done_at = next(at for at, name, _ in events if name == "done")
    assert [text for _, text in deltas] == CHUNKS
    # Buffered, every event would arrive together at the end; unbuffered they are ~0.3 s apart.
    assert done_at - deltas[0][0] >= CHUNK_DELAY_S * (len(CHUNKS) - 1) * 0.6


def test_nginx_refuses_bodies_over_max_request_bytes_with_the_envelope(stack):
    proxy, _, account, _ = stack
    response = session_from("127.0.0.5").post(
        proxy.url + "/v1/llm/complete", headers={**account.headers, "Content-Type": "application/json"},
        data=b"x" * (1024 * 1024 + 1), timeout=10)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
