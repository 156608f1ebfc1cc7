"""Faults, each one real: upstream failures over real sockets (fake upstream), the database going away
(PostgreSQL behind a TCP forwarder we stop and start; SQLite write-locked by another connection), Redis
going away mid-service, clients hanging up mid-stream. After each: the answer is the right envelope,
nothing is charged that was not delivered, counters equal the audit sums, and the gateway still serves.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from sqlalchemy import event, select

import gateway.database
from gateway.extensions import db
from gateway.models import UsageRecord, User
from tests.conftest import base_config, counters_match_audit, create_account, make_app, redis_url
from tests.fake_upstream import Behavior
from tests.upstream_fixtures import closed_port

HELLO = [{"role": "user", "content": "Say hello"}]
# (endpoint, model): each client-facing format over each upstream wire.
ROUTES = [("/v1/llm/complete", "gpt-4o-mini"), ("/v1/llm/complete", "claude-haiku-4-5"),
          ("/v1/chat/completions", "gpt-4o-mini"), ("/v1/messages", "claude-haiku-4-5")]
ROUTE_IDS = ["native-openai", "native-anthropic", "openai-compat", "anthropic-compat"]


def body(path: str, model: str, stream: bool = False) -> dict:
    """A minimal valid request body for each endpoint."""
    if path == "/v1/messages":
        return {"model": model, "max_tokens": 50, "messages": HELLO, "stream": stream}
    return {"model": model, "messages": HELLO, "stream": stream, "max_tokens": 50}


def ask(client, account, path="/v1/llm/complete", model="gpt-4o-mini", stream=False):
    return client.post(path, json=body(path, model, stream), headers=account.headers)


def records(app) -> list[UsageRecord]:
    with app.app_context():
        return db.session.execute(select(UsageRecord).order_by(UsageRecord.id)).scalars().all()


def assert_envelope(response, status: int, error_type: str) -> dict:
    """The gateway's envelope, or on /v1/messages Anthropic's, carrying the gateway's type as gateway_type."""
    body = response.get_json()
    error = body["error"]
    if body.get("type") == "error":
        assert body["request_id"] == response.headers["X-Request-ID"]
        assert (response.status_code, error.get("gateway_type", error["type"])) == (status, error_type), error
        return error
    assert (response.status_code, error["type"]) == (status, error_type), error
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


def assert_still_serves(app, client, account, fake_upstream) -> None:
    """The next ordinary request succeeds and the books balance."""
    fake_upstream.reset()
    response = ask(client, account)
    assert response.status_code == 200, response.get_json()
    assert counters_match_audit(app) == []


# --- the upstream misbehaves --------------------------------------------------------------------------

UPSTREAM_FAULTS = {
    "timeout": (Behavior(delay_s=2), 504, "upstream_timeout"),
    "500": (Behavior(status=500, error_message="boom"), 502, "upstream_error"),
    "502": (Behavior(status=502), 502, "upstream_error"),
    "503": (Behavior(status=503), 502, "upstream_error"),
    "429-retry-after": (Behavior(status=429, retry_after=7, error_message="slow down"), 429,
                        "upstream_rate_limited"),
    "529-overloaded": (Behavior(status=529, error_type="overloaded_error", error_message="Overloaded"), 502,
                       "upstream_error"),
    "malformed-json": (Behavior(malformed=True), 502, "upstream_error"),
}


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("fault", sorted(UPSTREAM_FAULTS))
def test_upstream_fault_is_mapped_billed_by_rule_and_survived(app_factory, admin_headers, fake_upstream, fault,
                                                             route):
    """Error statuses are refusals and cost nothing; a read timeout or an unreadable answer came after the
    upstream had the prompt, and the prompt estimate is billed (BILL_FAILED_UPSTREAM=prompt)."""
    behavior, status, error_type = UPSTREAM_FAULTS[fault]
    app = app_factory(UPSTREAM_TIMEOUT_S="1")
    client = app.test_client()
    account = create_account(client, admin_headers)
    fake_upstream.enqueue(behavior)
    response = ask(client, account, *route)
    error = assert_envelope(response, status, error_type)
    assert fake_upstream.hits == 1  # UPSTREAM_MAX_RETRIES=0 here: exactly one attempt
    if fault == "429-retry-after":
        assert response.headers["Retry-After"] == "7"
    if fault[0].isdigit():
        assert error["upstream_status"] == int(fault[:3])
    assert "sk-" not in json.dumps(error)
    [record] = records(app)
    if fault in ("timeout", "malformed-json"):
        assert (record.status, record.counted, record.http_status, record.billing_rule) == \
            ("upstream_error", True, status, "failed_prompt")
        assert record.prompt_tokens == 10 and record.completion_tokens == 0 and record.cost_nanousd > 0  # 3 + 4 + 3
    else:
        assert (record.status, record.counted, record.cost_nanousd, record.http_status, record.billing_rule) == \
            ("upstream_error", False, 0, status, "refused")
    assert_still_serves(app, client, account, fake_upstream)


def test_upstream_5xx_and_429_are_retried_before_the_first_byte(app_factory, admin_headers, fake_upstream):
    """With retries on, a 503 and then a 429 (retry-after: 1) are retried; one request, billed once."""
    app = app_factory(UPSTREAM_MAX_RETRIES=2)
    client = app.test_client()
    account = create_account(client, admin_headers)
    fake_upstream.enqueue(Behavior(status=503), Behavior(status=429, retry_after=1),
                          Behavior(prompt_tokens=10, completion_tokens=3))
    response = ask(client, account)
    assert response.status_code == 200, response.get_json()
    assert fake_upstream.hits == 3
    [record] = records(app)
    assert (record.status, record.prompt_tokens, record.completion_tokens) == ("ok", 10, 3)
    assert counters_match_audit(app) == []


@pytest.mark.parametrize("retries", [0, 2])
def test_connection_refused(app_factory, admin_headers, fake_upstream, retries):
    port = closed_port()
    app = app_factory(OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1", ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}",
                      UPSTREAM_MAX_RETRIES=retries)
    client = app.test_client()
    account = create_account(client, admin_headers)
    for path, model in ROUTES if retries == 0 else ROUTES[:1]:  # with retries: backoff makes each ~1.5 s
        error = assert_envelope(ask(client, account, path, model), 502, "upstream_error")
        assert "connect" in error["message"] and str(port) not in error["message"]
    assert all((r.status, r.counted, r.billing_rule) == ("upstream_error", False, "not_sent") for r in records(app))
    assert counters_match_audit(app) == []
    assert ask(client, account, model="mock-1").status_code == 200  # the mock provider still serves


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_connection_reset_mid_stream_bills_what_was_delivered(app, client, account, fake_upstream, route):
    fake_upstream.enqueue(Behavior(chunks=["one ", "two ", "three ", "four"], drop_after_chunks=2))
    response = ask(client, account, *route, stream=True)
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert "one " in text and "two " in text and "three" not in text
    assert "upstream_error" in text and "broke mid-response" in text
    [record] = records(app)
    assert (record.status, record.counted, record.stream) == ("upstream_error", True, True)
    assert record.completion_tokens > 0 and record.cost_nanousd > 0
    assert_still_serves(app, client, account, fake_upstream)


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_broken_sse_before_any_output_is_a_plain_502(app, client, account, fake_upstream, route):
    """An unreadable first event: nothing was sent to the client yet, so the answer is an ordinary error;
    the upstream had accepted the prompt (200), so the prompt estimate is billed."""
    fake_upstream.enqueue(Behavior(malformed=True))
    response = ask(client, account, *route, stream=True)
    assert_envelope(response, 502, "upstream_error")
    [record] = records(app)
    assert (record.status, record.counted, record.billing_rule) == ("upstream_error", True, "failed_prompt")
    assert (record.prompt_tokens, record.completion_tokens) == (10, 0)
    assert_still_serves(app, client, account, fake_upstream)


@pytest.mark.parametrize("route", ROUTES[2:], ids=ROUTE_IDS[2:])
def test_client_disconnect_mid_stream_on_compat_endpoints(app, account, fake_upstream, live_server_factory, route):
    path, model = route
    fake_upstream.enqueue(Behavior(chunks=["word "] * 200, chunk_delay_s=0.02))
    server = live_server_factory(app)
    response = requests.post(f"{server.url}{path}", headers=account.headers, stream=True,
                             json=body(path, model, stream=True), timeout=10)
    lines = response.iter_lines()
    received = [next(lines) for _ in range(12)]
    assert any(b"word" in line for line in received)
    response.close()
    record = None
    for _ in range(100):
        [record] = records(app)
        if record.status != "pending":
            break
        time.sleep(0.1)
    assert (record.status, record.counted, record.endpoint) == \
        ("client_disconnected", True, "chat.completions" if path.endswith("completions") else "messages")
    assert 0 < record.completion_tokens < 200 and record.cost_nanousd > 0
    assert counters_match_audit(app) == []
    after = requests.post(f"{server.url}{path}", headers=account.headers, json=body(path, model), timeout=10)
    assert after.status_code == 200


# --- the database goes away ----------------------------------------------------------------------------

class TcpProxy:
    """A tiny TCP forwarder on 127.0.0.1: stop() refuses new connections and cuts every open one;
    start() listens on the same port again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = closed_port()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            self._thread.join(timeout=2)  # the accept loop lets go of the socket first, so start() can rebind
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class PostgresOutage:
    """PostgreSQL reached through a TcpProxy: down = the proxy stopped (refused, connections cut)."""

    name = "postgresql"
    readiness_when_down = 503

    def __init__(self, server_url: str) -> None:
        parts = urlsplit(server_url)
        self.proxy = TcpProxy(parts.hostname, parts.port or 5432).start()
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.proxy.port}"
        self.url = urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))

    def begin(self) -> None:
        self.proxy.stop()

    def end(self) -> None:
        self.proxy.start()

    def close(self) -> None:
        self.proxy.stop()


class SqliteOutage:
    """SQLite write-locked by another connection (a stuck sqlite3 shell, a backup): writes time out.

    Reads still work in WAL mode, so readiness (which reads) stays 200; requests, which must write
    their reservation, get 503. Root ignores file permissions, so an unreadable file cannot be staged.
    """

    name = "sqlite"
    readiness_when_down = 200

    def __init__(self, path) -> None:
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self._locker: sqlite3.Connection | None = None

    def begin(self) -> None:
        self._locker = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        self._locker.execute("BEGIN IMMEDIATE")

    def end(self) -> None:
        if self._locker is not None:
            self._locker.execute("ROLLBACK")
            self._locker.close()
            self._locker = None

    close = end


@pytest.fixture(params=["sqlite", "postgresql"])
def outage(request, tmp_path, monkeypatch):
    """A backend we can take away and give back; SQLite waits 0.3 s (not 30 s) for a lock here."""
    monkeypatch.setattr(gateway.database, "SQLITE_BUSY_TIMEOUT_MS", 300)
    if request.param == "sqlite":
        result = SqliteOutage(tmp_path / "gateway.db")
    else:
        result = PostgresOutage(request.getfixturevalue("session_postgres_url"))
    yield result
    result.close()


@pytest.fixture
def outage_app(outage, fake_upstream):
    fake_upstream.reset()
    app = make_app(base_config(outage.url, fake_upstream))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_database_unavailable_is_503_sends_nothing_charges_nothing_and_recovers(
        outage, outage_app, admin_headers, fake_upstream, caplog):
    app, client = outage_app, outage_app.test_client()
    account = create_account(client, admin_headers)
    assert ask(client, account).status_code == 200
    sent = fake_upstream.hits
    outage.begin()
    try:
        for path, model in ROUTES:
            for stream in (False, True):
                response = ask(client, account, path, model, stream)
                error = assert_envelope(response, 503, "service_unavailable")
                assert error["code"] == "database_unavailable" and response.headers["Retry-After"] == "5"
        created = client.post("/admin/users", json={"name": "B", "email": "b@example.com"}, headers=admin_headers)
        assert_envelope(created, 503, "service_unavailable")
        assert client.get("/health").status_code == 200
        assert client.get("/health/ready").status_code == outage.readiness_when_down
    finally:
        outage.end()
    assert fake_upstream.hits == sent  # nothing went upstream while the database was away
    assert "database unavailable" in caplog.text and "Traceback" not in caplog.text
    assert client.get("/health/ready").status_code == 200
    assert_still_serves(app, client, account, fake_upstream)
    assert [r.status for r in records(app)] == ["ok", "ok"]
    with app.app_context():
        assert db.session.execute(select(User.email)).scalars().all() == ["ada@example.com"]


def test_sqlite_writers_queued_in_process_still_time_out_together(tmp_path, monkeypatch, fake_upstream,
                                                                   admin_headers):
    """SQLite's ledger transactions queue on an in-process lock (gateway/request_db.py:ledger_turn) rather than
    poll SQLite's. The queue waits no longer than SQLite itself would: with the database write-locked from
    outside, eight requests at once all get their 503 about when one would, not one timeout after another."""
    # 1 s, not the 0.3 s of the other outage tests: one after another is then 8 s against ~2 s together, a
    # margin a pause of the loaded test process cannot eat (seen once in the whole suite: 1.5 s in which none of
    # the eight moved).
    monkeypatch.setattr(gateway.database, "SQLITE_BUSY_TIMEOUT_MS", 1000)
    outage = SqliteOutage(tmp_path / "gateway.db")
    fake_upstream.reset()
    app = make_app(base_config(outage.url, fake_upstream))
    account = create_account(app.test_client(), admin_headers)
    assert ask(app.test_client(), account).status_code == 200  # the key's last use is recorded: no write at auth
    outage.begin()
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda _: ask(app.test_client(), account), range(8)))
        took = time.monotonic() - started
    finally:
        outage.end()
    for response in responses:
        assert_envelope(response, 503, "service_unavailable")
    assert took < 8 * 1.0 * 0.75, took  # one after another: 8 x 1 s
    assert_still_serves(app, app.test_client(), account, fake_upstream)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_reservation_failure_sends_nothing_upstream(outage, outage_app, admin_headers, fake_upstream):
    """The database fails exactly at the quota reservation (after authentication): 503, no upstream call."""
    app, client = outage_app, outage_app.test_client()
    account = create_account(client, admin_headers)
    assert ask(client, account).status_code == 200  # warm: key verified, last_used_at fresh
    armed = threading.Event()

    def fail_at_reservation(_conn, _cursor, statement, *_args):
        # The reservation's first statement touching the concurrency slot, then the quota counters: on SQLite
        # a transaction of several, on PostgreSQL one prepared statement (gateway/ledger/postgresql.py).
        if armed.is_set() and ("USAGE_IN_FLIGHT" in statement.upper() or "DOMINION_LEDGER_ADMIT" in statement.upper()):
            armed.clear()
            outage.begin()

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", fail_at_reservation)
    fake_upstream.reset()
    armed.set()
    try:
        response = ask(client, account, "/v1/chat/completions", "gpt-4o-mini")
    finally:
        outage.end()
    assert_envelope(response, 503, "service_unavailable")
    assert not armed.is_set() and fake_upstream.hits == 0
    assert [r.status for r in records(app)] == ["ok"]
    assert_still_serves(app, client, account, fake_upstream)


# --- Redis goes away -----------------------------------------------------------------------------------

@pytest.fixture
def redis_behind_proxy(caplog):
    """A flushed Redis database reached through a TcpProxy (down = the proxy stopped), and its URL."""
    import redis

    target = urlsplit(redis_url())
    proxy = TcpProxy(target.hostname, target.port or 6379).start()
    redis.Redis.from_url(redis_url()).flushdb()
    caplog.set_level(logging.INFO)
    yield proxy, f"redis://127.0.0.1:{proxy.port}{target.path or '/0'}"
    proxy.stop()


def test_redis_outage_mid_service_limits_per_process_logs_and_recovers(app_factory, admin_headers, caplog,
                                                                       redis_behind_proxy):
    """Limits live in Redis; Redis vanishes: never a 500, still limited (from memory), logged; it comes back."""
    proxy, url = redis_behind_proxy
    client = app_factory(RATELIMIT_STORAGE_URI=url, RATE_LIMIT_MAX=3).test_client()
    account = create_account(client, admin_headers)
    models = lambda: client.get("/v1/llm/models", headers=account.headers).status_code  # noqa: E731
    assert [models(), models()] == [200, 200]
    proxy.stop()
    down = [models() for _ in range(5)]
    assert 500 not in down and down[:3] == [200, 200, 200] and down[3:] == [429, 429], down
    assert "falling back to in-memory storage" in caplog.text
    assert client.get("/health/ready").get_json()["checks"]["limiter_storage"]["status"] == "degraded"
    assert ask(client, account, model="mock-1").status_code in (200, 429)
    proxy.start()
    assert client.get("/health/ready").get_json()["checks"]["limiter_storage"]["status"] == "ok"
    deadline = time.monotonic() + 10
    while "storage recovered" not in caplog.text and time.monotonic() < deadline:
        assert client.get("/health").status_code == 200
        assert models() in (200, 429)
        time.sleep(0.2)
    assert "Rate limit storage recovered" in caplog.text


def test_redis_outage_under_completions_that_count_both_limits_at_once(app_factory, admin_headers, caplog,
                                                                       redis_behind_proxy):
    """A completion counts both limits in one Redis script once its key is verified; Redis vanishes under it:
    never a 500, still limited per process from memory, and shared again once Redis is back."""
    proxy, url = redis_behind_proxy
    client = app_factory(RATELIMIT_STORAGE_URI=url, RATE_LIMIT_MAX=3).test_client()
    account = create_account(client, admin_headers)
    complete = lambda: ask(client, account, model="mock-1").status_code  # noqa: E731
    assert [complete(), complete()] == [200, 200]  # the second: one script for both limits
    proxy.stop()
    down = [complete() for _ in range(5)]
    assert down == [200, 200, 200, 429, 429], down
    assert "falling back to in-memory storage" in caplog.text
    proxy.start()
    deadline = time.monotonic() + 10
    while "storage recovered" not in caplog.text and time.monotonic() < deadline:
        assert client.get("/health").status_code == 200
        time.sleep(0.2)
    # Back on Redis, whose window still holds the two completions counted before the outage.
    assert [complete(), complete()] == [200, 429]
