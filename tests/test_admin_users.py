"""Admin API users: the token guard, create, list with pagination, show, suspend/activate."""

import pytest
from sqlalchemy import select

from gateway.extensions import db
from gateway.models import User
from tests.conftest import create_account


def new_user(client, headers, name="Ada", email="ada@example.com"):
    return client.post("/admin/users", json={"name": name, "email": email}, headers=headers)


def assert_error(response, status, error_type, param=None):
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["type"] == error_type
    assert error["request_id"] == response.headers["X-Request-ID"]
    if param is not None:
        assert error["param"] == param
    if param is not None and status == 400:
        assert param in error["message"]
    return error


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}])
def test_wrong_or_missing_token_is_401(client, headers):
    error = assert_error(client.get("/admin/users", headers=headers), 401, "authentication_error")
    assert error["code"] == "invalid_admin_token"


def test_unset_admin_token_is_503(app_factory, admin_headers):
    client = app_factory(ADMIN_TOKEN="").test_client()
    error = assert_error(client.get("/admin/users", headers=admin_headers), 503, "service_unavailable")
    assert error["code"] == "admin_disabled" and "ADMIN_TOKEN" in error["message"]


def test_create_user_returns_201_with_default_limits(client, admin_headers):
    response = new_user(client, admin_headers, email="  Ada@Example.COM ")
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"] == 1 and body["name"] == "Ada" and body["email"] == "ada@example.com"
    assert body["status"] == "active"
    assert body["limits"] == {"daily_requests": 1000, "daily_tokens": 100000, "monthly_spend_cap_usd": 50.0,
                              "rate_limit_max": 60, "max_concurrent_requests": 0, "overrides": []}
    assert body["created_at"].endswith("Z") and body["created_at"][:4].isdigit()


def test_duplicate_email_any_case_is_409(app, client, admin_headers):
    assert new_user(client, admin_headers).status_code == 201
    error = assert_error(new_user(client, admin_headers, email="ADA@example.com"), 409, "conflict_error", "email")
    assert error["code"] == "email_taken"
    with app.app_context():
        assert db.session.execute(select(User.email)).scalars().all() == ["ada@example.com"]


@pytest.mark.parametrize("body, param", [
    ({"email": "a@example.com"}, "name"),
    ({"name": "Ada"}, "email"),
    ({"name": "", "email": "a@example.com"}, "name"),
    ({"name": "   ", "email": "a@example.com"}, "name"),
    ({"name": "x" * 201, "email": "a@example.com"}, "name"),
    ({"name": 7, "email": "a@example.com"}, "name"),
    ({"name": "Ada", "email": "not-an-email"}, "email"),
    ({"name": "Ada", "email": "a" * 245 + "@example.com"}, "email"),
    ({"name": "Ada", "email": "a@example.com", "role": "admin"}, "role"),
])
def test_invalid_user_fields_are_400_naming_them(client, admin_headers, body, param):
    assert_error(client.post("/admin/users", json=body, headers=admin_headers), 400, "invalid_request_error", param)


def test_non_json_body_is_400(client, admin_headers):
    response = client.post("/admin/users", data="name=Ada", headers=admin_headers)
    assert_error(response, 400, "invalid_request_error")


def test_list_paginates_by_opaque_cursor(client, admin_headers):
    for i in range(5):
        assert new_user(client, admin_headers, name=f"U{i}", email=f"u{i}@example.com").status_code == 201
    first = client.get("/admin/users?limit=2", headers=admin_headers).get_json()
    assert [u["email"] for u in first["data"]] == ["u0@example.com", "u1@example.com"]
    assert first["next_cursor"] and "2" != first["next_cursor"]
    second = client.get(f"/admin/users?limit=2&cursor={first['next_cursor']}", headers=admin_headers).get_json()
    assert [u["email"] for u in second["data"]] == ["u2@example.com", "u3@example.com"]
    third = client.get(f"/admin/users?limit=2&cursor={second['next_cursor']}", headers=admin_headers).get_json()
    assert [u["email"] for u in third["data"]] == ["u4@example.com"] and third["next_cursor"] is None


def test_list_default_limit_is_50(client, admin_headers):
    for i in range(51):
        new_user(client, admin_headers, email=f"u{i}@example.com")
    body = client.get("/admin/users", headers=admin_headers).get_json()
    assert len(body["data"]) == 50 and body["next_cursor"] is not None


def test_list_filters_by_status(client, admin_headers):
    new_user(client, admin_headers, email="a@example.com")
    new_user(client, admin_headers, email="b@example.com")
    client.post("/admin/users/2/suspend", headers=admin_headers)
    suspended = client.get("/admin/users?status=suspended", headers=admin_headers).get_json()["data"]
    active = client.get("/admin/users?status=active", headers=admin_headers).get_json()["data"]
    assert [u["id"] for u in suspended] == [2] and [u["id"] for u in active] == [1]


@pytest.mark.parametrize("query, param", [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=abc", "limit"),
    ("status=deleted", "status"), ("cursor=garbage", "cursor"), ("colour=red", "colour"),
])
def test_invalid_list_query_is_400(client, admin_headers, query, param):
    assert_error(client.get(f"/admin/users?{query}", headers=admin_headers), 400, "invalid_request_error", param)


def test_show_user_lists_keys_without_secrets(client, admin_headers):
    account = create_account(client, admin_headers)
    body = client.get(f"/admin/users/{account.user_id}", headers=admin_headers).get_json()
    assert body["email"] == "ada@example.com" and len(body["keys"]) == 1
    key = body["keys"][0]
    assert key["id"] == account.key_id and key["name"] == "test" and key["status"] == "active"
    assert key["prefix"] == "dom_" + account.api_key.split("_")[1]
    assert set(key) >= {"created_at", "last_used_at", "expires_at", "revoked_at"}
    secret = account.api_key.split("_", 2)[2]
    assert secret not in str(body) and "hash" not in str(body)


@pytest.mark.parametrize("path", ["/admin/users/999", "/admin/users/abc", "/admin/users/0",
                                  "/admin/users/99999999999999999999", "/admin/users/999/suspend",
                                  "/admin/users/xyz/activate"])
def test_unknown_user_is_404(client, admin_headers, path):
    method = client.post if path.endswith(("suspend", "activate")) else client.get
    assert_error(method(path, headers=admin_headers), 404, "not_found_error")


def test_suspend_and_activate_are_idempotent(client, admin_headers):
    user_id = new_user(client, admin_headers).get_json()["id"]
    for _ in range(2):
        response = client.post(f"/admin/users/{user_id}/suspend", headers=admin_headers)
        assert response.status_code == 200 and response.get_json()["status"] == "suspended"
    assert client.get(f"/admin/users/{user_id}", headers=admin_headers).get_json()["status"] == "suspended"
    for _ in range(2):
        response = client.post(f"/admin/users/{user_id}/activate", headers=admin_headers)
        assert response.status_code == 200 and response.get_json()["status"] == "active"
