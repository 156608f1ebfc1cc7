"""Bad input on every door: the three completion endpoints and the admin API. Each gets a clear 4xx in the
one envelope, and nothing is stored (no audit row, no user, no key), nothing is sent upstream."""

from __future__ import annotations

import json
import socket

import pytest
from sqlalchemy import func, select

from gateway.extensions import db
from gateway.models import ApiKey, UsageRecord, User
from tests.conftest import ADMIN_TOKEN, create_account

LIMIT = 4096
HELLO = [{"role": "user", "content": "hi"}]
ENDPOINTS = {
    "native": ("/v1/llm/complete", {"model": "gpt-4o-mini", "messages": HELLO}),
    "openai": ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": HELLO}),
    "anthropic": ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": HELLO}),
}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def app(app_factory):
    return app_factory(MAX_REQUEST_BYTES=LIMIT, AUTH_FAILURE_LIMIT=1000)


def counts(app) -> tuple[int, int, int]:
    """(audit rows, users, keys)."""
    with app.app_context():
        return tuple(db.session.execute(select(func.count()).select_from(model)).scalar_one()
                     for model in (UsageRecord, User, ApiKey))


def refused(response, status=400, code=None, param=None) -> dict:
    """A 4xx in the endpoint's envelope, echoing the request id. /v1/messages answers in Anthropic's
    envelope, which has no code or param: there the message starts with the field's name."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    error = body["error"]
    assert error["type"] in ("invalid_request_error", "request_too_large")
    if body.get("type") == "error":
        assert set(body) == {"type", "error", "request_id"} and body["request_id"] == response.headers["X-Request-ID"]
        named = error["message"].split(":", 1)[0] if ":" in error["message"] else None
        if param is not None:
            assert param in error["message"], error
        return {**error, "param": named}
    assert error["message"] and error["request_id"] == response.headers["X-Request-ID"]
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


def with_fields(endpoint: str, **changes) -> dict:
    path, body = ENDPOINTS[endpoint]
    merged = {**body, **changes}
    return {name: value for name, value in merged.items() if value is not ...}


# --- the completion endpoints ---------------------------------------------------------------------------

RAW_BODIES = {
    "truncated": ('{"model": "gpt-4o-mini", "messages": [', "invalid_json"),
    "not-an-object": ("[1, 2, 3]", "invalid_json"),
    "empty": ("", "invalid_json"),
    "not-utf8": (b'{"model": "\xff\xfe"}', "invalid_json"),
    "nested-too-deep": ("[" * 2000 + "]" * 2000, "invalid_json"),  # under the size limit, past the parser's depth
    "nan": ('{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
            "invalid_json"),
    "infinity": ('{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "top_p": Infinity}',
                 "invalid_json"),
    "nan-in-an-ignored-field": ('{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], '
                                '"x_extra": -Infinity}', "invalid_json"),
    "overflowing-number": ('{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], '
                           '"temperature": 1e400}', "invalid_json"),
    "lone-surrogate-content": ('{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
                               "invalid_field"),
    "nul-content": ('{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a\\u0000b"}]}',
                    "invalid_field"),
}


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("case", sorted(RAW_BODIES))
def test_unparseable_or_unstorable_bodies(app, client, account, fake_upstream, endpoint, case):
    raw, code = RAW_BODIES[case]
    if endpoint == "anthropic" and isinstance(raw, str) and raw.startswith('{"model"'):
        raw = raw.replace('"messages"', '"max_tokens": 50, "messages"', 1)
    response = client.post(ENDPOINTS[endpoint][0], data=raw, headers={**account.headers, **JSON})
    refused(response, code=code)
    assert counts(app)[0] == 0 and fake_upstream.hits == 0


def test_wrong_content_type(app, client, account):
    for path, body in ENDPOINTS.values():
        response = client.post(path, data=json.dumps(body), headers={**account.headers, "Content-Type": "text/plain"})
        refused(response, code="unsupported_content_type", param="Content-Type")
    assert counts(app)[0] == 0


FIELD_CASES = {
    "messages-a-string": ({"messages": "hello"}, "messages"),
    "messages-empty": ({"messages": []}, "messages"),
    "messages-missing": ({"messages": ...}, "messages"),
    "messages-null": ({"messages": None}, "messages"),
    "message-not-an-object": ({"messages": ["hi"]}, "messages.0"),
    "unknown-role": ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
    "content-a-number": ({"messages": [{"role": "user", "content": 42}]}, "messages.0.content"),
    "content-missing": ({"messages": [{"role": "user"}]}, "messages.0.content"),
    "max-tokens-a-string": ({"max_tokens": "10"}, "max_tokens"),
    "max-tokens-a-float": ({"max_tokens": 10.5}, "max_tokens"),
    "max-tokens-huge": ({"max_tokens": 10**12}, "max_tokens"),
    "max-tokens-beyond-int64": ({"max_tokens": 10**30}, "max_tokens"),
    "max-tokens-zero": ({"max_tokens": 0}, "max_tokens"),
    "max-tokens-negative": ({"max_tokens": -1}, "max_tokens"),
    "temperature-a-string": ({"temperature": "hot"}, "temperature"),
    "temperature-negative": ({"temperature": -0.5}, "temperature"),
    "top-p-negative": ({"top_p": -1}, "top_p"),
    "stream-a-string": ({"stream": "yes"}, "stream"),
    "model-a-number": ({"model": 7}, "model"),
    "model-overlong": ({"model": "g" * 101}, "model"),
    "model-unknown-sql": ({"model": "gpt-4o'; DROP TABLE users; --"}, "model"),
}


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("case", sorted(FIELD_CASES))
def test_invalid_fields_name_the_field(app, client, account, fake_upstream, endpoint, case):
    changes, param = FIELD_CASES[case]
    if endpoint == "native" and case == "model-a-number":
        param = "model"
    response = client.post(ENDPOINTS[endpoint][0], json=with_fields(endpoint, **changes), headers=account.headers)
    error = refused(response)
    assert error["param"] == param or (error["param"] or "").startswith(param) or \
        (endpoint == "anthropic" and param in error["message"]), error
    assert counts(app)[0] == 0 and fake_upstream.hits == 0
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(User)).scalar_one() == 1  # tables intact


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("text", ["\x00", "\ud800", "a\udfffb"], ids=["nul", "lone-high", "lone-low"])
def test_unicode_that_no_upstream_accepts(app, client, account, fake_upstream, endpoint, text):
    """NUL and lone surrogates (sent as JSON escapes) in content, stop sequences, model and system."""
    path, _ = ENDPOINTS[endpoint]
    stop_field = "stop_sequences" if endpoint == "anthropic" else "stop"
    variants = [{"messages": [{"role": "user", "content": f"hi{text}"}]}, {stop_field: [f"x{text}"]},
                {"model": f"gpt-4o-mini{text}"}]
    if endpoint == "anthropic":
        variants.append({"system": f"be brief{text}"})
    for changes in variants:
        raw = json.dumps(with_fields(endpoint, **changes))  # ensure_ascii: \u0000, \ud800 escapes
        refused(client.post(path, data=raw, headers={**account.headers, **JSON}))
    assert counts(app)[0] == 0 and fake_upstream.hits == 0


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_body_over_the_limit_is_413(app, client, account, fake_upstream, endpoint):
    big = with_fields(endpoint, messages=[{"role": "user", "content": "x" * LIMIT}])
    response = client.post(ENDPOINTS[endpoint][0], json=big, headers=account.headers)
    error = refused(response, status=413)
    assert error["type"] == "request_too_large" and str(LIMIT) in error["message"]
    assert counts(app)[0] == 0 and fake_upstream.hits == 0


def test_valid_unicode_is_fine(client, account, fake_upstream):
    """The refusals above are about NUL and broken surrogates, not about non-ASCII text."""
    body = with_fields("native", messages=[{"role": "user", "content": "héllo 世界 🙂 \u202e"}])
    assert client.post("/v1/llm/complete", json=body, headers=account.headers).status_code == 200


# --- the admin API ---------------------------------------------------------------------------------------

ADMIN_CASES = {
    "user-invalid-json": ("/admin/users", '{"name": "A", ', "invalid_json", None),
    "user-nan": ("/admin/users", '{"name": "A", "email": "a@example.com", "x": NaN}', "invalid_json", None),
    "user-name-a-number": ("/admin/users", {"name": 5, "email": "n@example.com"}, None, "name"),
    "user-name-missing": ("/admin/users", {"email": "m@example.com"}, None, "name"),
    "user-name-overlong": ("/admin/users", {"name": "N" * 201, "email": "o@example.com"}, None, "name"),
    "user-name-blank": ("/admin/users", {"name": "   ", "email": "b@example.com"}, None, "name"),
    "user-name-nul": ("/admin/users", {"name": "A\x00B", "email": "nul@example.com"}, None, "name"),
    "user-name-lone-surrogate": ("/admin/users", {"name": "A\ud800", "email": "s@example.com"}, None, "name"),
    "user-email-overlong": ("/admin/users", {"name": "A", "email": "e" * 250 + "@example.com"}, None, "email"),
    "user-email-invalid": ("/admin/users", {"name": "A", "email": "not an email"}, None, "email"),
    "user-email-lone-surrogate": ("/admin/users", {"name": "A", "email": "a@exa\udc00mple.com"}, None, "email"),
    "user-unknown-field": ("/admin/users", {"name": "A", "email": "u@example.com", "admin": True}, None, "admin"),
    "key-user-id-a-string": ("/admin/keys", {"user_id": "1", "name": "k"}, None, "user_id"),
    "key-user-id-negative": ("/admin/keys", {"user_id": -1, "name": "k"}, None, "user_id"),
    "key-user-id-huge": ("/admin/keys", {"user_id": 2**63, "name": "k"}, None, "user_id"),
    "key-name-nul": ("/admin/keys", {"user_id": 1, "name": "k\x00"}, None, "name"),
    "key-name-overlong": ("/admin/keys", {"user_id": 1, "name": "k" * 201}, None, "name"),
    "key-expiry-not-a-date": ("/admin/keys", {"user_id": 1, "name": "k", "expires_at": "soon"}, None, "expires_at"),
    "key-expiry-past-year-9999": ("/admin/keys", {"user_id": 1, "name": "k",
                                                  "expires_at": "9999-12-31T23:59:59-01:00"}, None, "expires_at"),
    "limits-negative": ("/admin/limits", {"user_id": 1, "daily_requests": -1}, None, "daily_requests"),
    "limits-a-string": ("/admin/limits", {"user_id": 1, "daily_tokens": "100"}, None, "daily_tokens"),
    "limits-beyond-int64": ("/admin/limits", {"user_id": 1, "daily_tokens": 2**63}, None, "daily_tokens"),
    "limits-money-negative": ("/admin/limits", {"user_id": 1, "monthly_spend_cap_usd": -5}, None,
                              "monthly_spend_cap_usd"),
    "limits-money-infinity-string": ("/admin/limits", {"user_id": 1, "monthly_spend_cap_usd": "Infinity"}, None,
                                     "monthly_spend_cap_usd"),
    "limits-money-nan-raw": ("/admin/limits", '{"user_id": 1, "monthly_spend_cap_usd": NaN}', "invalid_json", None),
    "limits-money-too-precise": ("/admin/limits", {"user_id": 1, "monthly_spend_cap_usd": "1.0000001"}, None,
                                 "monthly_spend_cap_usd"),
}


@pytest.mark.parametrize("case", sorted(ADMIN_CASES))
def test_admin_bodies(app, client, admin_headers, account, case):
    path, body, code, param = ADMIN_CASES[case]
    before = counts(app)
    with app.app_context():
        limits_before = db.session.get(User, account.user_id).daily_requests
    if isinstance(body, str):
        response = client.post(path, data=body, headers={**admin_headers, **JSON})
    else:
        response = client.post(path, data=json.dumps(body), headers={**admin_headers, **JSON})
    error = refused(response, code=code)
    if param is not None:
        assert error["param"] == param, error
    assert counts(app) == before  # no user, no key, no audit row
    with app.app_context():
        assert db.session.get(User, account.user_id).daily_requests == limits_before


def test_admin_body_over_the_limit_is_413(app, client, admin_headers):
    before = counts(app)
    response = client.post("/admin/users", json={"name": "A" * LIMIT, "email": "big@example.com"},
                           headers=admin_headers)
    refused(response, status=413)
    assert counts(app) == before


SQL_URLS = [
    ("GET", "/admin/users/1%20OR%201=1", 404),
    ("GET", "/admin/users/1;DROP%20TABLE%20users", 404),
    ("GET", "/admin/users/'%20OR%20''='", 404),
    ("POST", "/admin/users/1%20OR%201=1/suspend", 404),
    ("DELETE", "/admin/keys/1%20OR%201=1", 404),
    ("GET", "/admin/limits/1)%3B--", 404),
    ("GET", "/admin/users?status=active'%20OR%20'1'='1", 400),
    ("GET", "/admin/users?cursor='%20OR%201=1--", 400),
    ("GET", "/admin/users?limit=1%20UNION%20SELECT%201", 400),
    ("GET", "/admin/keys?user_id=1%20OR%201=1", 400),
    ("GET", "/admin/usage?from=2024-01-01'--", 400),
    ("GET", "/admin/usage?group_by=model;DROP%20TABLE%20usage_records", 400),
    ("GET", "/admin/usage/records?status=ok'%20OR%201=1--", 400),
    ("GET", "/admin/usage/records?user_id=1%20OR%201=1", 400),
    ("GET", "/admin/users?surprise=1%27--", 400),
]


@pytest.mark.parametrize("method, url, status", SQL_URLS)
def test_sql_looking_path_and_query_params(app, client, admin_headers, account, method, url, status):
    before = counts(app)
    response = client.open(url, method=method, headers=admin_headers)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["type"] in ("not_found_error", "invalid_request_error")
    assert counts(app) == before
    with app.app_context():
        user = db.session.get(User, account.user_id)
        assert user.status == "active" and db.session.get(ApiKey, account.key_id).revoked_at is None


def test_sql_looking_names_are_stored_as_plain_data(app, client, admin_headers):
    name = "Robert'); DROP TABLE users; --"
    response = client.post("/admin/users", json={"name": name, "email": "bobby@example.com"}, headers=admin_headers)
    assert response.status_code == 201 and response.get_json()["name"] == name
    listed = client.get("/admin/users", headers=admin_headers).get_json()["data"]
    assert [u["name"] for u in listed] == [name]


# --- X-Request-ID injection ------------------------------------------------------------------------------

@pytest.mark.parametrize("supplied", ["abc\n", "abc\r\nSet-Cookie: x=1", "ok-1\r", " abc", "a" * 65, "abc def"])
def test_malformed_request_ids_are_replaced_never_echoed(app, client, account, supplied):
    """Anything but 1-64 of [A-Za-z0-9._:-] is replaced by a fresh id: never echoed, never stored."""
    response = client.post("/v1/llm/complete", json=with_fields("native", model="mock-1"), headers=account.headers,
                           environ_overrides={"HTTP_X_REQUEST_ID": supplied})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["X-Request-ID"].startswith("req_")
    assert "Set-Cookie" not in response.headers
    with app.app_context():
        stored = db.session.execute(select(UsageRecord.request_id)).scalar_one()
    assert stored == response.headers["X-Request-ID"]


def test_crlf_in_request_id_over_a_real_socket(app, live_server_factory):
    """On the wire a CR/LF ends the header: the rest is another header, never part of our response."""
    server = live_server_factory(app)
    host, port = server.url.removeprefix("http://").split(":")
    request = ("GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: abc\r\nX-Injected: yes\r\n"
               "Connection: close\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head = reply.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 200")
    assert "\r\nX-Request-ID: abc\r\n" in head and "X-Injected" not in head


def test_admin_token_required_before_any_parsing(app, client):
    """Bad input without credentials is a 401, not a parse error: no oracle for the unauthenticated."""
    response = client.post("/admin/users", data="{broken", headers=JSON)
    assert response.status_code == 401
    response = client.post("/v1/llm/complete", data="{broken", headers={**JSON,
                                                                        "Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 401
    assert counts(app) == (0, 0, 0)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_every_refusal_leaves_the_account_usable(app, client, account, endpoint):
    for case in ("messages-empty", "unknown-role", "max-tokens-negative"):
        client.post(ENDPOINTS[endpoint][0], json=with_fields(endpoint, **FIELD_CASES[case][0]),
                    headers=account.headers)
    assert client.post(ENDPOINTS[endpoint][0], json=with_fields(endpoint), headers=account.headers).status_code == 200
    assert counts(app)[0] == 1


def test_create_account_helper_still_works(client, admin_headers):
    assert create_account(client, admin_headers, email="helper@example.com").api_key.startswith("dom_")
