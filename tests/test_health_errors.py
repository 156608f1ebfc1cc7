"""Health never calls an LLM; every error is the one envelope, including routing and body errors."""

import socket

from tests.conftest import base_config


def test_health_is_ok_without_database(fake_upstream):
    from gateway.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(base_config(f"postgresql://nobody@127.0.0.1:{port}/none"))
    client = app.test_client()
    assert client.get("/health").get_json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["status"] == "unavailable" and body["checks"]["database"]["status"] == "failed"


def test_ready_when_database_answers(client, fake_upstream):
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["limiter_storage"] == {"status": "ok", "backend": "memory"}
    assert fake_upstream.requests == []


def test_routing_404_and_405_use_the_envelope(client):
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["type"] == "not_found_error"
    wrong_method = client.get("/v1/llm/complete")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"]["type"] == "invalid_request_error"
    assert "POST" in wrong_method.headers["Allow"]


def test_body_errors(client, account):
    headers = account.headers
    not_json = client.post("/v1/llm/complete", data="hello", headers={**headers, "Content-Type": "text/plain"})
    assert not_json.status_code == 400 and not_json.get_json()["error"]["param"] == "Content-Type"
    broken = client.post("/v1/llm/complete", data="{oops", headers={**headers, "Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.get_json()["error"]["code"] == "invalid_json"
    array = client.post("/v1/llm/complete", json=[1, 2], headers=headers)
    assert array.status_code == 400 and "JSON object" in array.get_json()["error"]["message"]


def test_oversized_body_is_413(app_factory, admin_headers):
    from tests.conftest import create_account

    client = app_factory(MAX_REQUEST_BYTES=2048).test_client()
    account = create_account(client, admin_headers)
    big = {"messages": [{"role": "user", "content": "x" * 5000}]}
    response = client.post("/v1/llm/complete", json=big, headers=account.headers)
    assert response.status_code == 413
    assert response.get_json()["error"]["type"] == "request_too_large"


def test_request_id_echoed_or_replaced(client):
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    replaced = client.get("/health", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert replaced.startswith("req_")


def test_security_headers_and_no_cors(client):
    response = client.get("/health", headers={"Origin": "https://evil.example"})
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_views_and_hooks_are_asked_once_whether_async_and_async_ones_still_run_through_flask(app, monkeypatch):
    """GatewayFlask remembers ensure_sync's answer per function: a sync view is returned as it is, without
    asking inspect again, and an async one still goes through Flask's async_to_sync."""
    import inspect

    asked = []
    real = inspect.iscoroutinefunction
    monkeypatch.setattr(inspect, "iscoroutinefunction", lambda func: asked.append(func) or real(func))

    def sync_view():
        return "sync"

    async def async_view():
        return "async"

    assert app.ensure_sync(sync_view) is sync_view
    assert app.ensure_sync(sync_view) is sync_view
    assert asked == [sync_view]
    wrapped = []
    monkeypatch.setattr(app, "async_to_sync", lambda func: wrapped.append(func) or (lambda: "ran"))
    assert app.ensure_sync(async_view)() == "ran"
    assert wrapped == [async_view]
