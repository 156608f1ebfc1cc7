"""Admin API keys: issue once, stored only as an argon2id hash, list, expiry, idempotent revocation."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.extensions import db
from gateway.models import ApiKey
from gateway.services.key_material import verify_key
from tests.test_admin_users import assert_error, new_user

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def user_id(client, admin_headers):
    return new_user(client, admin_headers).get_json()["id"]


def new_key(client, headers, user_id, **extra):
    return client.post("/admin/keys", json={"user_id": user_id, "name": "laptop", **extra}, headers=headers)


def test_create_key_shows_it_once_and_stores_only_its_hash(app, client, admin_headers, user_id, real_key_hashing):
    response = new_key(client, admin_headers, user_id)
    assert response.status_code == 201
    body = response.get_json()
    public_id = body["api_key"].split("_")[1]
    assert body["prefix"] == f"dom_{public_id}" and body["api_key"].startswith(body["prefix"] + "_")
    assert (body["name"], body["user_id"], body["expires_at"]) == ("laptop", user_id, None)
    assert body["message"] == "Save this key now! It will not be shown again."
    assert body["created_at"].endswith("Z")
    with app.app_context():
        row = db.session.execute(select(ApiKey)).scalar_one()
        assert row.key_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")  # OWASP's argon2id baseline
        assert body["api_key"] not in row.key_hash and body["api_key"].split("_", 2)[2] not in row.key_hash
        assert verify_key(row.key_hash, body["api_key"])
    everything = str(client.get("/admin/keys", headers=admin_headers).get_json())
    everything += str(client.get(f"/admin/users/{user_id}", headers=admin_headers).get_json())
    assert body["api_key"].split("_", 2)[2] not in everything and "$argon2" not in everything


def test_created_key_authenticates(client, admin_headers, user_id):
    api_key = new_key(client, admin_headers, user_id).get_json()["api_key"]
    response = client.post("/v1/llm/complete", json={"model": "mock-1", "messages": MESSAGES},
                           headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 200, response.get_json()


def test_expires_at_naive_is_utc_and_aware_is_converted(client, admin_headers, user_id):
    naive = new_key(client, admin_headers, user_id, expires_at="2099-01-02T03:04:05").get_json()
    assert naive["expires_at"] == "2099-01-02T03:04:05Z"
    aware = new_key(client, admin_headers, user_id, expires_at="2099-01-02T05:04:05+02:00").get_json()
    assert aware["expires_at"] == "2099-01-02T03:04:05Z"


@pytest.mark.parametrize("value", ["2000-01-01T00:00:00Z", "yesterday", "2099-13-01", 12345, True])
def test_bad_or_past_expires_at_is_400(client, admin_headers, user_id, value):
    assert_error(new_key(client, admin_headers, user_id, expires_at=value), 400, "invalid_request_error",
                 "expires_at")


@pytest.mark.parametrize("body, param", [
    ({"name": "k"}, "user_id"), ({"user_id": "1", "name": "k"}, "user_id"), ({"user_id": True, "name": "k"}, "user_id"),
    ({"user_id": 1}, "name"), ({"user_id": 1, "name": ""}, "name"), ({"user_id": 1, "name": "x" * 201}, "name"),
    ({"user_id": 1, "name": "k", "secret": "mine"}, "secret"),
])
def test_invalid_key_fields_are_400(client, admin_headers, user_id, body, param):
    response = client.post("/admin/keys", json=body, headers=admin_headers)
    assert_error(response, 400, "invalid_request_error", param)


def test_unknown_user_is_404(client, admin_headers):
    error = assert_error(new_key(client, admin_headers, 42), 404, "not_found_error", "user_id")
    assert error["code"] == "user_not_found"


def test_list_keys_all_and_by_user(client, admin_headers, user_id):
    other = new_user(client, admin_headers, email="bob@example.com").get_json()["id"]
    new_key(client, admin_headers, user_id)
    new_key(client, admin_headers, other)
    new_key(client, admin_headers, user_id, expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    everyone = client.get("/admin/keys", headers=admin_headers).get_json()["data"]
    assert [(k["id"], k["user_id"], k["status"]) for k in everyone] == [(1, user_id, "active"), (2, other, "active"),
                                                                     (3, user_id, "active")]
    mine = client.get(f"/admin/keys?user_id={user_id}", headers=admin_headers).get_json()["data"]
    assert [k["id"] for k in mine] == [1, 3]
    assert set(mine[0]) == {"id", "user_id", "name", "prefix", "status", "created_at", "last_used_at",
                            "expires_at", "revoked_at"}


@pytest.mark.parametrize("query, status, param", [("user_id=abc", 400, "user_id"), ("user_id=0", 400, "user_id"),
                                                  ("owner=1", 400, "owner"), ("user_id=77", 404, "user_id")])
def test_list_keys_bad_filter(client, admin_headers, user_id, query, status, param):
    response = client.get(f"/admin/keys?{query}", headers=admin_headers)
    assert_error(response, status, "invalid_request_error" if status == 400 else "not_found_error", param)


def test_expired_key_is_listed_as_expired(app, client, admin_headers, user_id):
    key_id = new_key(client, admin_headers, user_id, expires_at="2099-01-01T00:00:00").get_json()["id"]
    with app.app_context():
        db.session.get(ApiKey, key_id).expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    assert client.get("/admin/keys", headers=admin_headers).get_json()["data"][0]["status"] == "expired"


def test_revoke_is_idempotent_and_keeps_first_revoked_at(app, client, admin_headers, user_id):
    created = new_key(client, admin_headers, user_id).get_json()
    first = client.delete(f"/admin/keys/{created['id']}", headers=admin_headers)
    assert first.status_code == 200
    body = first.get_json()
    assert body["status"] == "revoked" and body["revoked_at"] and "api_key" not in body
    again = client.delete(f"/admin/keys/{created['id']}", headers=admin_headers)
    assert again.status_code == 200 and again.get_json()["revoked_at"] == body["revoked_at"]
    response = client.post("/v1/llm/complete", json={"model": "mock-1", "messages": MESSAGES},
                           headers={"Authorization": f"Bearer {created['api_key']}"})
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "key_revoked"


def test_revoke_forgets_the_key_in_the_verified_cache(app, client, admin_headers, user_id):
    created = new_key(client, admin_headers, user_id).get_json()
    client.post("/v1/llm/complete", json={"model": "mock-1", "messages": MESSAGES},
                headers={"Authorization": f"Bearer {created['api_key']}"})
    cache = app.extensions["gateway"].key_cache
    assert len(cache) == 1
    client.delete(f"/admin/keys/{created['id']}", headers=admin_headers)
    assert len(cache) == 0


@pytest.mark.parametrize("key_id", ["999", "abc", "0", "-1", "99999999999999"])
def test_revoke_unknown_key_is_404(client, admin_headers, key_id):
    error = assert_error(client.delete(f"/admin/keys/{key_id}", headers=admin_headers), 404, "not_found_error")
    assert error["code"] == "key_not_found"
