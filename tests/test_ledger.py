"""The ledger contract (docs/reliability.md), through real sockets against the fake upstream: zero overshoot
under concurrent bursts with worst-case (one token per byte) billing, every admitted request settled
exactly once (clients that reset before the first byte, exceptions, a database lost at settlement,
streams longer than the TTL), what the upstream saw is billed, redirects are never followed, and the
per-user concurrency cap. After each: counters equal the audit log."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import event, func, select

from gateway import ledger
from gateway.extensions import db
from gateway.models import InFlight, UsageCounter, UsageRecord
from gateway.services.pricing import MESSAGE_OVERHEAD_TOKENS, REPLY_PRIMER_TOKENS
from gateway.services.settlement import reconcile_stale_reservations
from tests.conftest import counters_match_audit, create_account
from tests.fake_upstream import Behavior, FakeUpstream
from tests.test_faults import outage, outage_app  # noqa: F401 - the real database outages

# Spaced single letters: about one BPE token per byte, the text that beat the old bytes/3 estimate.
DENSE = " ".join("abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(300))  # 599 bytes
ENDPOINTS = [("/v1/llm/complete", "gpt-4o-mini"), ("/v1/chat/completions", "gpt-4o-mini"),
             ("/v1/messages", "claude-haiku-4-5")]
ENDPOINT_IDS = ["native", "openai-compat", "anthropic-compat"]


def worst_case(**fields) -> Behavior:
    """The most the contract lets an upstream bill: every prompt byte a token, plus the stated overheads."""
    return Behavior(bill_bytes=True, bill_message_overhead=MESSAGE_OVERHEAD_TOKENS, bill_primer=REPLY_PRIMER_TOKENS,
                    **fields)


def body(path: str, model: str, text: str = DENSE, stream: bool = False, max_tokens: int = 50) -> dict:
    return {"model": model, "max_tokens": max_tokens, "stream": stream,
            "messages": [{"role": "user", "content": text}]}


def rows(app) -> list[UsageRecord]:
    with app.app_context():
        return db.session.execute(select(UsageRecord).order_by(UsageRecord.id)).scalars().all()


def wait_settled(app, count: int = 1, timeout_s: float = 10) -> list[UsageRecord]:
    """The audit rows once none is pending any more."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = rows(app)
        if len(found) >= count and all(r.status != "pending" for r in found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError([(r.status, r.request_id) for r in found])
        time.sleep(0.05)


def burst(url: str, headers: dict, path: str, payload: dict, count: int) -> list[requests.Response]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: requests.post(url + path, json=payload, headers=headers, timeout=30),
                             range(count)))


# --- 1. zero overshoot ------------------------------------------------------------------------------------

@pytest.mark.parametrize("quota, limit, path, model", [
    ("daily_requests", 7, "/v1/chat/completions", "gpt-4o-mini"),
    ("daily_tokens", 7000, "/v1/llm/complete", "gpt-4o-mini"),
    ("monthly_spend_cap_usd", "0.0107", "/v1/messages", "claude-haiku-4-5"),
    ("monthly_spend_cap_usd", "0.0016", "/v1/chat/completions", "gpt-4o-mini"),
])
def test_concurrent_burst_with_worst_case_billing_never_overshoots(app, client, admin_headers, live_server_factory,
                                                                  fake_upstream, quota, limit, path, model):
    """The issue's reproduction: 20 concurrent token-dense requests, billed the worst case (one token per
    byte, all of max_tokens). Admitted usage stays within the limit, to the token and the nano-dollar."""
    account = create_account(client, admin_headers, **{quota: limit})
    fake_upstream.set_default(worst_case(delay_s=0.1, completion_tokens=200))
    server = live_server_factory(app)
    responses = burst(server.url, account.headers, path, body(path, model, max_tokens=200), 20)
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429} and codes.count(200) >= 1, codes
    assert all(r.json()["error"]["code"] == quota for r in responses if r.status_code == 429)
    settled = [r for r in wait_settled(app, 20) if r.counted]
    assert all(r.status == "ok" and r.billing_rule == "usage" for r in settled)
    assert len(settled) == codes.count(200) == len(fake_upstream.requests)
    with app.app_context():
        day = db.session.execute(select(UsageCounter).where(UsageCounter.period == "day")).scalar_one()
        month = db.session.execute(select(UsageCounter).where(UsageCounter.period == "month")).scalar_one()
    used = {"daily_requests": day.requests, "daily_tokens": day.tokens,
            "monthly_spend_cap_usd": month.spend_nanousd}[quota]
    cap = int(float(limit) * 10**9) if quota == "monthly_spend_cap_usd" else limit
    assert used <= cap
    # Billed exactly the worst case the reservation allowed for: the prompt's bytes + overheads, 200 out.
    assert {r.prompt_tokens for r in settled} == {len(DENSE) + MESSAGE_OVERHEAD_TOKENS + REPLY_PRIMER_TOKENS}
    assert {r.completion_tokens for r in settled} == {200}
    assert counters_match_audit(app) == []


def test_quotas_check_reads_one_snapshot_under_concurrent_traffic(app, client, admin_headers, live_server_factory,
                                                                  fake_upstream):
    """flask quotas check while reservations and settlements commit all around it: never a false alarm."""
    account = create_account(client, admin_headers)
    fake_upstream.set_default(worst_case(delay_s=0.02, completion_tokens=5))
    server = live_server_factory(app)
    stop, alarms = threading.Event(), []

    def check_repeatedly():
        while not stop.is_set():
            alarms.extend(counters_match_audit(app))

    checker = threading.Thread(target=check_repeatedly)
    checker.start()
    try:
        for _ in range(3):
            burst(server.url, account.headers, "/v1/llm/complete", body("", "gpt-4o-mini", "hi"), 12)
    finally:
        stop.set()
        checker.join()
    assert alarms == []
    assert counters_match_audit(app) == []


# --- 2. settled exactly once, whatever happens --------------------------------------------------------------

def send_then_reset(port: int, path: str, payload: dict, api_key: str) -> None:
    """A raw HTTP client that sends a whole request and resets the connection (SO_LINGER 0) at once,
    before the gateway can write the first byte of its answer."""
    data = json.dumps(payload).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(head + data)
    time.sleep(0.1)  # the gateway has read the request and is waiting on the upstream
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("path, model", ENDPOINTS, ids=ENDPOINT_IDS)
def test_client_reset_before_the_first_byte_is_billed_for_the_prompt(app, client, account, live_server_factory,
                                                                     fake_upstream, path, model):
    fake_upstream.enqueue(Behavior(delay_s=0.5, chunks=["never ", "seen"]))
    server = live_server_factory(app)
    send_then_reset(int(server.url.rsplit(":", 1)[1]), path, body(path, model, "Say hello", stream=True),
                    account.api_key)
    [record] = wait_settled(app)
    assert (record.status, record.counted, record.http_status, record.billing_rule) == \
        ("client_disconnected", True, 499, "estimate")
    assert record.prompt_tokens == 3 + 4 + 3  # ceil(9 / 3) + 4 + 3
    # Output is counted as the gateway reads it from the upstream (which bills what it generated): a format
    # that holds its first frame until the first delta has read "never " (2 tokens) before the write fails.
    assert record.completion_tokens in (0, 2)
    assert record.cost_nanousd > 0
    assert len(fake_upstream.requests) == 1
    assert counters_match_audit(app) == []


def test_client_reset_before_the_first_byte_under_gunicorn(tmp_path, fake_upstream):
    """The same on the production server (gunicorn gthread, whose first sendall fails), every endpoint."""
    from tests.deploy_support import gateway_env, gunicorn, prepare_database, usage_rows

    fake_upstream.reset()
    db_path = tmp_path / "gateway.db"
    account = prepare_database(db_path, fake_upstream)
    with gunicorn(gateway_env(db_path, fake_upstream), tmp_path / "gunicorn.log") as served:
        for path, model in ENDPOINTS:
            fake_upstream.enqueue(Behavior(delay_s=0.5, chunks=["never ", "seen"]))
            send_then_reset(served.port, path, body(path, model, "Say hello", stream=True), account.api_key)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (len(usage_rows(db_path)) < 3 or
                                               any(r["status"] == "pending" for r in usage_rows(db_path))):
            time.sleep(0.1)
    settled = usage_rows(db_path)
    assert sorted((r["endpoint"], r["status"], r["counted"], r["prompt_tokens"]) for r in settled) == [
        ("chat.completions", "client_disconnected", 1, 10), ("llm.complete", "client_disconnected", 1, 10),
        ("messages", "client_disconnected", 1, 10)]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_exception_inside_the_gateway_is_settled_before_it_propagates(app, client, account, fake_upstream,
                                                                         monkeypatch, stream):
    """Not a ProviderError (an adapter bug on an odd payload): 500, and the row is settled, not left pending."""
    from gateway.providers import openai as openai_adapter

    def broken(*_args, **_kwargs):
        raise AttributeError("'str' object has no attribute 'get'")

    monkeypatch.setattr(openai_adapter, "parse_completion" if not stream else "parse_stream", broken)
    response = client.post("/v1/chat/completions", headers=account.headers,
                           json=body("", "gpt-4o-mini", "Say hello", stream=stream))
    assert response.status_code == 500 and response.get_json()["error"]["type"] == "internal_error"
    [record] = rows(app)
    assert (record.status, record.counted, record.billing_rule, record.prompt_tokens) == \
        ("internal_error", True, "failed_prompt", 10)
    with app.app_context():
        assert db.session.get(InFlight, account.user_id).requests == 0
    assert counters_match_audit(app) == []


def test_stream_longer_than_the_ttl_is_heartbeated_and_settled_once(app_factory, admin_headers, live_server_factory,
                                                                    fake_upstream, caplog):
    """RESERVATION_TTL_S=1 and a reconciler running every second, against a 3-second stream: the worker's
    heartbeats keep the row its own, so it is never charged as abandoned, and it settles once, as ok."""
    from gateway.sweeper import start_sweeper

    app = app_factory(RESERVATION_TTL_S=1, SWEEP_INTERVAL_S=1)
    account = create_account(app.test_client(), admin_headers)
    fake_upstream.enqueue(worst_case(chunks=["tick "] * 30, chunk_delay_s=0.1))
    server = live_server_factory(app)
    keeper = start_sweeper(app)
    try:
        response = requests.post(server.url + "/v1/llm/complete", headers=account.headers, timeout=30,
                                 json=body("", "gpt-4o-mini", "Say hello", stream=True), stream=True)
        text = response.text
    finally:
        keeper.stop_event.set()
    assert text.count("event: delta") == 30 and "event: done" in text
    [record] = wait_settled(app)
    assert (record.status, record.billing_rule, record.completion_tokens) == ("ok", "usage", 30)
    assert record.heartbeat_at is not None and (record.heartbeat_at - record.created_at).total_seconds() >= 1
    assert "charged abandoned reservations" not in caplog.text
    assert counters_match_audit(app) == []


def test_database_lost_at_settlement_keeps_the_answer_and_the_reconciler_charges_it(
        outage, outage_app, admin_headers, fake_upstream, monkeypatch):
    """The upstream answered; the database goes away as the row is being settled and stays away through the
    retries. The caller still gets the completion; the row is left pending (no longer heartbeated), and the
    reconciler charges the whole reservation: what the upstream was paid for is never given back."""
    import gateway.services.settlement as settlement

    monkeypatch.setattr(settlement, "SETTLE_RETRY_DELAYS_S", (0.05,))
    app, client = outage_app, outage_app.test_client()
    account = create_account(client, admin_headers)
    armed = threading.Event()

    def fail_at_settlement(_conn, _cursor, statement, *_args):
        # The settling statement: on PostgreSQL one prepared statement of CTEs (gateway/ledger/postgresql.py).
        words = statement.upper()
        if armed.is_set() and ("UPDATE USAGE_RECORDS SET STATUS" in words or "DOMINION_LEDGER_FINISH" in words):
            armed.clear()
            outage.begin()

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", fail_at_settlement)
    fake_upstream.enqueue(Behavior(reply="the answer", prompt_tokens=5, completion_tokens=2))
    armed.set()
    try:
        response = client.post("/v1/chat/completions", headers=account.headers,
                               json=body("", "gpt-4o-mini", "Say hello"))
    finally:
        outage.end()
    assert response.status_code == 200
    assert response.get_json()["choices"][0]["message"]["content"] == "the answer"
    [record] = rows(app)
    assert record.status == "pending" and not app.extensions["gateway"].live.snapshot()
    with app.app_context():
        assert reconcile_stale_reservations(0) == 1
    [record] = rows(app)
    assert (record.status, record.counted, record.billing_rule) == ("reconciled", True, "reservation")
    assert (record.prompt_tokens, record.completion_tokens, record.cost_nanousd) == \
        (record.reserved_prompt_tokens, record.reserved_completion_tokens, record.reserved_cost_nanousd)
    assert counters_match_audit(app) == []


def test_a_late_settlement_after_the_reconciler_corrects_the_charge_down(app, client, account, fake_upstream):
    """A worker that only looked dead (paused past the TTL) settles after the reconciler charged the
    reservation: the row takes the real outcome and the counters move down, never up."""
    from gateway.services.quotas import Reservation
    from gateway.services.settlement import Outcome, settle

    fake_upstream.enqueue(Behavior(reply="x", prompt_tokens=5, completion_tokens=2))
    assert client.post("/v1/llm/complete", headers=account.headers,
                       json=body("", "gpt-4o-mini", "Say hello")).status_code == 200
    with app.app_context():
        db.session.execute(UsageRecord.__table__.update().values(status="pending"))  # replay: still in flight
        db.session.execute(UsageRecord.__table__.update().values(
            prompt_tokens=0, completion_tokens=0, cost_nanousd=0, billing_rule=None))
        counters = UsageCounter.__table__
        row = db.session.execute(select(UsageRecord)).scalar_one()
        for period in ("day", "month"):
            db.session.execute(counters.update().where(counters.c.period == period).values(
                tokens=row.reserved_prompt_tokens + row.reserved_completion_tokens,
                spend_nanousd=row.reserved_cost_nanousd))
        db.session.execute(InFlight.__table__.update().values(requests=1))
        db.session.commit()
        assert counters_match_audit(app) == []
        assert reconcile_stale_reservations(0) == 1
        reservation = Reservation(row.id, row.user_id, row.day_start, row.month_start, row.reserved_prompt_tokens,
                                  row.reserved_completion_tokens, row.reserved_cost_nanousd)
        assert settle(reservation, Outcome("ok", 200, True, prompt_tokens=5, completion_tokens=2,
                                           cost_nanousd=1950, billing_rule="usage"))
        day = db.session.execute(select(UsageCounter).where(UsageCounter.period == "day")).scalar_one()
        assert (day.requests, day.tokens, day.spend_nanousd) == (1, 7, 1950)
        assert db.session.get(InFlight, account.user_id).requests == 0
    assert [(r.status, r.billing_rule) for r in rows(app)] == [("ok", "usage")]
    assert counters_match_audit(app) == []


# --- 3. what the upstream saw is billed ---------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["prompt", "none"])
def test_a_stream_that_times_out_before_its_first_event_is_billed_by_rule(app_factory, admin_headers,
                                                                         fake_upstream, rule):
    app = app_factory(UPSTREAM_TIMEOUT_S="0.5", BILL_FAILED_UPSTREAM=rule)
    client = app.test_client()
    account = create_account(client, admin_headers)
    fake_upstream.enqueue(Behavior(delay_s=1.5))
    response = client.post("/v1/messages", headers=account.headers,
                           json=body("/v1/messages", "claude-haiku-4-5", "Say hello", stream=True))
    assert response.status_code == 504
    [record] = rows(app)
    expected = (True, "failed_prompt", 10) if rule == "prompt" else (False, "failed_none", 0)
    assert (record.counted, record.billing_rule, record.prompt_tokens) == expected
    assert counters_match_audit(app) == []


def test_a_stream_broken_after_output_bills_the_output_even_under_none(app_factory, admin_headers, fake_upstream):
    app = app_factory(BILL_FAILED_UPSTREAM="none")
    client = app.test_client()
    account = create_account(client, admin_headers)
    fake_upstream.enqueue(Behavior(chunks=["one ", "two ", "three"], drop_after_chunks=2))
    response = client.post("/v1/llm/complete", headers=account.headers,
                           json=body("", "gpt-4o-mini", "Say hello", stream=True))
    assert "broke mid-response" in response.get_data(as_text=True)
    [record] = rows(app)
    assert (record.status, record.counted, record.billing_rule) == ("upstream_error", True, "failed_none")
    assert (record.prompt_tokens, record.completion_tokens) == (10, 2)  # "one two " is 8 bytes: 2 tokens
    assert counters_match_audit(app) == []


# --- 7. redirects ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, model", ENDPOINTS[1:], ids=["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_upstream_redirects_are_never_followed(app, client, account, fake_upstream, path, model, stream):
    """A 307 to another loopback address: the key and the prompt stay here; the caller gets upstream_error."""
    elsewhere = FakeUpstream(host="127.0.0.2").start()
    try:
        fake_upstream.enqueue(Behavior(redirect_to=elsewhere.url))
        response = client.post(path, headers=account.headers, json=body(path, model, "secret plans", stream=stream))
        assert elsewhere.hits == 0
    finally:
        elsewhere.stop()
    error = response.get_json()["error"]  # /v1/messages answers in Anthropic's envelope, our type alongside
    assert (response.status_code, error.get("gateway_type", error["type"]), error["upstream_status"]) == \
        (502, "upstream_error", 307)
    assert "redirect" in error["message"] and "127.0.0.2" not in error["message"]
    [record] = rows(app)
    assert (record.counted, record.billing_rule) == (False, "refused")
    assert counters_match_audit(app) == []


# --- 5. the per-user concurrency cap ------------------------------------------------------------------------

def test_concurrency_cap_is_exact_across_two_app_instances(app_factory, admin_headers, live_server_factory,
                                                           fake_upstream):
    """Two gateways (two pools, as two processes) on one database; 12 slow requests at once against a cap of
    3: exactly 3 are admitted, the rest get 429 concurrency_limit_exceeded and never reach the upstream."""
    first, second = app_factory(), app_factory()
    account = create_account(first.test_client(), admin_headers, max_concurrent_requests=3)
    fake_upstream.set_default(Behavior(delay_s=1.0))
    servers = [live_server_factory(first), live_server_factory(second)]
    payload = body("", "gpt-4o-mini", "Say hello")
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda n: requests.post(servers[n % 2].url + "/v1/chat/completions",
                                                          json=payload, headers=account.headers, timeout=30),
                                  range(12)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 3 + [429] * 9, codes
    refused = next(r for r in responses if r.status_code == 429)
    error = refused.json()["error"]
    assert (error["type"], error["code"], error["limit"]) == ("rate_limit_exceeded", "concurrency_limit_exceeded", 3)
    assert refused.headers["Retry-After"] == "1"
    assert len(fake_upstream.requests) == 3
    with first.app_context():
        assert db.session.scalar(select(func.count()).where(UsageRecord.status == "concurrency_limited")) == 9
        assert db.session.get(InFlight, account.user_id).requests == 0
    assert counters_match_audit(first) == []
    fake_upstream.set_default(Behavior())
    assert requests.post(servers[1].url + "/v1/chat/completions", json=payload, headers=account.headers,
                         timeout=10).status_code == 200


def test_a_stream_holds_its_slot_until_it_ends(app, client, admin_headers, live_server_factory, fake_upstream):
    account = create_account(client, admin_headers, max_concurrent_requests=1)
    fake_upstream.enqueue(Behavior(chunks=["a "] * 10, chunk_delay_s=0.1))
    server = live_server_factory(app)
    stream = requests.post(server.url + "/v1/llm/complete", headers=account.headers, stream=True, timeout=10,
                           json=body("", "gpt-4o-mini", "Say hello", stream=True))
    lines = stream.iter_lines()
    next(lines)  # the stream is open and under way
    blocked = requests.post(server.url + "/v1/llm/complete", headers=account.headers, timeout=10,
                            json=body("", "gpt-4o-mini", "Say hello"))
    assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "concurrency_limit_exceeded"
    assert b"event: done" in b"\n".join(lines)
    wait_settled(app, 2)
    assert requests.post(server.url + "/v1/llm/complete", headers=account.headers, timeout=10,
                         json=body("", "gpt-4o-mini", "Say hello")).status_code == 200
    assert counters_match_audit(app) == []


def test_a_crashed_workers_slots_come_back_on_their_own(app_factory, admin_headers, fake_upstream):
    """A worker dies mid-request (its reservation is never settled or heartbeated): once RESERVATION_TTL_S
    has passed, the ledger thread of any live worker charges the reservation and frees the slot."""
    from gateway.services.limits import effective_limits
    from gateway.services.quotas import ReservationFacts, reserve
    from gateway.models import User
    from gateway.sweeper import start_sweeper

    app = app_factory(RESERVATION_TTL_S=1, SWEEP_INTERVAL_S=1)
    client = app.test_client()
    account = create_account(client, admin_headers, max_concurrent_requests=1)
    with app.app_context():  # the dead worker's reservation
        limits = effective_limits(db.session.get(User, account.user_id), app.extensions["gateway"].settings)
        reserve(ReservationFacts("req_dead_worker", account.user_id, account.key_id, "llm.complete", "openai",
                                 "gpt-4o-mini", False, "127.0.0.1", 20, 50, 3000, None, None), limits)
    ask = lambda: client.post("/v1/llm/complete", headers=account.headers,  # noqa: E731
                              json=body("", "gpt-4o-mini", "Say hello")).status_code
    assert ask() == 429
    keeper = start_sweeper(app)
    try:
        deadline = time.monotonic() + 10
        while ask() != 200:
            assert time.monotonic() < deadline, "the slot never came back"
            time.sleep(0.2)
    finally:
        keeper.stop_event.set()
    statuses = [(r.request_id, r.status) for r in rows(app) if r.status not in ("concurrency_limited", "ok")]
    assert statuses == [("req_dead_worker", "reconciled")]
    assert counters_match_audit(app) == []


# --- the fake upstream's SSE framings (the compatibility work reads them) -----------------------------------

@pytest.mark.parametrize("framing", ["chunked", "close", "content-length"])
def test_fake_upstream_sse_framings_and_the_gateway_reads_each_to_the_end(app, client, account, fake_upstream,
                                                                          framing):
    fake_upstream.enqueue(Behavior(chunks=["a", "b"], sse_framing=framing))
    raw = requests.post(fake_upstream.openai_base_url + "/chat/completions", stream=True, timeout=5,
                        json={"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    framed = {"chunked": raw.headers.get("Transfer-Encoding") == "chunked",
              "close": raw.headers.get("Connection") == "close" and "Content-Length" not in raw.headers,
              "content-length": int(raw.headers.get("Content-Length", 0)) > 0}
    assert framed[framing], raw.headers
    assert raw.text.endswith("data: [DONE]\n\n")
    fake_upstream.enqueue(Behavior(chunks=["a", "b"], sse_framing=framing))
    text = client.post("/v1/llm/complete", headers=account.headers,
                       json=body("", "gpt-4o-mini", "hi", stream=True)).get_data(as_text=True)
    assert text.count("event: delta") == 2 and "event: done" in text
    assert counters_match_audit(app) == []


# --- 8. bad clients cost bounded resources ------------------------------------------------------------------

def test_stalled_clients_cannot_freeze_a_directly_exposed_gunicorn(tmp_path, fake_upstream):
    """Served without nginx (make run, the SQLite compose): clients that send half a request head and stall
    hold a gthread thread each, forever (without GUNICORN_CLIENT_TIMEOUT this /health never answers). With
    it they are dropped and the worker serves again (measured: ~8 s for twice its threads, at a 1 s timeout)."""
    from tests.deploy_support import gateway_env, gunicorn, prepare_database

    db_path = tmp_path / "gateway.db"
    prepare_database(db_path, fake_upstream)
    env = gateway_env(db_path, fake_upstream, GUNICORN_THREADS=2, GUNICORN_CLIENT_TIMEOUT=1)
    with gunicorn(env, tmp_path / "gunicorn.log") as served:
        stalled = []
        for _ in range(4):  # twice the worker's threads
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
            sock.sendall(b"POST /v1/llm/complete HTTP/1.1\r\nHost: x\r\n")
            stalled.append(sock)
        try:
            time.sleep(0.5)
            assert requests.get(served.url + "/health", timeout=25).status_code == 200
        finally:
            for sock in stalled:
                sock.close()


def test_postgresql_sessions_are_read_committed_even_if_the_server_default_is_not(session_postgres_url,
                                                                                fake_upstream):
    """The conditional UPDATEs queue behind each other only under READ COMMITTED (review 1.8)."""
    from sqlalchemy import text

    from tests.conftest import base_config, make_app

    app = make_app(base_config(session_postgres_url, fake_upstream))
    with app.app_context():
        name = db.engine.url.database
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_isolation TO '
                                    "'repeatable read'"))
        try:
            db.engine.dispose()
            assert db.session.execute(text("SHOW transaction_isolation")).scalar() == "read committed"
            db.session.rollback()
        finally:
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_isolation'))
            db.session.remove()
            db.engine.dispose()


# --- round trips per request (issue #16) -------------------------------------------------------------------

def test_the_ledger_is_one_statement_per_step_on_postgresql(app, client, account, fake_upstream):
    """A governed completion's database statements: the reservation, the settlement. On PostgreSQL the
    reservation (the caller check, slot, both counters, pending row) and the settlement (row, slot, both
    counters) are one statement each, in autocommit; SQLite runs the same steps as a few in-process
    statements. Neither reads the key apart: the reservation checks it (gateway/services/auth.py)."""
    fake_upstream.enqueue(Behavior(reply="warm", prompt_tokens=5, completion_tokens=2))
    assert client.post("/v1/llm/complete", headers=account.headers,
                       json=body("", "gpt-4o-mini", "Say hello")).status_code == 200  # key verified, last_used set
    statements: list[str] = []
    autocommit: dict[str, bool] = {}

    def seen(conn, _cursor, statement, *_args):
        statements.append(" ".join(statement.split()))
        driver = conn.connection.dbapi_connection
        if db_is_postgresql(app):
            autocommit[statements[-1]] = driver.autocommit
            assert driver.isolation_level is None  # else each switch into autocommit costs a SET round trip

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", seen)
    try:
        fake_upstream.enqueue(Behavior(reply="x", prompt_tokens=5, completion_tokens=2))
        assert client.post("/v1/chat/completions", headers=account.headers,
                           json=body("", "gpt-4o-mini", "Say hello")).status_code == 200
    finally:
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", seen)
    touching = [s for s in statements if "usage_in_flight" in s or "usage_counters" in s or "usage_records" in s]
    if db_is_postgresql(app):
        # Prepared once per connection (PREPARE, the first time a pooled connection runs it), then run by name.
        prepares = [s for s in statements if s.startswith("PREPARE")]
        reservation, settlement = [s for s in statements if not s.startswith("PREPARE")]
        admit, finish = ledger.postgresql._ADMIT.name, ledger.postgresql._FINISH.name  # dominion_ledger_*_<digest>
        assert admit.startswith("dominion_ledger_admit_") and finish.startswith("dominion_ledger_finish_")
        assert reservation.startswith(f"EXECUTE {admit} (") and "usage_" not in reservation
        assert settlement.startswith(f"EXECUTE {finish} (") and "usage_" not in settlement
        assert all(p.startswith((f"PREPARE {admit} (", f"PREPARE {finish} (")) for p in prepares)
        admit_sql, finish_sql = ledger.postgresql._ADMIT.prepare, ledger.postgresql._FINISH.prepare
        assert all(f"{table}" in admit_sql for table in ("FROM api_keys JOIN users", "UPDATE usage_in_flight",
                                                         "UPDATE usage_counters", "INSERT INTO usage_records"))
        assert all(f"{table}" in finish_sql for table in ("UPDATE usage_records SET status", "UPDATE usage_in_flight",
                                                          "UPDATE usage_counters"))
        # Each is one statement, atomic by itself, run in autocommit: no BEGIN and no COMMIT round trips.
        assert (autocommit[reservation], autocommit[settlement]) == (True, True)
        with app.app_context(), db.engine.connect() as connection:
            assert connection.connection.dbapi_connection.autocommit is False  # given back as it was taken
    else:
        assert len(touching) == 7, touching  # slot (with the caller check), day, month, row; row, slot, both counters
        assert len(statements) == 7, statements
    [_, record] = rows(app)
    assert (record.status, record.billing_rule, record.prompt_tokens, record.completion_tokens) == ("ok", "usage", 5, 2)
    assert counters_match_audit(app) == []


def test_a_prepared_statement_of_another_text_never_runs_in_place_of_this_one(session_postgres_url):
    """A connection may still hold a statement prepared by an older release under the same plain name (a pooler
    that keeps server connections across a deploy): each text prepares and runs its own."""
    from sqlalchemy import create_engine

    from gateway.ledger.prepared import Prepared

    older = Prepared("dominion_probe", "SELECT %(n)s + 1", {"n": "integer"})
    newer = Prepared("dominion_probe", "SELECT %(n)s + 2", {"n": "integer"})
    engine = create_engine(session_postgres_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            assert older.run(connection, {"n": 40}).scalar() == 41
            assert newer.run(connection, {"n": 40}).scalar() == 42
            assert older.run(connection, {"n": 40}).scalar() == 41
    finally:
        engine.dispose()


def db_is_postgresql(app) -> bool:
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


def test_postgresql_prepares_the_ledger_once_per_connection_and_again_when_lost(session_postgres_url,
                                                                                  fake_upstream, admin_headers):
    """The admission and settlement statements are parsed and planned once per connection (PREPARE), then run
    by name; a connection whose prepared statements were dropped behind the gateway's back (DEALLOCATE, as a
    pooler may do) prepares them again and the request is served and billed as usual."""
    from sqlalchemy import text

    from tests.conftest import base_config, make_app

    app = make_app(base_config(session_postgres_url, fake_upstream, DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0))
    client = app.test_client()
    account = create_account(client, admin_headers)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        verb, name = statement.split(None, 2)[:2]
        statements.append(f"{verb} {name.rsplit('_', 1)[0]}")  # without the digest that ends the name

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", seen)
    try:
        for _ in range(3):
            fake_upstream.enqueue(Behavior(reply="x", prompt_tokens=5, completion_tokens=2))
            assert client.post("/v1/chat/completions", headers=account.headers,
                               json=body("", "gpt-4o-mini", "Say hello")).status_code == 200
        # One pooled connection: the first request of the day creates its counters and prepares both statements.
        assert statements.count("PREPARE dominion_ledger_admit") == 1, statements
        assert statements.count("PREPARE dominion_ledger_finish") == 1, statements
        assert statements.count("EXECUTE dominion_ledger_finish") == 3, statements
        with app.app_context(), db.engine.connect() as connection:
            connection.execute(text("DEALLOCATE ALL"))
            connection.commit()
        statements.clear()
        fake_upstream.enqueue(Behavior(reply="x", prompt_tokens=5, completion_tokens=2))
        assert client.post("/v1/chat/completions", headers=account.headers,
                           json=body("", "gpt-4o-mini", "Say hello")).status_code == 200
        assert [s for s in statements if "dominion_ledger" in s] == [
            "EXECUTE dominion_ledger_admit", "PREPARE dominion_ledger_admit", "EXECUTE dominion_ledger_admit",
            "EXECUTE dominion_ledger_finish", "PREPARE dominion_ledger_finish", "EXECUTE dominion_ledger_finish"]
    finally:
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", seen)
    assert [(r.status, r.prompt_tokens, r.completion_tokens) for r in rows(app)] == [("ok", 5, 2)] * 4
    assert counters_match_audit(app) == []
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
