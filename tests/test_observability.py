"""/metrics, the X-Gateway-Overhead-Ms header and the gateway.access log line: in-process, and under
real gunicorn (two workers summed through PROMETHEUS_MULTIPROC_DIR; a full run's logs hold no secret)."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import create_account
from tests.deploy_support import gateway_env, gunicorn, prepare_database, wait_until
from tests.fake_upstream import Behavior

COMPLETE = "/v1/llm/complete"
METRICS_TOKEN = "metrics-token-0123456789abcdef"


def scrape(client_or_url, headers=None) -> dict:
    """{(series name, sorted label items): value} of one /metrics scrape."""
    if isinstance(client_or_url, str):
        response = requests.get(client_or_url + "/metrics", headers=headers, timeout=5)
        status, text = response.status_code, response.text
    else:
        response = client_or_url.get("/metrics", headers=headers)
        status, text = response.status_code, response.get_data(as_text=True)
    assert status == 200, f"/metrics answered {status} (is register_observability(app) in create_app?): {text}"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str) -> float:
    return sum(v for (series, _), v in samples.items() if series == name)


def ask(prompt: str, **extra) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], **extra}


def test_a_completion_shows_up_in_every_series(client, account):
    before = scrape(client)
    response = client.post(COMPLETE, json=ask("three little words"), headers=account.headers)
    assert response.status_code == 200, response.get_json()
    after = scrape(client)
    body = response.get_json()

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    model = {"provider": "openai", "model": "gpt-4o-mini"}
    assert grew("gateway_http_requests_total", method="POST", route=COMPLETE, status="200") == 1
    assert grew("gateway_http_request_duration_seconds_count", route=COMPLETE) == 1
    assert grew("gateway_overhead_seconds_count", route=COMPLETE) == 1
    assert grew("gateway_upstream_latency_seconds_count", **model) == 1
    assert grew("gateway_completions_total", status="ok", **model) == 1
    assert grew("gateway_tokens_total", kind="prompt", **model) == body["usage"]["prompt_tokens"]
    assert grew("gateway_tokens_total", kind="completion", **model) == body["usage"]["completion_tokens"]
    assert grew("gateway_cost_usd_total", **model) == pytest.approx(body["cost_usd"])
    assert ("gateway_streams_in_flight", ()) in after


def test_a_stream_is_counted_when_it_ends(client, account):
    before = scrape(client)
    response = client.post(COMPLETE, json=ask("stream it", stream=True), headers=account.headers)
    assert b"event: done" in response.get_data()
    response.close()
    after = scrape(client)
    assert value(after, "gateway_http_requests_total", method="POST", route=COMPLETE, status="200") - \
        value(before, "gateway_http_requests_total", method="POST", route=COMPLETE, status="200") == 1
    assert value(after, "gateway_streams_in_flight") == value(before, "gateway_streams_in_flight")


def test_rate_limit_refusals_are_counted(client, admin_headers):
    limited = create_account(client, admin_headers, email="rl@example.com", rate_limit_max=1)
    before = scrape(client)
    assert [client.get("/v1/llm/models", headers=limited.headers).status_code for _ in range(2)] == [200, 429]
    after = scrape(client)
    assert value(after, "gateway_rate_limited_total", scope="user") - \
        value(before, "gateway_rate_limited_total", scope="user") == 1


def test_quota_refusals_are_counted(client, admin_headers):
    capped = create_account(client, admin_headers, email="quota@example.com", daily_requests=1)
    assert client.post(COMPLETE, json=ask("one"), headers=capped.headers).status_code == 200
    before = scrape(client)
    refused = client.post(COMPLETE, json=ask("two"), headers=capped.headers)
    assert refused.get_json()["error"]["type"] == "quota_exceeded"
    assert total(scrape(client), "gateway_quota_rejected_total") - total(before, "gateway_quota_rejected_total") == 1


def test_metrics_token_is_enforced(app_factory):
    client = app_factory(METRICS_TOKEN=METRICS_TOKEN).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.get_json()["error"]["code"] == "invalid_metrics_token"
    allowed = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert allowed.status_code == 200
    assert allowed.content_type.startswith("text/plain")
    assert "gateway_http_requests_total" in allowed.get_data(as_text=True)


def test_metrics_is_not_rate_limited(app_factory):
    client = app_factory(IP_RATE_LIMIT_MAX=1).test_client()
    assert [client.get("/metrics").status_code for _ in range(3)] == [200, 200, 200]


def test_overhead_header_excludes_upstream_time(client, account, fake_upstream):
    client.post(COMPLETE, json=ask("warm the key cache"), headers=account.headers)
    upstream_delay_ms = 500
    fake_upstream.enqueue(Behavior(delay_s=upstream_delay_ms / 1000))
    started = time.perf_counter()
    response = client.post(COMPLETE, json=ask("slow upstream"), headers=account.headers)
    wall_ms = (time.perf_counter() - started) * 1000
    assert response.status_code == 200
    overhead_ms = float(response.headers["X-Gateway-Overhead-Ms"])
    assert 0 <= overhead_ms <= wall_ms - upstream_delay_ms
    assert float(client.get("/health").headers["X-Gateway-Overhead-Ms"]) >= 0


@pytest.fixture
def access_records():
    """Records of logger gateway.access, caught on that logger: in this process an earlier app may have
    turned propagation off, and Alembic's fileConfig (migration tests) disables existing loggers."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("gateway.access")
    logger.addHandler(handler)
    level, disabled = logger.level, logger.disabled
    logger.setLevel(logging.INFO)
    logger.disabled = False
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)
    logger.disabled = disabled


def test_one_access_line_per_request_with_caller_and_no_key(client, account, access_records):
    response = client.post(COMPLETE, json=ask("log me"), headers=account.headers)
    request_id = response.headers["X-Request-ID"]
    lines = [r for r in access_records if r.request_id == request_id]
    assert len(lines) == 1
    line = lines[0]
    assert (line.route, line.method, line.status, line.user_id) == (COMPLETE, "POST", 200, account.user_id)
    assert account.api_key.startswith(line.key_prefix + "_")
    assert line.latency_ms >= line.overhead_ms >= 0
    assert account.api_key not in json.dumps(vars(line), default=str)


def test_two_gunicorn_workers_report_one_sum(tmp_path, fake_upstream):
    db_path = tmp_path / "gateway.db"
    prepare_database(db_path, fake_upstream)
    metrics_dir = tmp_path / "prometheus"
    env = gateway_env(db_path, fake_upstream, WEB_CONCURRENCY=2, GUNICORN_THREADS=1,
                      PROMETHEUS_MULTIPROC_DIR=metrics_dir)
    with gunicorn(env, tmp_path / "gunicorn.out") as server:
        sent = 0

        def hit(_):
            return requests.get(server.url + "/health", headers={"Connection": "close"}, timeout=5).status_code

        def both_workers_served() -> bool:
            return len({path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}) >= 2

        deadline = time.monotonic() + 15  # the second worker may still be loading the app
        with ThreadPoolExecutor(8) as pool:
            while sent == 0 or (not both_workers_served() and time.monotonic() < deadline):
                assert set(pool.map(hit, range(16))) == {200}
                sent += 16
        assert both_workers_served(), "every request went to one worker"
        samples = scrape(server.url)
    assert value(samples, "gateway_http_requests_total", method="GET", route="/health", status="200") == sent


def test_logs_of_a_full_run_hold_no_key_and_no_prompt(tmp_path, fake_upstream):
    db_path = tmp_path / "gateway.db"
    account = prepare_database(db_path, fake_upstream)
    prompt = "the pelican recites zebra-mango-7761 at dawn"
    wrong_key = account.api_key[:-6] + "WRONG0"
    env = gateway_env(db_path, fake_upstream, GUNICORN_ACCESS_LOG="-")
    with gunicorn(env, tmp_path / "gunicorn.out") as server:
        url = server.url + COMPLETE + "?note=zebra-mango-7761"
        sent = {}

        def send(name, body, headers=None, **kwargs):
            response = requests.post(url, json=body, headers=headers or account.headers, timeout=10, **kwargs)
            response.content  # noqa: B018 - read the whole stream
            sent[name] = (response.headers["X-Request-ID"], response.status_code)

        send("completion", ask(prompt))
        fake_upstream.enqueue(Behavior(chunks=["a ", "b"], chunk_delay_s=0.05))
        send("stream", ask(prompt, stream=True), stream=True)
        fake_upstream.enqueue(Behavior(status=500))
        send("upstream_error", ask(prompt))
        send("invalid", {"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": prompt}]})
        send("wrong_key", ask(prompt), headers={"Authorization": f"Bearer {wrong_key}"})
        assert wait_until(lambda: sent["stream"][0] in server.log(), 5)
    log = server.log()

    assert [status for _, status in sent.values()] == [200, 200, 502, 400, 401]
    access = {entry["request_id"]: entry for entry in _json_lines(log) if entry.get("logger") == "gateway.access"}
    for request_id, status in sent.values():
        assert access[request_id]["status"] == status
    assert access[sent["stream"][0]]["stream"] is True
    assert access[sent["stream"][0]]["upstream_ms"] > 0
    for secret in (account.api_key, account.api_key.split("_", 2)[2], wrong_key, "zebra-mango-7761", "pelican",
                   "sk-test-openai-key", "sk-ant-test-key"):
        assert secret not in log


def _json_lines(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]
