"""The official anthropic SDK on /v1/messages, against a Claude and a GPT model: tool round trips (plain and
streamed, parallel, every tool_choice), images, documents, thinking, structured output, Claude-only fields,
Anthropic's error envelope, stop_sequence and message_start's input tokens."""

from __future__ import annotations

import json

import anthropic
import pytest

from tests.compat_support import (ANTHROPIC_TOOLS, CLAUDE, CLAUDE_UPSTREAM, GPT, IMAGE_URL, MODELS, OPENAI_TOOLS,
                                  PNG_B64, PNG_DATA_URL, anthropic_sdk, audit, gateway,  # noqa: F401
                                  sent, upstream_path)
from tests.conftest import counters_match_audit, create_account
from tests.fake_upstream import Behavior

ASK = [{"role": "user", "content": "Weather in Paris and Tokyo time?"}]


@pytest.mark.parametrize("model", MODELS)
def test_tool_round_trip(app, gateway, fake_upstream, model):
    sdk = anthropic_sdk(gateway)
    fake_upstream.enqueue(Behavior(reply="Let me check.", tool_calls=[("get_weather", {"city": "Paris"})]))
    first = sdk.messages.create(model=model, max_tokens=300, system="Use tools.", messages=ASK, tools=ANTHROPIC_TOOLS)
    assert first.stop_reason == "tool_use"
    text, use = first.content
    assert (text.text, use.type, use.name, use.input) == ("Let me check.", "tool_use", "get_weather", {"city": "Paris"})
    upstream = sent(fake_upstream)
    if model == GPT:
        assert upstream["tools"] == OPENAI_TOOLS
        assert upstream["messages"][0] == {"role": "system", "content": "Use tools."}
    else:
        assert upstream["tools"] == ANTHROPIC_TOOLS
    fake_upstream.enqueue(Behavior(reply="Sunny."))
    history = ASK + [{"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"},
                                                  {"type": "text", "text": "And now?"}]}]
    second = sdk.messages.create(model=model, max_tokens=300, messages=history, tools=ANTHROPIC_TOOLS)
    assert second.content[0].text == "Sunny."
    upstream = sent(fake_upstream)
    if model == GPT:
        assert upstream["messages"][1:] == [
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": use.id, "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
            {"role": "tool", "tool_call_id": use.id, "content": "sunny"},
            {"role": "user", "content": "And now?"}]
    else:
        assert upstream["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": use.id,
                                                         "content": "sunny"}
    assert counters_match_audit(app) == []


@pytest.mark.parametrize("model", MODELS)
def test_streamed_parallel_tool_use(app, gateway, fake_upstream, model):
    fake_upstream.enqueue(Behavior(tool_calls=[("get_weather", {"city": "Paris"}), ("get_time", {"zone": "JST"})],
                                   prompt_tokens=21, completion_tokens=14))
    with anthropic_sdk(gateway).messages.stream(model=model, max_tokens=300, messages=ASK,
                                                tools=ANTHROPIC_TOOLS) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert [(b.type, b.name, b.input) for b in final.content] == [
        ("tool_use", "get_weather", {"city": "Paris"}), ("tool_use", "get_time", {"zone": "JST"})]
    assert final.stop_reason == "tool_use" and len({b.id for b in final.content}) == 2
    starts = [e for e in events if e.type == "content_block_start"]
    assert [e.index for e in starts] == [0, 1]
    assert any(e.type == "input_json" for e in events)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (21, 14)
    assert audit(app)[0].status == "ok"


CHOICES = {"auto": "auto", "any": "required", "none": "none", "tool": {"type": "function",
                                                                       "function": {"name": "get_time"}}}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("kind", sorted(CHOICES))
def test_every_tool_choice(gateway, fake_upstream, model, kind):
    choice = {"type": kind, **({"name": "get_time"} if kind == "tool" else {})}
    if kind != "none":
        choice["disable_parallel_tool_use"] = True
    anthropic_sdk(gateway).messages.create(model=model, max_tokens=100, messages=ASK, tools=ANTHROPIC_TOOLS,
                                           tool_choice=choice)
    upstream = sent(fake_upstream)
    if model == GPT:
        assert upstream["tool_choice"] == CHOICES[kind]
        assert upstream.get("parallel_tool_calls") == (None if kind == "none" else False)
    else:
        assert upstream["tool_choice"] == choice


@pytest.mark.parametrize("model", MODELS)
def test_images_base64_and_url(gateway, fake_upstream, model):
    content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
               {"type": "image", "source": {"type": "url", "url": IMAGE_URL}},
               {"type": "text", "text": "Describe both."}]
    anthropic_sdk(gateway).messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": content}])
    upstream = sent(fake_upstream)["messages"][0]["content"]
    if model == GPT:
        assert upstream == [{"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
                            {"type": "image_url", "image_url": {"url": IMAGE_URL}},
                            {"type": "text", "text": "Describe both."}]
    else:
        assert upstream == content


def test_documents_and_cache_control_reach_claude_exactly(gateway, fake_upstream):
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Paris is big."},
                "title": "Notes", "citations": {"enabled": True}, "cache_control": {"type": "ephemeral"}}
    system = [{"type": "text", "text": "Cite sources.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    tools = [{**ANTHROPIC_TOOLS[0], "cache_control": {"type": "ephemeral"}}]
    anthropic_sdk(gateway).messages.create(
        model=CLAUDE, max_tokens=100, system=system, tools=tools, extra_body={"top_k": 5}, metadata={"user_id": "u-9"},
        service_tier="standard_only", messages=[{"role": "user", "content": [document, {"type": "text",
                                                                                       "text": "How big?"}]}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"})
    upstream = sent(fake_upstream)
    assert upstream["system"] == system and upstream["tools"] == tools
    assert upstream["messages"][0]["content"][0] == document
    assert (upstream["top_k"], upstream["metadata"], upstream["service_tier"]) == (5, {"user_id": "u-9"},
                                                                                   "standard_only")
    assert fake_upstream.requests[-1].headers["anthropic-beta"] == "context-1m-2025-08-07"


def test_claude_only_fields_for_gpt_are_translated_or_refused_by_name(app, gateway, fake_upstream):
    sdk = anthropic_sdk(gateway)
    sdk.messages.create(model=GPT, max_tokens=100, metadata={"user_id": "u-9"}, stop_sequences=["END"],
                        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
                        messages=ASK)
    upstream = sent(fake_upstream)
    assert (upstream["safety_identifier"], upstream["stop"]) == ("u-9", ["END"])
    assert upstream["messages"][0] == {"role": "system", "content": "Be brief."}
    for field, value, param in [("top_k", 5, "top_k"), ("service_tier", "auto", "service_tier")]:
        with pytest.raises(anthropic.BadRequestError) as raised:
            sdk.messages.create(model=GPT, max_tokens=100, messages=ASK, extra_body={field: value})
        assert param in raised.value.body["error"]["message"]
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
    with pytest.raises(anthropic.BadRequestError, match="document"):
        sdk.messages.create(model=GPT, max_tokens=100, messages=[{"role": "user", "content": [document]}])


def test_thinking_reaches_claude_and_comes_back_with_its_signature(gateway, fake_upstream):
    fake_upstream.enqueue(Behavior(reply="42", thinking="Six sevens."))
    message = anthropic_sdk(gateway).messages.create(
        model=CLAUDE, max_tokens=3000, messages=[{"role": "user", "content": "6*7?"}],
        thinking={"type": "enabled", "budget_tokens": 1024})
    assert sent(fake_upstream)["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    thinking, text = message.content
    assert (thinking.type, thinking.thinking, text.text) == ("thinking", "Six sevens.", "42")
    assert thinking.signature


def test_thinking_streams_with_its_signature(gateway, fake_upstream):
    fake_upstream.enqueue(Behavior(reply="42", thinking="Six sevens."))
    with anthropic_sdk(gateway).messages.stream(model=CLAUDE, max_tokens=3000, messages=ASK,
                                                thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds
    assert final.content[0].type == "thinking" and final.content[0].signature and final.content[1].text == "42"


def test_thinking_for_gpt_models(gateway, fake_upstream):
    sdk = anthropic_sdk(gateway)
    sdk.messages.create(model="o4-mini", max_tokens=9000, messages=ASK,
                        thinking={"type": "enabled", "budget_tokens": 8000})
    assert sent(fake_upstream)["reasoning_effort"] == "medium"
    with pytest.raises(anthropic.BadRequestError, match="thinking"):
        sdk.messages.create(model=GPT, max_tokens=9000, messages=ASK,
                            thinking={"type": "enabled", "budget_tokens": 8000})
    sdk.messages.create(model=GPT, max_tokens=100, messages=ASK, thinking={"type": "disabled"})


@pytest.mark.parametrize("model", MODELS)
def test_structured_output(gateway, fake_upstream, model):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    message = anthropic_sdk(gateway).messages.create(
        model=model, max_tokens=100, messages=ASK, output_config={"format": {"type": "json_schema", "schema": schema}})
    assert json.loads(message.content[0].text) == {"city": "Paris"}
    upstream = sent(fake_upstream)
    if model == GPT:
        assert upstream["response_format"] == {"type": "json_schema",
                                               "json_schema": {"name": "response", "schema": schema}}
    else:
        assert upstream["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


@pytest.mark.parametrize("model", MODELS)
def test_stop_sequence_and_input_tokens_in_message_start(gateway, fake_upstream, model):
    fake_upstream.enqueue(Behavior(reply="one two", stop_sequence="END", prompt_tokens=17, completion_tokens=2))
    with anthropic_sdk(gateway).messages.stream(model=model, max_tokens=50, messages=ASK,
                                                stop_sequences=["END"]) as stream:
        start = next(e for e in stream if e.type == "message_start")
        final = stream.get_final_message()
    # Claude's own count from its message_start; for GPT (which reports usage only at the end) the estimate.
    assert start.message.usage.input_tokens == 17 if model == CLAUDE else start.message.usage.input_tokens > 0
    if model == CLAUDE:
        assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "END")
    assert final.usage.input_tokens == 17


def test_errors_use_anthropics_envelope_and_types(app, client, admin_headers, gateway, fake_upstream):
    sdk = anthropic_sdk(gateway)
    with pytest.raises(anthropic.BadRequestError) as raised:
        sdk.messages.create(model=CLAUDE, max_tokens=10, messages=ASK, extra_body={"frobnicate": 1})
    assert raised.value.body == {"type": "error", "request_id": raised.value.body["request_id"],
                                 "error": {"type": "invalid_request_error", "code": "invalid_field",
                                           "message": "frobnicate: Unknown field."}}
    fake_upstream.enqueue(Behavior(status=429, retry_after=2, error_message="slow"))
    with pytest.raises(anthropic.RateLimitError) as raised:
        sdk.messages.create(model=CLAUDE, max_tokens=10, messages=ASK)
    assert raised.value.body["error"]["type"] == "rate_limit_error"
    fake_upstream.enqueue(Behavior(status=500))
    with pytest.raises(anthropic.InternalServerError) as raised:
        sdk.messages.create(model=CLAUDE, max_tokens=10, messages=ASK)
    assert raised.value.body["error"]["type"] == "api_error"
    server, _ = gateway
    quota = create_account(client, admin_headers, email="q@example.com", daily_requests=0)
    limited = anthropic.Anthropic(base_url=server.url, api_key=quota.api_key, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as raised:
        limited.messages.create(model=CLAUDE, max_tokens=10, messages=ASK)
    assert (raised.value.body["error"]["type"], raised.value.body["error"]["gateway_type"]) == \
        ("rate_limit_error", "quota_exceeded")


def test_mid_stream_error_event_is_anthropics(gateway, fake_upstream):
    fake_upstream.enqueue(Behavior(chunks=["a ", "b"], error_midstream=True))
    with pytest.raises(anthropic.APIStatusError) as raised:
        with anthropic_sdk(gateway).messages.stream(model=CLAUDE, max_tokens=10, messages=ASK) as stream:
            list(stream)
    assert raised.value.body["error"]["type"] == "api_error"


@pytest.mark.parametrize("model", MODELS)
def test_upstream_path_matches_model(gateway, fake_upstream, model):
    anthropic_sdk(gateway).messages.create(model=model, max_tokens=10, messages=ASK)
    assert fake_upstream.requests[-1].path == upstream_path(model)
    if model == CLAUDE:
        assert sent(fake_upstream)["model"] == CLAUDE_UPSTREAM
