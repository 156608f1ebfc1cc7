"""Quota reservations under real concurrency (threaded HTTP server), settlement, release and the sweeper."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests
from sqlalchemy import func, select

from gateway.extensions import db
from gateway.models import UsageCounter, UsageRecord
from gateway.models.types import utcnow
from gateway.services.limits import effective_limits
from gateway.services.quotas import ReservationFacts, reserve
from gateway.services.settlement import heartbeat, reconcile_stale_reservations
from gateway.models import User
from tests.conftest import counters_match_audit, create_account
from tests.fake_upstream import Behavior

HELLO = [{"role": "user", "content": "Say hello"}]
LONG = [{"role": "user", "content": "Say hello. " * 10}]  # 110 bytes: room for up to 126 prompt tokens


def burst(url: str, headers: dict, count: int, body: dict) -> list[requests.Response]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: requests.post(f"{url}/v1/llm/complete", json=body, headers=headers,
                                                     timeout=60), range(count)))


def status_count(app, status: str) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).where(UsageRecord.status == status))


def test_fifty_parallel_requests_admit_exactly_ten(app, client, admin_headers, live_server_factory,
                                                   fake_upstream):
    account = create_account(client, admin_headers, daily_requests=10)
    fake_upstream.set_default(Behavior(delay_s=0.05, prompt_tokens=5, completion_tokens=5))
    server = live_server_factory(app)
    responses = burst(server.url, account.headers, 50, {"model": "gpt-4o-mini", "messages": HELLO})
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 10 and codes.count(429) == 40, codes
    refused = next(r for r in responses if r.status_code == 429).json()["error"]
    assert (refused["type"], refused["quota"], refused["limit"]) == ("quota_exceeded", "daily_requests", 10)
    assert len(fake_upstream.requests) == 10  # refused requests never reached the upstream
    assert status_count(app, "ok") == 10 and status_count(app, "quota_exceeded") == 40
    assert counters_match_audit(app) == []


def test_parallel_burst_never_overshoots_the_spend_cap(app, client, admin_headers, live_server_factory,
                                                       fake_upstream):
    # gpt-4o: each call reserves its worst-case prompt bound + 100 tokens at full price and really costs
    # 20 x $2.50 + 100 x $10 per 1M = $0.00105. A $0.01 cap admits a handful, never more than it covers.
    account = create_account(client, admin_headers, monthly_spend_cap_usd="0.01")
    fake_upstream.set_default(Behavior(delay_s=0.05, prompt_tokens=20, completion_tokens=100))
    server = live_server_factory(app)
    responses = burst(server.url, account.headers, 30,
                      {"model": "gpt-4o", "messages": HELLO, "max_tokens": 100})
    ok = [r for r in responses if r.status_code == 200]
    assert 1 <= len(ok) < 30
    assert {r.json()["error"]["quota"] for r in responses if r.status_code == 429} == {"monthly_spend_cap_usd"}
    with app.app_context():
        spend = db.session.scalar(select(func.sum(UsageRecord.cost_nanousd)))
        counter = db.session.scalar(select(UsageCounter.spend_nanousd).where(UsageCounter.period == "month"))
    assert spend == counter == len(ok) * 1_050_000
    assert spend <= 10_000_000
    assert counters_match_audit(app) == []


def test_quota_refusal_names_quota_limit_use_and_reset(client, admin_headers, fake_upstream):
    account = create_account(client, admin_headers, daily_requests=1)
    body = {"model": "gpt-4o-mini", "messages": HELLO}
    assert client.post("/v1/llm/complete", json=body, headers=account.headers).status_code == 200
    refused = client.post("/v1/llm/complete", json=body, headers=account.headers)
    error = refused.get_json()["error"]
    assert refused.status_code == 429
    assert (error["type"], error["code"], error["limit"], error["used"]) == \
        ("quota_exceeded", "daily_requests", 1, 1)
    assert error["resets_at"].endswith("+00:00") and "T00:00:00" in error["resets_at"]
    assert int(refused.headers["Retry-After"]) > 0
    assert len(fake_upstream.requests) == 1


def test_daily_token_quota(client, admin_headers, fake_upstream):
    account = create_account(client, admin_headers, daily_tokens=50)
    response = client.post("/v1/llm/complete", headers=account.headers,
                           json={"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 100})
    assert response.status_code == 429
    assert response.get_json()["error"]["quota"] == "daily_tokens"
    assert fake_upstream.requests == []


def test_settlement_replaces_reservation_with_actuals(app, client, account, fake_upstream):
    fake_upstream.enqueue(Behavior(prompt_tokens=11, completion_tokens=7))
    client.post("/v1/llm/complete", json={"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 500},
                headers=account.headers)
    with app.app_context():
        day = db.session.execute(select(UsageCounter).where(UsageCounter.period == "day")).scalar_one()
        assert (day.requests, day.tokens, day.spend_nanousd) == (1, 18, 11 * 150 + 7 * 600)


def test_quota_endpoint_reports_use(client, account, fake_upstream):
    fake_upstream.enqueue(Behavior(prompt_tokens=11, completion_tokens=7))
    client.post("/v1/llm/complete", json={"model": "gpt-4o-mini", "messages": HELLO}, headers=account.headers)
    body = client.get("/v1/llm/quota", headers=account.headers).get_json()
    assert body["daily_requests"]["used"] == 1 and body["daily_requests"]["remaining"] == 999
    assert body["daily_tokens"]["used"] == 18 and body["daily_tokens"]["reserved"] == 0
    assert body["monthly_spend_usd"]["used"] == 0.00000585  # 11 x 0.15 + 7 x 0.60 per 1M
    assert body["monthly_spend_usd"]["limit"] == 50.0
    assert body["rate_limit"] == {"limit": 60, "window_s": 60}


def test_quota_endpoint_reports_the_concurrency_cap(app, client, account, admin_headers):
    assert client.get("/v1/llm/quota", headers=account.headers).get_json()["concurrent_requests"] == \
        {"limit": None, "in_flight": 0, "remaining": None}  # the default: unlimited
    capped = create_account(client, admin_headers, email="capped@example.com", max_concurrent_requests=3)
    assert client.get("/v1/llm/quota", headers=capped.headers).get_json()["concurrent_requests"] == \
        {"limit": 3, "in_flight": 0, "remaining": 3}
    _pending_reservation(app, capped)  # a request admitted and not settled yet
    assert client.get("/v1/llm/quota", headers=capped.headers).get_json()["concurrent_requests"] == \
        {"limit": 3, "in_flight": 1, "remaining": 2}


def _pending_reservation(app, account, request_id="req_crashed"):
    with app.app_context():
        user = db.session.get(User, account.user_id)
        limits = effective_limits(user, app.extensions["gateway"].settings)
        facts = ReservationFacts(request_id=request_id, user_id=account.user_id, key_id=account.key_id,
                             endpoint="llm.complete", provider="openai", model="gpt-4o", stream=False,
                             client_ip="127.0.0.1", prompt_tokens=10, completion_tokens=90,
                             cost_nanousd=5000, price_snapshot=None, prompt_record=None)
        return reserve(facts, limits)


def test_reconciler_charges_the_reservation_of_rows_nobody_heartbeats(app, account):
    reservation = _pending_reservation(app, account)
    assert counters_match_audit(app) == []
    with app.app_context():
        assert reconcile_stale_reservations(3600) == 0
        assert reconcile_stale_reservations(0, now=utcnow() + timedelta(seconds=5)) == 1
        day = db.session.execute(select(UsageCounter).where(UsageCounter.period == "day")).scalar_one()
        assert (day.requests, day.tokens, day.spend_nanousd) == (1, 100, 5000)  # unchanged: charged in full
        record = db.session.execute(select(UsageRecord)).scalar_one()
        assert (record.status, record.counted, record.billing_rule) == ("reconciled", True, "reservation")
        assert (record.prompt_tokens, record.completion_tokens, record.cost_nanousd) == (10, 90, 5000)
    assert reservation.record_id == record.id
    assert counters_match_audit(app) == []


def test_heartbeated_rows_are_left_alone(app, account):
    reservation = _pending_reservation(app, account)
    with app.app_context():
        later = utcnow() + timedelta(seconds=100)
        assert heartbeat({reservation.record_id}, now=later) == 1
        assert reconcile_stale_reservations(60, now=later + timedelta(seconds=30)) == 0
        assert reconcile_stale_reservations(60, now=later + timedelta(seconds=61)) == 1
    assert counters_match_audit(app) == []


def test_quotas_sweep_and_check_commands(app, account, runner):
    _pending_reservation(app, account)
    result = runner.invoke(args=["quotas", "sweep", "--older-than", "3600"])
    assert result.exit_code == 0 and "charged 0" in result.output
    result = runner.invoke(args=["quotas", "check"])
    assert result.exit_code == 0 and "counters match" in result.output
    with app.app_context():  # break the books on purpose: the check must say so and fail
        db.session.execute(UsageCounter.__table__.update().where(UsageCounter.period == "day")
                           .values(tokens=UsageCounter.tokens + 1))
        db.session.commit()
    result = runner.invoke(args=["quotas", "check"])
    assert result.exit_code == 1 and "MISMATCH" in result.output and "'tokens': 101" in result.output
    result = runner.invoke(args=["quotas", "sweep", "--older-than", "0"])
    assert result.exit_code == 0 and "charged 1" in result.output


def test_duplicate_request_id_is_409_and_counts_nothing(app, client, account):
    headers = {**account.headers, "X-Request-ID": "client-chosen-id-1"}
    body = {"model": "gpt-4o-mini", "messages": HELLO}
    assert client.post("/v1/llm/complete", json=body, headers=headers).status_code == 200
    again = client.post("/v1/llm/complete", json=body, headers=headers)
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "duplicate_request_id"
    assert counters_match_audit(app) == []


def test_admin_usage_and_quota_endpoint_agree(client, account, admin_headers, fake_upstream):
    fake_upstream.enqueue(Behavior(prompt_tokens=30, completion_tokens=12),
                          Behavior(prompt_tokens=50, completion_tokens=8, cached_tokens=20))
    for _ in range(2):
        client.post("/v1/llm/complete", json={"model": "gpt-4o", "messages": LONG}, headers=account.headers)
    quota = client.get("/v1/llm/quota", headers=account.headers).get_json()
    usage = client.get(f"/admin/usage?user_id={account.user_id}", headers=admin_headers).get_json()["totals"]
    assert usage["requests"] == quota["daily_requests"]["used"] == 2
    assert usage["total_tokens"] == quota["daily_tokens"]["used"] == 100
    # 30 x 2.5 + 12 x 10 + 30 x 2.5 + 20 x 1.25 + 8 x 10 per 1M = 375 per 1M
    assert usage["cost_usd"] == quota["monthly_spend_usd"]["used"] == 0.000375


def test_sweeper_thread_runs_on_its_own(app_factory, admin_headers):
    import time

    from gateway.sweeper import start_sweeper

    app = app_factory(SWEEP_INTERVAL_S=1, RESERVATION_TTL_S=1)
    account = create_account(app.test_client(), admin_headers)
    _pending_reservation(app, account)
    thread = start_sweeper(app)
    try:
        for _ in range(50):
            with app.app_context():
                status = db.session.execute(select(UsageRecord.status)).scalar_one()
            if status == "reconciled":
                break
            time.sleep(0.1)
        assert status == "reconciled"
    finally:
        thread.stop_event.set()
    assert counters_match_audit(app) == []
