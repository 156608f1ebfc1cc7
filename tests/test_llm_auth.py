"""Gateway keys on /v1: parsing, argon2 once per key, status read every request, failure throttling."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

import gateway.services.auth as auth_service
from gateway.extensions import db
from gateway.models import ApiKey
from tests.conftest import create_account

MESSAGES = [{"role": "user", "content": "hi"}]


def complete(client, headers):
    return client.post("/v1/llm/complete", json={"model": "mock-1", "messages": MESSAGES}, headers=headers)


def test_missing_key_is_401_with_envelope(client):
    response = complete(client, {})
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["type"] == "authentication_error"
    assert error["code"] == "invalid_api_key"
    assert error["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize("value", ["Bearer nope", "Bearer dom_short_x", "Basic abc", "Bearer "])
def test_malformed_key_is_401(client, value):
    assert complete(client, {"Authorization": value}).status_code == 401


def test_unknown_well_formed_key_is_401(client, account):
    forged = account.api_key[:-4] + "AAAA"
    response = complete(client, {"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_valid_key_completes(client, account):
    response = complete(client, account.headers)
    assert response.status_code == 200, response.get_json()


def test_revoked_key_refused_on_next_request(client, account, admin_headers):
    assert complete(client, account.headers).status_code == 200
    assert client.delete(f"/admin/keys/{account.key_id}", headers=admin_headers).status_code == 200
    response = complete(client, account.headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "key_revoked"


def test_revocation_seen_by_another_app_with_a_warm_cache(app_factory, client, account):
    """A second app (another worker) cached the key; revoking in the DB still stops it at once."""
    other = app_factory().test_client()
    assert complete(other, account.headers).status_code == 200
    with client.application.app_context():
        db.session.execute(update(ApiKey).values(revoked_at=datetime.now(UTC)))
        db.session.commit()
    assert complete(other, account.headers).status_code == 401


def test_expired_key_is_401(client, app, account):
    with app.app_context():
        db.session.execute(update(ApiKey).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        db.session.commit()
    response = complete(client, account.headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "key_expired"


def test_suspended_user_is_403_then_activated(client, account, admin_headers):
    client.post(f"/admin/users/{account.user_id}/suspend", headers=admin_headers)
    response = complete(client, account.headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["type"] == "permission_error"
    client.post(f"/admin/users/{account.user_id}/activate", headers=admin_headers)
    assert complete(client, account.headers).status_code == 200


def test_argon2_runs_once_per_key(client, account, monkeypatch):
    calls = []
    original = auth_service.verify_key
    monkeypatch.setattr(auth_service, "verify_key", lambda h, k: calls.append(1) or original(h, k))
    for _ in range(3):
        assert complete(client, account.headers).status_code == 200
    assert len(calls) == 1


def test_failed_attempts_are_throttled_per_address_and_per_key_id(app_factory, admin_headers):
    client = app_factory(AUTH_FAILURE_LIMIT=3).test_client()
    account = create_account(client, admin_headers)
    bad = {"Authorization": "Bearer " + account.api_key[:-4] + "AAAA"}
    assert [complete(client, bad).status_code for _ in range(3)] == [401, 401, 401]
    throttled = complete(client, bad)
    assert throttled.status_code == 429
    assert throttled.get_json()["error"]["code"] == "too_many_api_key_failures"
    assert int(throttled.headers["Retry-After"]) >= 1
    # Another address guessing the same key id is throttled too: the key id has used up its failures.
    same_key_elsewhere = client.post("/v1/llm/complete", json={"model": "mock-1", "messages": MESSAGES},
                                     headers=bad, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert same_key_elsewhere.status_code == 429
    other_key_elsewhere = client.post("/v1/llm/complete", json={"model": "mock-1", "messages": MESSAGES},
                                      headers={"Authorization": "Bearer dom_zzzzzzzzzzzz_" + "A" * 43},
                                      environ_base={"REMOTE_ADDR": "192.0.2.8"})
    assert other_key_elsewhere.status_code == 401
    # ...and the key's holder is never refused, from any address.
    assert complete(client, account.headers).status_code == 200


def test_ipv6_failures_count_per_slash_64():
    from gateway.services.failure_throttle import address_bucket

    assert address_bucket("2001:db8:1:2:aaaa::1") == address_bucket("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_bucket("2001:db8:1:3::1") != address_bucket("2001:db8:1:2::1")
    assert address_bucket("::ffff:192.0.2.1") == address_bucket("192.0.2.1") == "192.0.2.1"


def test_last_used_at_is_written_coarsely(client, app, account):
    complete(client, account.headers)
    with app.app_context():
        first = db.session.get(ApiKey, account.key_id).last_used_at
    assert first is not None
    complete(client, account.headers)
    with app.app_context():
        assert db.session.get(ApiKey, account.key_id).last_used_at == first
