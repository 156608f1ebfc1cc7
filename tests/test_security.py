"""Security: constant-time admin tokens with per-IP throttling, no secrets or prompt text in logs, errors,
metrics or the database, revocation and suspension seen at once by another process, no CORS, and the
response headers a JSON API should send."""

from __future__ import annotations

import json
import logging
import os
import signal

import pytest
import requests
from sqlalchemy import event, text

import gateway.services.auth as auth_service
from gateway.extensions import db
from gateway.logs import JsonFormatter
from gateway.request_context import SECURITY_HEADERS
from tests.deploy_support import start_gunicorn
from tests.conftest import ADMIN_TOKEN, base_config, create_account, make_app
from tests.fake_upstream import Behavior
from tests.upstream_fixtures import closed_port

PROMPT = "ZEBRA-CROSSING-7731 the vault combination is 12-34-56"
PROVIDER_KEYS = ("sk-test-openai-key", "sk-ant-test-key")


def captured(caplog) -> str:
    """Every log record as the gateway writes it (JSON, with its extra fields and traceback)."""
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)


def database_dump(app) -> dict[str, str]:
    """Every row of every table, as text, per table."""
    with app.app_context():
        return {table: json.dumps([dict(row) for row in db.session.execute(text(f"SELECT * FROM {table}"))
                                   .mappings()], default=str)
                for table in ("users", "api_keys", "usage_records", "usage_counters")}


def secret_part(api_key: str) -> str:
    return api_key.split("_", 2)[2]


# --- the admin token -----------------------------------------------------------------------------------

def test_admin_token_comparison_time_does_not_depend_on_where_a_guess_goes_wrong():
    """A real timing property, with a margin no scheduler noise reaches: for an 8 MiB token, a guess wrong
    in its first byte must take as long as one wrong in its last. A short-circuiting comparison (==,
    or `compare_digest(...) or a == b`) makes the first ~1000x faster; this asserts a ratio under 3."""
    import time

    from gateway.blueprints.credentials import tokens_match

    size = 8 * 1024 * 1024
    expected = "a" * size
    wrong_first, wrong_last = "b" + "a" * (size - 1), "a" * (size - 1) + "b"

    def fastest(guess: str) -> float:
        best = float("inf")
        for _ in range(15):
            started = time.perf_counter()
            assert tokens_match(guess, expected) is False
            best = min(best, time.perf_counter() - started)
        return best

    assert tokens_match(expected, "a" * size) is True
    first, last = fastest(wrong_first), fastest(wrong_last)
    assert last / first < 3, (first, last)


def test_wrong_admin_tokens_are_throttled_per_ip_but_the_right_one_always_works(app_factory):
    client = app_factory(AUTH_FAILURE_LIMIT=3).test_client()
    wrong = {"Authorization": "Bearer guess"}
    right = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert [client.get("/admin/users", headers=wrong).status_code for _ in range(3)] == [401, 401, 401]
    throttled = client.get("/admin/users", headers=wrong)
    error = throttled.get_json()["error"]
    assert throttled.status_code == 429 and error["code"] == "too_many_admin_auth_failures"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    # The operator behind the same address (an office NAT) is never locked out by somebody's guesses;
    # the token is compared first, and guessing gains nothing but 429s.
    assert client.get("/admin/users", headers=right).status_code == 200
    assert client.get("/admin/users", headers=wrong).status_code == 429
    elsewhere = client.get("/admin/users", headers=wrong, environ_base={"REMOTE_ADDR": "192.0.2.44"})
    assert elsewhere.status_code == 401


def test_wrong_keys_cost_no_argon2_and_never_lock_out_a_valid_key(app_factory, admin_headers, monkeypatch):
    client = app_factory(AUTH_FAILURE_LIMIT=2).test_client()
    account = create_account(client, admin_headers)
    verifications = []
    real = auth_service.verify_key
    monkeypatch.setattr(auth_service, "verify_key", lambda h, k: verifications.append(1) or real(h, k))
    forged = {"Authorization": "Bearer " + account.api_key[:-6] + "AAAAAA"}  # known key id, wrong secret
    unknown = {"Authorization": "Bearer dom_zzzzzzzzzzzz_" + "A" * 43}  # a key id that does not exist
    codes = [client.get("/v1/llm/models", headers=forged).status_code for _ in range(4)]
    codes += [client.get("/v1/llm/models", headers=unknown).status_code for _ in range(2)]
    assert codes == [401, 401, 429, 429, 429, 429]
    assert verifications == []  # the stored sha256 check refused the forged secret; unknown ids need nothing
    # The valid key, from the very address (and key id) that is throttled, is verified once and served.
    assert [client.get("/v1/llm/models", headers=account.headers).status_code for _ in range(2)] == [200, 200]
    assert len(verifications) == 1


def test_keys_issued_before_key_checks_are_verified_by_argon2_and_get_their_check(app, client, account):
    from gateway.models import ApiKey
    from gateway.services.key_material import key_check

    with app.app_context():
        db.session.execute(ApiKey.__table__.update().values(key_check=None))
        db.session.commit()
    forged = {"Authorization": "Bearer " + account.api_key[:-6] + "AAAAAA"}
    assert client.get("/v1/llm/models", headers=forged).status_code == 401
    assert client.get("/v1/llm/models", headers=account.headers).status_code == 200
    with app.app_context():
        assert db.session.get(ApiKey, account.key_id).key_check == key_check(account.api_key)


# --- secrets and prompts --------------------------------------------------------------------------------

def exercise(client, account, fake_upstream, admin_headers) -> list:
    """Requests down every path a prompt or key can take: success, stream, upstream errors echoing the
    prompt and keys, quota refusal, forged keys, bad bodies. Streams are read to the end."""
    responses = []

    def post(*args, **kwargs):
        response = client.post(*args, **kwargs)
        response.get_data()
        return response

    messages = [{"role": "user", "content": f"{PROMPT} my key is {account.api_key}"}]
    for path, extra in (("/v1/llm/complete", {}), ("/v1/chat/completions", {}),
                        ("/v1/messages", {"max_tokens": 30})):
        model = "claude-haiku-4-5" if path == "/v1/messages" else "gpt-4o-mini"
        for stream in (False, True):
            responses.append(post(path, headers=account.headers,
                                         json={"model": model, "messages": messages, "stream": stream, **extra}))
    fake_upstream.enqueue(Behavior(status=500, error_message=f"internal error near {PROVIDER_KEYS[0]} and "
                                                             f"{account.api_key}"))
    responses.append(post("/v1/llm/complete", headers=account.headers,
                                 json={"model": "gpt-4o-mini", "messages": messages}))
    responses.append(post("/v1/llm/complete", headers={"Authorization": f"Bearer {account.api_key}x"},
                                 json={"messages": messages}))
    responses.append(post("/v1/llm/complete", headers={"x-api-key": account.api_key[:-3] + "abc"},
                                 json={"messages": messages}))
    responses.append(post("/v1/llm/complete", headers=account.headers,
                                 json={"messages": [{"role": PROMPT, "content": PROMPT}]}))
    responses.append(post("/v1/llm/complete", headers=account.headers,
                                 json={"messages": messages, "temperature": PROMPT}))
    client.post("/admin/limits", json={"user_id": account.user_id, "daily_requests": 0}, headers=admin_headers)
    responses.append(post("/v1/llm/complete", headers=account.headers, json={"messages": messages}))
    return responses


def test_no_key_or_prompt_in_logs_errors_metrics_or_database(app, client, account, fake_upstream, admin_headers,
                                                              caplog):
    caplog.set_level(logging.DEBUG)
    responses = exercise(client, account, fake_upstream, admin_headers)
    assert {r.status_code for r in responses} >= {200, 400, 401, 429, 502}
    secret = secret_part(account.api_key)
    answers = "\n".join(r.get_data(as_text=True) for r in responses if r.status_code >= 400)
    logs = captured(caplog)
    metrics = client.get("/metrics").get_data(as_text=True)
    stored = database_dump(app)
    for where, content in {"error answers": answers, "logs": logs, "metrics": metrics, **stored}.items():
        assert secret not in content, where
        assert "ZEBRA-CROSSING" not in content and "vault combination" not in content, where
        assert not any(key in content for key in PROVIDER_KEYS), where
    assert "gateway_completions" in metrics  # the scrape did see the traffic
    with app.app_context():
        key_hash = db.session.execute(text("SELECT key_hash FROM api_keys")).scalar_one()
    assert key_hash.startswith("$argon2id$") and key_hash in stored["api_keys"]


def test_full_prompt_logging_keeps_text_only_in_the_audit_row_with_keys_masked(app_factory, admin_headers,
                                                                               fake_upstream, caplog):
    caplog.set_level(logging.DEBUG)
    app = app_factory(PROMPT_LOGGING="full")
    client = app.test_client()
    account = create_account(client, admin_headers)
    exercise(client, account, fake_upstream, admin_headers)
    stored = database_dump(app)
    assert PROMPT in stored["usage_records"] and "my key is dom_***" in stored["usage_records"]
    everything_else = [captured(caplog), client.get("/metrics").get_data(as_text=True),
                       stored["users"], stored["api_keys"], stored["usage_counters"]]
    assert not any(PROMPT in content for content in everything_else)
    assert not any(secret_part(account.api_key) in content for content in [*everything_else, *stored.values()])


def test_a_database_error_never_logs_the_statement_parameters(app_factory, admin_headers, caplog):
    """Schema drift (code deployed before its migration) fails every INSERT: the logged error must not carry
    the row's values, which hold the prompt under PROMPT_LOGGING=full."""
    caplog.set_level(logging.DEBUG)
    app = app_factory(PROMPT_LOGGING="full")
    client = app.test_client()
    account = create_account(client, admin_headers)

    def drifted(_conn, _cursor, statement, parameters, _context, _many):
        if "INSERT INTO usage_records (" in statement:  # on PostgreSQL inside the reservation's CTEs
            statement = statement.replace("INSERT INTO usage_records (", "INSERT INTO usage_records (no_such, ", 1)
        return statement, parameters

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", drifted, retval=True)
    response = client.post("/v1/llm/complete", headers=account.headers,
                           json={"model": "mock-1", "messages": [{"role": "user", "content": PROMPT}]})
    # SQLite reports an unknown column as OperationalError (503 database_unavailable), PostgreSQL as
    # ProgrammingError (500 internal_error); either way the failure itself is logged, without the values.
    sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    assert response.status_code == (503 if sqlite else 500)
    assert PROMPT not in response.get_data(as_text=True)
    logs = captured(caplog)
    assert ("database unavailable" if sqlite else "usage_records") in logs
    assert PROMPT not in logs and "ZEBRA" not in logs


# --- revocation and suspension across processes --------------------------------------------------------

@pytest.fixture
def two_gateways(tmp_path, database_url, fake_upstream):
    """Two separate gunicorn processes on one database, each with its own verified-key cache."""
    app = make_app(base_config(database_url, fake_upstream))  # an empty schema
    with app.app_context():
        db.engine.dispose()
    env = {**os.environ, **base_config(database_url, fake_upstream, WEB_CONCURRENCY=1, HOST="127.0.0.1",
                                       KEY_CACHE_TTL_S=3600, DOTENV_PATH=str(tmp_path / "none.env"))}
    ports = [closed_port(), closed_port()]
    processes = []
    try:
        for port in ports:
            processes.append(start_gunicorn(env, port))
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def test_revocation_and_suspension_take_effect_at_once_in_another_process(two_gateways):
    first, second = two_gateways
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    user = requests.post(f"{first}/admin/users", json={"name": "R", "email": "r@example.com"}, headers=admin).json()

    def new_key() -> dict:
        key = requests.post(f"{first}/admin/keys", json={"user_id": user["id"], "name": "k"}, headers=admin).json()
        return {"Authorization": f"Bearer {key['api_key']}", "id": str(key["id"])}

    def call(base, headers):
        return requests.get(f"{base}/v1/llm/quota", headers={"Authorization": headers["Authorization"]}, timeout=10)

    key = new_key()
    assert [call(base, key).status_code for base in (first, second, second)] == [200, 200, 200]  # caches warm
    assert requests.delete(f"{first}/admin/keys/{key['id']}", headers=admin).status_code == 200
    refused = call(second, key)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "key_revoked"

    key = new_key()
    assert [call(base, key).status_code for base in (first, second)] == [200, 200]
    assert requests.post(f"{first}/admin/users/{user['id']}/suspend", headers=admin).status_code == 200
    suspended = call(second, key)
    assert suspended.status_code == 403 and suspended.json()["error"]["code"] == "user_suspended"
    assert requests.post(f"{second}/admin/users/{user['id']}/activate", headers=admin).status_code == 200
    assert call(first, key).status_code == 200


# --- CORS and response headers ---------------------------------------------------------------------------

def every_kind_of_answer(client, account, admin_headers) -> dict:
    """One response of each kind: success, stream, errors of each layer, health, metrics, admin."""
    origin = {"Origin": "https://evil.example"}
    preflight = {**origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    body = {"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]}
    return {
        "completion": client.post("/v1/llm/complete", json=body, headers={**account.headers, **origin}),
        "stream": client.post("/v1/chat/completions", json={**body, "stream": True},
                              headers={**account.headers, **origin}, buffered=True),
        "models": client.get("/v1/models", headers={**account.headers, **origin}),
        "unauthenticated": client.post("/v1/messages", json=body, headers=origin),
        "invalid": client.post("/v1/llm/complete", json={}, headers={**account.headers, **origin}),
        "not-found": client.get("/nope", headers=origin),
        "method": client.put("/v1/llm/complete", headers=origin),
        "admin": client.get("/admin/users", headers={**admin_headers, **origin}),
        "health": client.get("/health", headers=origin),
        "ready": client.get("/health/ready", headers=origin),
        "metrics": client.get("/metrics", headers=origin),
        "preflight-v1": client.options("/v1/chat/completions", headers=preflight),
        "preflight-admin": client.options("/admin/users", headers=preflight),
    }


def test_no_cors_headers_anywhere(client, account, admin_headers):
    """No CORS is configured (there is no setting for it): browsers on other origins get nothing."""
    for kind, response in every_kind_of_answer(client, account, admin_headers).items():
        leaked = [name for name in response.headers.keys() if name.lower().startswith("access-control-")]
        assert leaked == [], (kind, leaked)
        assert "Origin" not in response.headers.get("Vary", ""), kind


def test_security_headers_on_every_answer(client, account, admin_headers):
    expected = {**SECURITY_HEADERS}
    assert expected["X-Content-Type-Options"] == "nosniff" and expected["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in expected["Content-Security-Policy"]
    assert expected["Strict-Transport-Security"].startswith("max-age=")
    assert expected["Cross-Origin-Resource-Policy"] == "same-origin"
    for kind, response in every_kind_of_answer(client, account, admin_headers).items():
        for name, value in expected.items():
            if kind == "stream" and name == "Cache-Control":
                assert response.headers[name] == "no-cache"  # SSE's own, still never stored by proxies
                continue
            assert response.headers.get(name) == value, (kind, name, response.headers.get(name))
        assert response.headers["X-Request-ID"], kind
        assert "X-Powered-By" not in response.headers, kind
