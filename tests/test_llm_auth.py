"""Gateway keys on /v1: parsing, argon2 once per key, status read every request, failure throttling."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

import gateway.services.auth as auth_service
from gateway.extensions import db
from gateway.models import ApiKey, UsageRecord, User
from tests.conftest import counters_match_audit, create_account

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


# --- completions: the key's status and the user's limits checked by the reservation (issue #16) --------------

def _behind_the_gateway(app, statement) -> None:
    """A change another worker, an operator's SQL or a migration makes: this process is not told."""
    with app.app_context():
        db.session.execute(statement)
        db.session.commit()


@pytest.mark.parametrize("change, status, code", [
    (update(ApiKey).values(revoked_at=datetime.now(UTC)), 401, "key_revoked"),
    (update(ApiKey).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)), 401, "key_expired"),
    (update(User).values(status="suspended"), 403, "user_suspended"),
])
def test_a_warm_cached_key_is_refused_by_the_reservation_on_the_next_request(app, client, account, change, status,
                                                                              code):
    """A completion skips the separate key read once the key is cached; its reservation refuses a key that
    changed, writing nothing, and the request is answered from a fresh read."""
    assert complete(client, account.headers).status_code == 200
    _behind_the_gateway(app, change)
    response = complete(client, account.headers)
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)
    with app.app_context():
        assert len(db.session.execute(select(UsageRecord)).scalars().all()) == 1
    assert counters_match_audit(app) == []


def test_a_quota_lowered_behind_the_gateway_applies_to_the_next_request(app, client, account):
    assert complete(client, account.headers).status_code == 200
    _behind_the_gateway(app, update(User).values(daily_requests=1))
    response = complete(client, account.headers)
    assert response.status_code == 429
    error = response.get_json()["error"]
    assert (error["code"], error["limit"], error["used"]) == ("daily_requests", 1, 1)
    with app.app_context():
        assert [r.status for r in db.session.execute(select(UsageRecord).order_by(UsageRecord.id)).scalars()] == [
            "ok", "quota_exceeded"]
    assert counters_match_audit(app) == []


def test_a_rate_limit_changed_behind_the_gateway_applies_from_the_request_that_sees_it(app, client, account):
    """The per-user rate limit is counted before the reservation: the request that finds the change is
    served (it was counted under the old limit), and the ones after it are counted under the new one
    (Flask-Limiter counts each limit apart, so the new one starts empty)."""
    assert complete(client, account.headers).status_code == 200
    _behind_the_gateway(app, update(User).values(rate_limit_max=2))
    assert complete(client, account.headers).status_code == 200  # its reservation read the new limit
    assert [complete(client, account.headers).status_code for _ in range(2)] == [200, 200]
    response = complete(client, account.headers)
    assert (response.status_code, response.get_json()["error"]["code"]) == (429, "user_rate_limit")


def test_endpoints_that_reserve_nothing_read_the_key_every_request(app, client, account):
    assert client.get("/v1/models", headers=account.headers).status_code == 200
    assert complete(client, account.headers).status_code == 200
    _behind_the_gateway(app, update(ApiKey).values(revoked_at=datetime.now(UTC)))
    for path in ("/v1/models", "/v1/llm/models", "/v1/llm/quota"):
        response = client.get(path, headers=account.headers)
        assert (response.status_code, response.get_json()["error"]["code"]) == (401, "key_revoked"), path


def test_a_caller_that_changes_again_during_the_retry_is_a_503_in_the_callers_format(client, account, monkeypatch):
    """Authenticated afresh, the request tries once more; if its reservation again finds the caller changed
    (another change in between), the answer is a 503 to retry, and nothing was written."""
    from gateway import ledger

    assert complete(client, account.headers).status_code == 200
    monkeypatch.setattr(ledger, "admit", lambda *_args: ledger.CALLER)
    response = client.post("/v1/messages", headers={"x-api-key": account.api_key, "anthropic-version": "2023-06-01"},
                           json={"model": "mock-1", "max_tokens": 10, "messages": MESSAGES})
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    body = response.get_json()
    assert (body["type"], body["error"]["type"]) == ("error", "api_error")
    assert "changed" in body["error"]["message"]


def test_a_burst_of_first_requests_with_one_key_runs_argon2_once(app, account, monkeypatch):
    """A key's first requests in a process all miss the key cache; the first checks it with argon2 and the
    others share its answer, instead of each holding argon2's 19 MiB at once."""
    import threading
    import time

    calls = []
    original = auth_service.verify_key

    def slow(key_hash, presented):
        calls.append(presented)
        time.sleep(0.3)  # long enough for every thread to arrive while the first check runs
        return original(key_hash, presented)

    monkeypatch.setattr(auth_service, "verify_key", slow)
    start, codes = threading.Barrier(6), []

    def first_request():
        client = app.test_client()
        start.wait()
        codes.append(client.get("/v1/llm/models", headers=account.headers).status_code)

    threads = [threading.Thread(target=first_request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * 6 and len(calls) == 1


def test_a_shared_check_that_raised_lets_each_waiter_check_for_itself():
    import threading
    import time

    from gateway.services.key_cache import OneAtATime

    once, answers = OneAtATime(), []
    waiter = threading.Thread(target=lambda: answers.append(once.run(b"k", lambda: True)))

    def failing():
        waiter.start()
        shared = once._running[b"k"]
        deadline = time.monotonic() + 5
        while not shared.done._cond._waiters and time.monotonic() < deadline:  # the waiter is waiting on it
            time.sleep(0.001)
        assert shared.done._cond._waiters
        raise RuntimeError("argon2 failed")

    with pytest.raises(RuntimeError):
        once.run(b"k", failing)
    waiter.join()
    assert answers == [True]
    assert once.run(b"k", lambda: False) is False  # nothing left running for the digest
