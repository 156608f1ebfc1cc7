"""The official openai SDK on /v1/chat/completions, against a GPT and a Claude model: tool round trips
(plain and streamed, parallel calls, every tool_choice), images, structured output, reasoning, and the
fields only OpenAI has. The fake upstream validates each request the way the real API does."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel

from tests.compat_support import (CLAUDE, CLAUDE_UPSTREAM, GPT, IMAGE_URL, MODELS, OPENAI_TOOLS, PNG_B64,
                                  PNG_DATA_URL, WEATHER_SCHEMA, audit, gateway, openai_sdk, sent,  # noqa: F401
                                  upstream_path)
from tests.conftest import counters_match_audit
from tests.fake_upstream import Behavior

ASK = [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather in Paris and Tokyo time?"}]


class City(BaseModel):
    city: str
    population: int


@pytest.mark.parametrize("model", MODELS)
def test_tool_round_trip(app, gateway, fake_upstream, model):
    sdk = openai_sdk(gateway)
    fake_upstream.enqueue(Behavior(tool_calls=[("get_weather", {"city": "Paris"})], prompt_tokens=40,
                                   completion_tokens=9))
    first = sdk.chat.completions.create(model=model, messages=ASK, tools=OPENAI_TOOLS, max_completion_tokens=200)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert (call.type, call.function.name, json.loads(call.function.arguments)) == \
        ("function", "get_weather", {"city": "Paris"})
    upstream = sent(fake_upstream)
    if model == CLAUDE:
        assert upstream["tools"][0] == {"name": "get_weather", "description": "Weather in a city",
                                        "input_schema": WEATHER_SCHEMA}
        assert upstream["system"] == "Use tools." and "tool_choice" not in upstream
    else:
        assert upstream["tools"] == OPENAI_TOOLS
    fake_upstream.enqueue(Behavior(reply="It is sunny in Paris."))
    history = ASK + [choice.message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}]
    second = sdk.chat.completions.create(model=model, messages=history, tools=OPENAI_TOOLS)
    assert second.choices[0].message.content == "It is sunny in Paris."
    upstream = sent(fake_upstream)
    if model == CLAUDE:
        assert upstream["messages"][1:] == [
            {"role": "assistant", "content": [{"type": "tool_use", "id": call.id, "name": "get_weather",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21C"}]}]
    else:
        assert upstream["messages"][2]["tool_calls"][0]["id"] == call.id
        assert upstream["messages"][3] == {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}
    assert [r.status for r in audit(app)] == ["ok", "ok"] and counters_match_audit(app) == []


@pytest.mark.parametrize("model", MODELS)
def test_parallel_tool_calls_streamed(app, gateway, fake_upstream, model):
    fake_upstream.enqueue(Behavior(tool_calls=[("get_weather", {"city": "Paris"}), ("get_time", {"zone": "JST"})],
                                   prompt_tokens=30, completion_tokens=12))
    stream = openai_sdk(gateway).chat.completions.create(model=model, messages=ASK, tools=OPENAI_TOOLS, stream=True,
                                                         stream_options={"include_usage": True})
    calls: dict[int, dict] = {}
    finish = None
    chunks = list(stream)
    for chunk in chunks:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for fragment in choice.delta.tool_calls or []:
                entry = calls.setdefault(fragment.index, {"id": None, "name": "", "arguments": ""})
                entry["id"] = fragment.id or entry["id"]
                entry["name"] += fragment.function.name or "" if fragment.function else ""
                entry["arguments"] += (fragment.function.arguments or "") if fragment.function else ""
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())] == \
        [("get_weather", {"city": "Paris"}), ("get_time", {"zone": "JST"})]
    assert all(c["id"] for c in calls.values()) and len({c["id"] for c in calls.values()}) == 2
    assert chunks[-1].usage.total_tokens == 42
    [record] = audit(app)
    assert (record.status, record.prompt_tokens, record.completion_tokens) == ("ok", 30, 12)


@pytest.mark.parametrize("model", MODELS)
def test_stream_helper_accumulates_tool_calls(gateway, fake_upstream, model):
    fake_upstream.enqueue(Behavior(reply="Checking.", tool_calls=[("get_weather", {"city": "Oslo"})]))
    with openai_sdk(gateway).chat.completions.stream(model=model, messages=ASK, tools=OPENAI_TOOLS) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking."
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Oslo"}


CHOICES = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"},
           "named": {"type": "tool", "name": "get_time"}}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", sorted(CHOICES))
def test_every_tool_choice(gateway, fake_upstream, model, name):
    given = {"type": "function", "function": {"name": "get_time"}} if name == "named" else name
    openai_sdk(gateway).chat.completions.create(model=model, messages=ASK, tools=OPENAI_TOOLS, tool_choice=given,
                                                parallel_tool_calls=False)
    upstream = sent(fake_upstream)
    if model == CLAUDE:
        expected = dict(CHOICES[name])
        if name != "none":
            expected["disable_parallel_tool_use"] = True
        assert upstream["tool_choice"] == expected
    else:
        assert (upstream["tool_choice"], upstream["parallel_tool_calls"]) == (given, False)


@pytest.mark.parametrize("model", MODELS)
def test_images_by_data_url_and_https_url(gateway, fake_upstream, model):
    content = [{"type": "text", "text": "What is in these?"},
               {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
               {"type": "image_url", "image_url": {"url": IMAGE_URL, "detail": "high"}}]
    reply = openai_sdk(gateway).chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
    assert reply.choices[0].message.content
    upstream = sent(fake_upstream)["messages"][0]["content"]
    if model == CLAUDE:
        assert upstream == [{"type": "text", "text": "What is in these?"},
                            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                         "data": PNG_B64}},
                            {"type": "image", "source": {"type": "url", "url": IMAGE_URL}}]
    else:
        assert upstream == content


def test_low_detail_images_and_other_media_types_are_refused_for_claude(gateway, fake_upstream):
    sdk = openai_sdk(gateway)
    low = [{"type": "image_url", "image_url": {"url": IMAGE_URL, "detail": "low"}}]
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": low}])
    assert raised.value.body["param"] == "messages.0.content.0.image_url.detail"
    bmp = [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]
    with pytest.raises(openai.BadRequestError, match="image/bmp"):
        sdk.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": bmp}])
    assert fake_upstream.hits == 0


@pytest.mark.parametrize("model", MODELS)
def test_structured_output_with_parse(gateway, fake_upstream, model):
    fake_upstream.enqueue(Behavior(reply='{"city": "Paris", "population": 2102650}'))
    completion = openai_sdk(gateway).chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "Biggest French city?"}], response_format=City)
    assert completion.choices[0].message.parsed == City(city="Paris", population=2102650)
    upstream = sent(fake_upstream)
    if model == CLAUDE:
        schema = upstream["output_config"]["format"]["schema"]
        assert upstream["output_config"]["format"]["type"] == "json_schema"
        assert schema["properties"].keys() == {"city", "population"} and schema["additionalProperties"] is False
    else:
        form = upstream["response_format"]
        assert (form["type"], form["json_schema"]["name"], form["json_schema"]["strict"]) == \
            ("json_schema", "City", True)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_json_object_mode(gateway, fake_upstream, model, stream):
    """GPT takes json_object as it is; Claude answers it through a forced tool whose input is the object."""
    if model == CLAUDE:
        fake_upstream.enqueue(Behavior(tool_calls=[("json_object", {"city": "Paris"})]))
    else:
        fake_upstream.enqueue(Behavior(reply='{"city": "Paris"}'))
    ask = [{"role": "user", "content": "Answer in JSON: a city"}]
    reply = openai_sdk(gateway).chat.completions.create(model=model, messages=ask, stream=stream,
                                                         response_format={"type": "json_object"})
    if stream:
        chunks = list(reply)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
        assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    else:
        text, finish = reply.choices[0].message.content, reply.choices[0].finish_reason
        assert reply.choices[0].message.tool_calls is None
    assert (json.loads(text), finish) == ({"city": "Paris"}, "stop")
    upstream = sent(fake_upstream)
    if model == CLAUDE:
        assert upstream["tool_choice"] == {"type": "tool", "name": "json_object"}
        assert [t["name"] for t in upstream["tools"]] == ["json_object"]
    else:
        assert upstream["response_format"] == {"type": "json_object"}


def test_json_object_with_tools_is_refused_for_claude(gateway, fake_upstream):
    with pytest.raises(openai.BadRequestError) as raised:
        openai_sdk(gateway).chat.completions.create(model=CLAUDE, messages=ASK, tools=OPENAI_TOOLS,
                                                    response_format={"type": "json_object"})
    assert raised.value.body["param"] == "response_format" and fake_upstream.hits == 0


def test_reasoning_effort_becomes_claude_thinking_and_comes_back(gateway, fake_upstream):
    fake_upstream.enqueue(Behavior(reply="42", thinking="Six times seven."))
    reply = openai_sdk(gateway).chat.completions.create(
        model=CLAUDE, messages=[{"role": "user", "content": "6*7?"}], reasoning_effort="medium",
        max_completion_tokens=8000)
    upstream = sent(fake_upstream)
    assert upstream["thinking"] == {"type": "enabled", "budget_tokens": 4096} and upstream["max_tokens"] == 8000
    message = reply.choices[0].message
    assert message.content == "42"
    extra = message.model_extra
    assert extra["reasoning_content"] == "Six times seven."
    assert extra["thinking_blocks"][0]["signature"]


def test_claude_thinking_goes_back_with_tool_results(gateway, fake_upstream):
    """thinking_blocks on the assistant turn (LiteLLM's convention) return to Claude unchanged."""
    fake_upstream.enqueue(Behavior(tool_calls=[("get_weather", {"city": "Rome"})], thinking="Need weather."))
    sdk = openai_sdk(gateway)
    first = sdk.chat.completions.create(model=CLAUDE, messages=ASK, tools=OPENAI_TOOLS, reasoning_effort="low",
                                        max_completion_tokens=4000)
    assistant = first.choices[0].message.model_dump(exclude_none=True)
    call_id = assistant["tool_calls"][0]["id"]
    sdk.chat.completions.create(model=CLAUDE, tools=OPENAI_TOOLS, reasoning_effort="low", max_completion_tokens=4000,
                                messages=ASK + [assistant, {"role": "tool", "tool_call_id": call_id, "content": "hot"}])
    turn = sent(fake_upstream)["messages"][1]["content"]
    assert turn[0] == {"type": "thinking", "thinking": "Need weather.", "signature": assistant["thinking_blocks"][0][
        "signature"]}
    assert turn[1]["type"] == "tool_use" and turn[1]["id"] == call_id


def test_openai_only_fields_are_forwarded_exactly_to_gpt(gateway, fake_upstream):
    fields = dict(seed=7, frequency_penalty=0.5, presence_penalty=-0.5, logit_bias={"50256": -100},
                  logprobs=True, top_logprobs=2, safety_identifier="user-hash-1", metadata={"team": "a"},
                  service_tier="flex", prompt_cache_key="conv-1", store=False, verbosity="low", user="u-1",
                  stop=["END"], temperature=0.3, top_p=0.9, prompt_cache_retention="24h")
    reply = openai_sdk(gateway).chat.completions.create(model=GPT, messages=ASK, **fields)
    upstream = sent(fake_upstream)
    assert {name: upstream[name] for name in fields} == fields
    assert reply.choices[0].logprobs.content[0].top_logprobs and reply.system_fingerprint == "fp_fake"


@pytest.mark.parametrize("field, value", [("seed", 7), ("logit_bias", {"1": 5}), ("logprobs", True),
                                          ("frequency_penalty", 0.1), ("presence_penalty", 0.1),
                                          ("service_tier", "flex"), ("prompt_cache_key", "k"), ("store", True),
                                          ("metadata", {"a": "b"}), ("verbosity", "low"),
                                          ("safety_identifier", "h"), ("n", 2)])
def test_openai_only_fields_are_refused_by_name_for_claude(app, gateway, fake_upstream, field, value):
    with pytest.raises(openai.BadRequestError) as raised:
        openai_sdk(gateway).chat.completions.create(model=CLAUDE, messages=ASK, **{field: value})
    assert raised.value.body["param"] == field and field in raised.value.body["message"]
    assert fake_upstream.hits == 0 and audit(app) == []


def test_translated_fields_for_claude(gateway, fake_upstream):
    openai_sdk(gateway).chat.completions.create(
        model=CLAUDE, messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                {"role": "assistant", "content": "Hello   "}],
        stop=["END", "STOP"], user="end-user-7", temperature=0.5, top_p=0.8, max_tokens=77)
    assert sent(fake_upstream) == {
        "model": CLAUDE_UPSTREAM, "max_tokens": 77, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        "temperature": 0.5, "top_p": 0.8, "stop_sequences": ["END", "STOP"], "metadata": {"user_id": "end-user-7"}}


def test_n_choices_are_returned_and_reserved(app, gateway, fake_upstream):
    fake_upstream.enqueue(Behavior(reply="Hi", completion_tokens=1))
    reply = openai_sdk(gateway).chat.completions.create(model=GPT, messages=ASK, n=3, max_completion_tokens=10)
    assert [c.index for c in reply.choices] == [0, 1, 2] and sent(fake_upstream)["n"] == 3
    [record] = audit(app)
    assert (record.reserved_completion_tokens, record.completion_tokens) == (30, 3)


def test_refusal_is_returned(gateway, fake_upstream):
    fake_upstream.enqueue(Behavior(reply="", refusal="I can't help with that."))
    reply = openai_sdk(gateway).chat.completions.create(model=GPT, messages=ASK)
    assert reply.choices[0].message.refusal == "I can't help with that."


@pytest.mark.parametrize("field, value", [("temperature", 0.2), ("top_p", 0.5), ("stop", ["x"])])
def test_reasoning_models_refuse_sampling_and_stop(app, gateway, fake_upstream, field, value):
    with pytest.raises(openai.BadRequestError) as raised:
        openai_sdk(gateway).chat.completions.create(model="o4-mini", messages=ASK, **{field: value})
    assert (raised.value.body["param"], raised.value.body["code"]) == (field, "unsupported_parameter")
    assert fake_upstream.hits == 0


def test_reasoning_models_get_a_large_default_budget(app, gateway, fake_upstream):
    openai_sdk(gateway).chat.completions.create(model="o4-mini", messages=ASK, temperature=1)
    assert sent(fake_upstream)["max_completion_tokens"] == 25000
    assert audit(app)[0].reserved_completion_tokens == 25000


def test_unknown_fields_are_refused_like_openai(gateway, fake_upstream):
    with pytest.raises(openai.BadRequestError) as raised:
        openai_sdk(gateway).chat.completions.create(model=GPT, messages=ASK, extra_body={"frobnicate": 1})
    assert raised.value.body["param"] == "frobnicate" and fake_upstream.hits == 0


@pytest.mark.parametrize("model", MODELS)
def test_upstream_path_matches_model(gateway, fake_upstream, model):
    openai_sdk(gateway).chat.completions.create(model=model, messages=ASK)
    assert fake_upstream.requests[-1].path == upstream_path(model)


def test_claude_thinking_streams_as_reasoning_deltas(gateway, fake_upstream):
    fake_upstream.enqueue(Behavior(reply="42", thinking="Six sevens."))
    stream = openai_sdk(gateway).chat.completions.create(
        model=CLAUDE, messages=[{"role": "user", "content": "6*7?"}], reasoning_effort="low",
        max_completion_tokens=4000, stream=True)
    deltas = [c.choices[0].delta for c in stream if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    blocks = [b for d in deltas for b in (d.model_extra or {}).get("thinking_blocks") or []]
    assert reasoning == "Six sevens." and any(b.get("signature") for b in blocks)
    assert "".join(d.content or "" for d in deltas) == "42"
