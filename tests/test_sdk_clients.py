"""The official openai and anthropic packages, pointed at a running gateway: only base URL and key change."""

import anthropic
import openai
import pytest
from sqlalchemy import select

from gateway.extensions import db
from gateway.models import UsageRecord
from tests.conftest import counters_match_audit, create_account
from tests.fake_upstream import Behavior


@pytest.fixture
def gateway(app, client, admin_headers, live_server_factory):
    account = create_account(client, admin_headers)
    server = live_server_factory(app)
    return server, account


def openai_client(gateway) -> openai.OpenAI:
    server, account = gateway
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=account.api_key, max_retries=0)


def anthropic_client(gateway) -> anthropic.Anthropic:
    server, account = gateway
    return anthropic.Anthropic(base_url=server.url, api_key=account.api_key, max_retries=0)


def audit(app) -> list[UsageRecord]:
    with app.app_context():
        return db.session.execute(select(UsageRecord).order_by(UsageRecord.id)).scalars().all()


@pytest.mark.parametrize("model, provider", [("gpt-4o-mini", "openai"), ("claude-haiku-4-5", "anthropic")])
def test_openai_sdk_create(app, gateway, fake_upstream, model, provider):
    fake_upstream.enqueue(Behavior(reply="Hello from upstream", prompt_tokens=12, completion_tokens=4))
    completion = openai_client(gateway).chat.completions.create(
        model=model, messages=[{"role": "developer", "content": "Be brief."},
                               {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        max_completion_tokens=50)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Hello from upstream"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 4)
    [record] = audit(app)
    assert (record.endpoint, record.provider, record.status) == ("chat.completions", provider, "ok")
    assert counters_match_audit(app) == []


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet-4-5"])
def test_openai_sdk_stream_with_usage(app, gateway, fake_upstream, model):
    fake_upstream.enqueue(Behavior(chunks=["Foo", "!"], prompt_tokens=9, completion_tokens=2))
    stream = openai_client(gateway).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hi"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Foo!"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 11
    assert audit(app)[0].status == "ok" and audit(app)[0].stream


def test_openai_sdk_lists_models(gateway):
    ids = {m.id for m in openai_client(gateway).models.list()}
    assert {"gpt-4o", "claude-haiku-4-5", "mock-1"} <= ids


def test_both_sdks_retrieve_one_model_by_id_or_alias(gateway, client):
    model = openai_client(gateway).models.retrieve("gpt-4o")
    assert (model.id, model.object, model.owned_by) == ("gpt-4o", "model", "openai")
    assert openai_client(gateway).models.retrieve("gpt-4.1-2025-04-14").id == "gpt-4.1"  # an alias: its model
    claude = anthropic_client(gateway).models.retrieve("claude-haiku-4-5")
    assert (claude.type, claude.id, claude.display_name) == ("model", "claude-haiku-4-5", "claude-haiku-4-5")
    with pytest.raises(openai.NotFoundError) as raised:
        openai_client(gateway).models.retrieve("no-such-model")
    assert raised.value.body["code"] == "model_not_found" and raised.value.body["param"] == "model"
    assert "gpt-4o" in raised.value.body["message"]  # names what is available
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client(gateway).models.retrieve("no-such-model")
    assert client.get("/v1/models/gpt-4o").status_code == 401  # a gateway key, as for the list


def test_openai_sdk_error_classes(app, gateway, fake_upstream, admin_headers, client):
    sdk = openai_client(gateway)
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="claude-haiku-4-5", messages=[{"role": "user", "content": "x"}], n=2)
    bad = openai.OpenAI(base_url=sdk.base_url, api_key="dom_aaaaaaaaaaaa_" + "b" * 43, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    fake_upstream.enqueue(Behavior(status=429, retry_after=3, error_message="slow down"))
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    fake_upstream.enqueue(Behavior(status=500, error_message="boom"))
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])


def test_openai_sdk_quota_is_rate_limit_error(app, client, admin_headers, live_server_factory):
    account = create_account(client, admin_headers, email="q@example.com", daily_requests=0)
    server = live_server_factory(app)
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=account.api_key, max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert raised.value.body["type"] == "quota_exceeded"


@pytest.mark.parametrize("model, provider", [("claude-haiku-4-5", "anthropic"), ("gpt-4o-mini", "openai")])
def test_anthropic_sdk_create(app, gateway, fake_upstream, model, provider):
    fake_upstream.enqueue(Behavior(reply="Bonjour", prompt_tokens=15, completion_tokens=3))
    message = anthropic_client(gateway).messages.create(
        model=model, max_tokens=64, system="Answer in French.",
        messages=[{"role": "user", "content": "Hello"}])
    assert message.type == "message" and message.content[0].text == "Bonjour"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (15, 3)
    sent = fake_upstream.requests[-1]
    assert sent.path == ("/v1/messages" if provider == "anthropic" else "/v1/chat/completions")
    [record] = audit(app)
    assert (record.endpoint, record.provider) == ("messages", provider)


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gpt-4o-mini"])
def test_anthropic_sdk_stream(app, gateway, fake_upstream, model):
    fake_upstream.enqueue(Behavior(chunks=["Hel", "lo"], prompt_tokens=8, completion_tokens=2))
    with anthropic_client(gateway).messages.stream(
            model=model, max_tokens=32, messages=[{"role": "user", "content": "Hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello"
    assert final.usage.output_tokens == 2 and final.usage.input_tokens == 8
    assert final.stop_reason == "end_turn"
    assert audit(app)[0].status == "ok"


def test_anthropic_sdk_bearer_and_errors(gateway, fake_upstream):
    server, account = gateway
    bearer = anthropic.Anthropic(base_url=server.url, auth_token=account.api_key, max_retries=0)
    fake_upstream.enqueue(Behavior(reply="ok"))
    assert bearer.messages.create(model="claude-haiku-4-5", max_tokens=8,
                                  messages=[{"role": "user", "content": "x"}]).content[0].text == "ok"
    sdk = anthropic_client(gateway)
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.create(model="claude-haiku-4-5", max_tokens=8, extra_body={"temperature": 1.5},
                            messages=[{"role": "user", "content": "x"}])
    wrong = anthropic.Anthropic(base_url=server.url, api_key="dom_aaaaaaaaaaaa_" + "c" * 43, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        wrong.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    fake_upstream.enqueue(Behavior(status=429, retry_after=2, error_message="slow"))
    with pytest.raises(anthropic.RateLimitError):
        sdk.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])


def test_anthropic_sdk_counts_tokens_at_the_claude_upstream_and_bills_nothing(app, gateway, fake_upstream):
    fake_upstream.enqueue(Behavior(prompt_tokens=42))
    counted = anthropic_client(gateway).messages.count_tokens(
        model="claude-haiku-4-5", system="Be brief.", messages=[{"role": "user", "content": "Hello there"}],
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=[{"name": "lookup", "description": "Look it up.", "input_schema": {"type": "object"}}])
    assert counted.input_tokens == 42
    sent = fake_upstream.requests[-1]
    assert sent.path == "/v1/messages/count_tokens" and sent.headers["x-api-key"] != gateway[1].api_key
    assert sent.body["model"] == "claude-haiku-4-5-20251001"  # the deployment's upstream id
    assert sent.body["system"] == "Be brief."
    assert {"max_tokens", "stream", "temperature"}.isdisjoint(sent.body)  # the counting API refuses them
    assert sent.body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent.body["tools"][0]["name"] == "lookup"
    assert audit(app) == [] and counters_match_audit(app) == []  # free upstream: no audit row, no counter moved
    fake_upstream.enqueue(Behavior(status=401, error_message="invalid x-api-key"))
    with pytest.raises(anthropic.APIStatusError) as failed:  # the upstream's failure, as a completion's
        anthropic_client(gateway).messages.count_tokens(model="claude-haiku-4-5",
                                                         messages=[{"role": "user", "content": "Hi"}])
    assert failed.value.status_code == 502 and failed.value.body["error"]["type"] == "api_error"
    assert audit(app) == []


def test_count_tokens_refuses_what_cannot_be_counted(gateway, fake_upstream, client):
    sdk = anthropic_client(gateway)
    with pytest.raises(anthropic.BadRequestError) as gpt:
        sdk.messages.count_tokens(model="gpt-4o", messages=[{"role": "user", "content": "Hello"}])
    assert gpt.value.body["error"]["code"] == "count_unsupported"
    assert "gpt-4o" in gpt.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as extra:  # a Messages-only field, refused as Anthropic does
        sdk.messages.count_tokens(model="claude-haiku-4-5", messages=[{"role": "user", "content": "Hi"}],
                                  extra_body={"max_tokens": 10})
    assert "max_tokens" in extra.value.body["error"]["message"]
    assert fake_upstream.hits == 0  # neither reached an upstream
    assert client.post("/v1/messages/count_tokens", json={"model": "claude-haiku-4-5",
                                                          "messages": [{"role": "user", "content": "Hi"}]}
                       ).status_code == 401
