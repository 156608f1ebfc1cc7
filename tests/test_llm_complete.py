"""POST /v1/llm/complete through the real fake upstream (OpenAI and Anthropic) and the mock provider."""

import json

import pytest
from sqlalchemy import select

from gateway.extensions import db
from gateway.models import UsageRecord
from tests.conftest import counters_match_audit
from tests.fake_upstream import Behavior

HELLO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]


def post(client, account, **body):
    body.setdefault("messages", HELLO)
    return client.post("/v1/llm/complete", json=body, headers=account.headers)


def records(app):
    with app.app_context():
        return db.session.execute(select(UsageRecord).order_by(UsageRecord.id)).scalars().all()


def sse_events(response) -> list[tuple[str, dict]]:
    events = []
    for frame in response.get_data(as_text=True).strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


LONG = [HELLO[0], {"role": "user", "content": "Say hello. " + "Lorem ipsum dolor sit amet. " * 40}]


def test_openai_completion_shape_cost_and_upstream_request(app, client, account, fake_upstream):
    # 1000 prompt tokens are within what this 1,130-byte prompt can cost (one token per byte at most).
    fake_upstream.enqueue(Behavior(reply="Hello!", prompt_tokens=1000, completion_tokens=500, cached_tokens=200))
    response = post(client, account, model="gpt-4o", temperature=0.2, max_tokens=600, messages=LONG)
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["id"] == response.headers["X-Request-ID"]
    assert (body["provider"], body["model"], body["content"], body["finish_reason"]) == \
        ("openai", "gpt-4o", "Hello!", "stop")
    assert body["usage"] == {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
                             "cached_tokens": 200}
    # 800 x $2.50 + 200 x $1.25 + 500 x $10.00 per 1M = 0.002 + 0.00025 + 0.005
    assert body["cost_usd"] == 0.00725
    sent = fake_upstream.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == "Bearer sk-test-openai-key"
    assert sent.body["model"] == "gpt-4o" and sent.body["max_completion_tokens"] == 600
    assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
    [record] = records(app)
    assert (record.status, record.cost_nanousd, record.prompt_tokens, record.cached_tokens) == \
        ("ok", 7_250_000, 1000, 200)
    assert record.price_snapshot["input"] == "2.50"
    assert (record.billing_rule, record.reserved_prompt_tokens) == ("usage", len("Be brief.") + len(LONG[1]["content"]) + 2 * 8 + 8)
    assert counters_match_audit(app) == []


def test_usage_above_the_worst_case_is_charged_at_the_reservation(app, client, account, fake_upstream):
    """An upstream billing more than one token per prompt byte (outside the contract) cannot push spend
    past a cap: settlement charges at most what was reserved, and says so."""
    fake_upstream.enqueue(Behavior(reply="Hello!", prompt_tokens=1000, completion_tokens=500, cached_tokens=200))
    response = post(client, account, model="gpt-4o", max_tokens=600)
    reserved_prompt = len("Be brief.") + len("Say hello") + 2 * 8 + 8  # 42: the byte bound of HELLO
    assert response.status_code == 200
    assert response.get_json()["cost_usd"] == 0.006105  # 42 x $2.50 + 600 x $10.00 per 1M, not $0.00725
    [record] = records(app)
    assert (record.billing_rule, record.prompt_tokens, record.completion_tokens, record.cost_nanousd) == \
        ("usage_capped", reserved_prompt, 500, 6_105_000)
    assert record.cost_nanousd == record.reserved_cost_nanousd
    assert counters_match_audit(app) == []


def test_anthropic_completion_moves_system_to_top_level(app, client, account, fake_upstream):
    fake_upstream.enqueue(Behavior(reply="Hi there", prompt_tokens=20, completion_tokens=4))
    response = post(client, account, model="claude-haiku-4-5", max_tokens=50)
    body = response.get_json()
    assert response.status_code == 200, body
    assert (body["provider"], body["content"], body["finish_reason"]) == ("anthropic", "Hi there", "stop")
    sent = fake_upstream.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.body["system"] == "Be brief."
    assert sent.body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert sent.body["max_tokens"] == 50
    assert sent.headers["x-api-key"] == "sk-ant-test-key"
    # 20 x $1 + 4 x $5 per 1M
    assert body["cost_usd"] == 0.00004


def test_missing_model_uses_default_model(client, account, fake_upstream):
    response = post(client, account)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["model"] == "gpt-4o-mini"


def test_mock_provider_without_any_key(app_factory, admin_headers):
    from tests.conftest import create_account

    app = app_factory(OPENAI_API_KEY="", ANTHROPIC_API_KEY="")
    client = app.test_client()
    account = create_account(client, admin_headers)
    response = post(client, account, model="mock-1")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["provider"] == "mock" and body["content"] and body["usage"]["completion_tokens"] > 0
    unavailable = post(client, account, model="gpt-4o")
    assert unavailable.status_code == 400
    assert "mock-1" in unavailable.get_json()["error"]["message"]


def test_unknown_model_lists_available_models_and_stores_nothing(app, client, account):
    response = post(client, account, model="gpt-9-ultra")
    error = response.get_json()["error"]
    assert response.status_code == 400
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert "gpt-4o" in error["message"] and "claude-haiku-4-5" in error["message"]
    assert records(app) == []


def test_provider_mismatch_is_400(client, account):
    response = post(client, account, model="gpt-4o", provider="anthropic")
    assert response.status_code == 400
    assert response.get_json()["error"]["param"] == "provider"


def test_anthropic_temperature_above_one_is_400_before_upstream(app, client, account, fake_upstream):
    response = post(client, account, model="claude-haiku-4-5", temperature=1.5)
    assert response.status_code == 400
    assert response.get_json()["error"]["param"] == "temperature"
    assert fake_upstream.requests == [] and records(app) == []


@pytest.mark.parametrize("body, param", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
    ({"messages": HELLO, "temperature": "hot"}, "temperature"),
    ({"messages": HELLO, "max_tokens": 0}, "max_tokens"),
    ({"messages": HELLO, "max_tokens": True}, "max_tokens"),
    ({"messages": HELLO, "stream": "yes"}, "stream"),
    ({"messages": HELLO, "surprise": 1}, "surprise"),
])
def test_invalid_bodies_name_the_field(app, client, account, body, param):
    response = client.post("/v1/llm/complete", json=body, headers=account.headers)
    error = response.get_json()["error"]
    assert response.status_code == 400
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error
    assert records(app) == []


def test_max_tokens_above_model_limit_is_400(client, account):
    response = post(client, account, model="gpt-4o", max_tokens=10**6)
    assert response.status_code == 400
    assert response.get_json()["error"]["param"] == "max_tokens"


def test_native_stream_events_usage_and_cost(app, client, account, fake_upstream):
    fake_upstream.enqueue(Behavior(chunks=["Hel", "lo", "!"], prompt_tokens=10, completion_tokens=3))
    response = post(client, account, model="gpt-4o-mini", stream=True)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["X-Accel-Buffering"] == "no"
    events = sse_events(response)
    assert events[0][0] == "start" and events[0][1]["model"] == "gpt-4o-mini"
    assert [data["content"] for name, data in events if name == "delta"] == ["Hel", "lo", "!"]
    name, done = events[-1]
    assert name == "done"
    assert done["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    assert done["finish_reason"] == "stop"
    assert done["cost_usd"] == 0.0000033  # 10 x 0.15 + 3 x 0.60 per 1M
    assert fake_upstream.requests[-1].body["stream_options"] == {"include_usage": True}
    [record] = records(app)
    assert (record.status, record.stream, record.cost_nanousd) == ("ok", True, 3300)
    assert counters_match_audit(app) == []


def test_anthropic_stream(client, account, fake_upstream):
    fake_upstream.enqueue(Behavior(chunks=["A", "B"], prompt_tokens=7, completion_tokens=2))
    events = sse_events(post(client, account, model="claude-sonnet-4-5", stream=True))
    assert [d["content"] for n, d in events if n == "delta"] == ["A", "B"]
    assert events[-1][1]["usage"]["total_tokens"] == 9


@pytest.mark.parametrize("behavior, status, error_type", [
    (Behavior(status=500, error_message="boom"), 502, "upstream_error"),
    (Behavior(status=529, error_type="overloaded_error", error_message="Overloaded"), 502, "upstream_error"),
    (Behavior(status=429, retry_after=7, error_message="slow down"), 429, "upstream_rate_limited"),
    (Behavior(status=400, error_message="bad param"), 400, "invalid_request_error"),
    (Behavior(delay_s=3), 504, "upstream_timeout"),
])
def test_upstream_failures_are_mapped_and_billed_by_rule(app_factory, admin_headers, fake_upstream,
                                                        behavior, status, error_type):
    """An error status is a refusal (free); a read timeout happened after the upstream had the prompt,
    which is billed (BILL_FAILED_UPSTREAM=prompt, the default)."""
    from tests.conftest import create_account

    app = app_factory(UPSTREAM_TIMEOUT_S="1")
    client = app.test_client()
    account = create_account(client, admin_headers)
    fake_upstream.enqueue(behavior)
    response = post(client, account, model="claude-haiku-4-5")
    error = response.get_json()["error"]
    assert (response.status_code, error["type"]) == (status, error_type), error
    if status == 429:
        assert response.headers["Retry-After"] == "7"
    [record] = records(app)
    if status == 504:
        assert (record.status, record.counted, record.billing_rule) == ("upstream_error", True, "failed_prompt")
        # Be brief. / Say hello: ceil(9 / 3) + 4 twice, + 3 (the ordinary-text estimate, not the bound)
        assert (record.prompt_tokens, record.completion_tokens, record.cost_nanousd) == (17, 0, 17 * 1000)
    else:
        assert (record.status, record.counted, record.cost_nanousd, record.billing_rule) == \
            ("upstream_error", False, 0, "refused")
    assert counters_match_audit(app) == []


def test_error_event_when_upstream_fails_mid_stream(app, client, account, fake_upstream):
    fake_upstream.enqueue(Behavior(chunks=["one ", "two ", "three"], error_midstream=True))
    response = post(client, account, model="gpt-4o-mini", stream=True)
    events = sse_events(response)
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "upstream_error"
    [record] = records(app)
    assert record.status == "upstream_error" and record.counted and record.completion_tokens > 0
    assert counters_match_audit(app) == []


def test_models_listing(client, account):
    response = client.get("/v1/llm/models", headers=account.headers)
    models = {m["id"]: m for m in response.get_json()["data"]}
    assert response.status_code == 200
    assert models["gpt-4o"]["available"] is True
    assert models["gpt-4o"]["pricing"]["input_per_1m"] == 2.5
    assert models["claude-opus-4-5"]["max_output_tokens"] == 64000
    assert {"id", "provider", "available", "context_window", "max_output_tokens", "pricing"} <= set(models["o3"])
