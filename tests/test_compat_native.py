"""/v1/llm/complete takes tools, images and response_format in neutral terms; the reservation bound counts
tool schemas, images and every choice; one-hour cache writes are priced; Claude streams translate with
correct block indexes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from gateway.formats import anthropic_wire, openai_wire
from gateway.providers.base import (ChatChunk, ChatRequest, ImagePart, Message, TextPart, ThinkingDelta,
                                    ToolCallDelta, ToolSpec, Usage)
from gateway.services.catalog import ModelCatalog
from gateway.services.completion_io import StreamDelta, StreamEnd, StreamStart
from gateway.services.pricing import cost_nanousd, estimate_prompt_tokens
from tests.compat_support import CLAUDE, GPT, PNG_B64, WEATHER_SCHEMA, audit, sent
from tests.fake_upstream import Behavior

TOOLS = [{"name": "get_weather", "description": "Weather in a city", "parameters": WEATHER_SCHEMA}]


def post(client, account, **body):
    return client.post("/v1/llm/complete", json=body, headers=account.headers)


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_native_tool_round_trip(client, account, fake_upstream, model):
    fake_upstream.enqueue(Behavior(tool_calls=[("get_weather", {"city": "Paris"})]), Behavior(reply="Sunny."))
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    first = post(client, account, model=model, messages=ask, tools=TOOLS, tool_choice="auto")
    body = first.get_json()
    assert first.status_code == 200, body
    [call] = body["tool_calls"]
    assert (body["finish_reason"], call["name"], json.loads(call["arguments"])) == \
        ("tool_calls", "get_weather", {"city": "Paris"})
    history = ask + [{"role": "assistant", "content": [{"type": "tool_call", **call}]},
                     {"role": "tool", "content": [{"type": "tool_result", "tool_call_id": call["id"],
                                                   "content": "sunny"}]}]
    second = post(client, account, model=model, messages=history, tools=TOOLS)
    assert second.status_code == 200, second.get_json()
    assert second.get_json()["content"] == "Sunny."
    assert call["id"] in json.dumps(sent(fake_upstream)["messages"])


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_native_images_and_json_schema(client, account, fake_upstream, model):
    content = [{"type": "text", "text": "What is it?"}, {"type": "image", "data": PNG_B64, "media_type": "image/png"},
               {"type": "image", "url": "https://example.com/a.png"}]
    schema = {"type": "object", "properties": {"thing": {"type": "string"}}, "required": ["thing"]}
    response = post(client, account, model=model, messages=[{"role": "user", "content": content}],
                    response_format={"type": "json_schema", "schema": schema})
    assert response.status_code == 200, response.get_json()
    assert json.loads(response.get_json()["content"]) == {"thing": "Paris"}
    upstream = sent(fake_upstream)
    parts = upstream["messages"][0]["content"]
    if model == CLAUDE:
        assert parts[1]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_B64}
        assert upstream["output_config"]["format"]["schema"] == schema
    else:
        assert parts[1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}
        assert upstream["response_format"]["json_schema"]["schema"] == schema


def test_native_stream_carries_tool_call_deltas(client, account, fake_upstream):
    fake_upstream.enqueue(Behavior(tool_calls=[("get_weather", {"city": "Oslo"})]))
    response = post(client, account, model=CLAUDE, stream=True, tools=TOOLS, tool_choice="required",
                    messages=[{"role": "user", "content": "Weather?"}])
    frames = [f for f in response.get_data(as_text=True).split("\n\n") if f.startswith("event: delta")]
    deltas = [json.loads(f.split("data: ", 1)[1])["tool_call"] for f in frames]
    assert deltas[0]["name"] == "get_weather" and deltas[0]["id"]
    assert json.loads("".join(d["arguments"] for d in deltas)) == {"city": "Oslo"}
    assert sent(fake_upstream)["tool_choice"] == {"type": "any"}


def test_native_refuses_what_the_provider_cannot_do(app, client, account, fake_upstream):
    response = post(client, account, model=CLAUDE, messages=[{"role": "user", "content": "x"}], tools=TOOLS,
                    response_format={"type": "json_object"})
    assert response.status_code == 400 and response.get_json()["error"]["param"] == "response_format"
    response = post(client, account, model="mock-1", messages=[{"role": "user", "content": "x"}], tools=TOOLS)
    assert response.status_code == 400 and response.get_json()["error"]["param"] == "tools"
    assert fake_upstream.hits == 0 and audit(app) == []


# --- billing ------------------------------------------------------------------------------------------------

def asked(messages, **fields) -> ChatRequest:
    return ChatRequest(model="m", messages=tuple(messages), max_tokens=1, **fields)


def test_the_prompt_bound_counts_tool_schemas_and_images():
    plain = estimate_prompt_tokens(asked([Message("user", "hi")]))
    tool = ToolSpec("get_weather", "Weather in a city", WEATHER_SCHEMA)
    with_tool = estimate_prompt_tokens(asked([Message("user", "hi")], tools=(tool,)))
    schema_bytes = len(json.dumps({"name": tool.name, "description": tool.description,
                                   "parameters": WEATHER_SCHEMA}).encode())
    assert with_tool == plain + -(-schema_bytes // 3) + 4
    image = Message("user", (TextPart("hi"), ImagePart(url="https://example.com/a.png")))
    assert estimate_prompt_tokens(asked([image]), image_tokens=1600) == plain + 1600


def test_images_reserve_the_models_image_bound(client, account, fake_upstream, app):
    content = [{"type": "text", "text": "hi"}, {"type": "image", "url": "https://example.com/a.png"}]
    post(client, account, model=GPT, messages=[{"role": "user", "content": content}], max_tokens=10)
    post(client, account, model=CLAUDE, messages=[{"role": "user", "content": content}], max_tokens=10)
    gpt, claude = audit(app)
    assert gpt.reserved_prompt_tokens > 48169 and 1600 < claude.reserved_prompt_tokens < 2000


def test_one_hour_cache_writes_are_priced_at_their_own_rate():
    entry = ModelCatalog.load().resolve(CLAUDE)
    assert entry.cache_write_1h_price == Decimal("2.00")
    usage = Usage(prompt_tokens=1000, completion_tokens=0, cache_write_tokens=600, cache_write_1h_tokens=400)
    # 400 fresh x $1 + 200 five-minute writes x $1.25 + 400 one-hour writes x $2 per 1M tokens
    assert cost_nanousd(usage, entry) == 400_000 + 250_000 + 800_000


def test_claude_one_hour_cache_usage_is_read(client, account, fake_upstream):
    from gateway.providers.anthropic import parse_usage

    usage = parse_usage({"input_tokens": 10, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 5,
                         "output_tokens": 2, "cache_creation": {"ephemeral_5m_input_tokens": 10,
                                                                "ephemeral_1h_input_tokens": 20}})
    assert usage == Usage(prompt_tokens=45, completion_tokens=2, cached_tokens=5, cache_write_tokens=30,
                          cache_write_1h_tokens=20)


# --- stream translation, unit by unit ------------------------------------------------------------------------

class Entry:
    id, provider = "gpt-4o-mini", "openai"


def events(*chunks: ChatChunk):
    yield StreamStart(input_tokens=12)
    for chunk in chunks:
        yield StreamDelta(chunk)
    yield StreamEnd("tool_calls", Usage(12, 5), 0, 1, ("tool_calls",), "tool_calls")


def frames_of(stream) -> list[tuple[str, dict]]:
    out = []
    for frame in stream:
        lines = dict(line.split(": ", 1) for line in frame.strip().split("\n"))
        out.append((lines.get("event"), json.loads(lines["data"]) if lines["data"] != "[DONE]" else None))
    return out


def test_anthropic_stream_opens_one_block_per_kind_with_consecutive_indexes():
    stream = anthropic_wire.stream_frames("req_1", Entry, events(
        ChatChunk(thinking=ThinkingDelta(text="hmm")), ChatChunk(thinking=ThinkingDelta(signature="sig")),
        ChatChunk(delta="Checking."), ChatChunk(tool_call=ToolCallDelta(0, "call_a", "get_weather", "")),
        ChatChunk(tool_call=ToolCallDelta(0, arguments='{"city":')),
        ChatChunk(tool_call=ToolCallDelta(0, arguments='"X"}')),
        ChatChunk(tool_call=ToolCallDelta(1, "call_b", "get_time", '{"zone":"UTC"}'))))
    got = frames_of(stream)
    assert got[0] == ("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "gpt-4o-mini", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 0}}})
    starts = [(d["index"], d["content_block"]["type"]) for e, d in got if e == "content_block_start"]
    stops = [d["index"] for e, d in got if e == "content_block_stop"]
    assert starts == [(0, "thinking"), (1, "text"), (2, "tool_use"), (3, "tool_use")] and stops == [0, 1, 2, 3]
    deltas = [(d["index"], d["delta"]["type"]) for e, d in got if e == "content_block_delta"]
    assert deltas == [(0, "thinking_delta"), (0, "signature_delta"), (1, "text_delta"), (2, "input_json_delta"),
                      (2, "input_json_delta"), (3, "input_json_delta")]
    assert got[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert got[-1][0] == "message_stop"


def test_openai_stream_numbers_tool_calls_and_sends_usage_null_until_the_end():
    stream = openai_wire.stream_frames("req_1", Entry, events(
        ChatChunk(delta="Hi"), ChatChunk(tool_call=ToolCallDelta(0, "toolu_a", "get_weather", "")),
        ChatChunk(tool_call=ToolCallDelta(0, arguments="{}"))), with_usage=True)
    got = [data for _, data in frames_of(stream)]
    assert got[-1] is None and got[-2]["choices"] == [] and got[-2]["usage"]["total_tokens"] == 17
    assert all(chunk["usage"] is None for chunk in got[:-2])
    deltas = [chunk["choices"][0]["delta"] for chunk in got[:-2]]
    assert deltas[0] == {"role": "assistant", "content": ""} and deltas[1] == {"content": "Hi"}
    assert deltas[2] == {"tool_calls": [{"index": 0, "id": "toolu_a", "type": "function",
                                         "function": {"arguments": "", "name": "get_weather"}}]}
    assert deltas[3] == {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}
    assert got[-3]["choices"][0]["finish_reason"] == "tool_calls"


def test_claude_citations_stream_through_to_anthropic_clients_only():
    from gateway.providers.anthropic_reply import parse_stream
    from gateway.providers.transport import SSEEvent

    citation = {"type": "char_location", "cited_text": "Paris is big.", "document_index": 0,
                "start_char_index": 0, "end_char_index": 13}
    wire = [("message_start", {"message": {"id": "msg_1", "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"index": 0, "delta": {"type": "citations_delta", "citation": citation}}),
            ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Big."}}),
            ("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
            ("message_stop", {})]
    chunks = list(parse_stream(SSEEvent(name, json.dumps({"type": name, **data})) for name, data in wire))
    middle = [StreamDelta(c) for c in chunks if c.carries_output]

    class Claude:
        id, provider = "claude-haiku-4-5", "anthropic"

    def run(fmt, **kwargs):
        return frames_of(fmt.stream_frames("req_1", Claude, iter([StreamStart(5), *middle, StreamEnd(
            "stop", Usage(5, 2), 0, 1, ("stop",), "end_turn")]), **kwargs))

    anthropic_deltas = [d["delta"] for e, d in run(anthropic_wire) if e == "content_block_delta"]
    assert anthropic_deltas == [{"type": "citations_delta", "citation": citation},
                                {"type": "text_delta", "text": "Big."}]
    openai_deltas = [d["choices"][0]["delta"] for _, d in run(openai_wire, with_usage=False) if d and d["choices"]]
    assert openai_deltas == [{"role": "assistant", "content": ""}, {"content": "Big."}, {}]
