"""LiteLLM used as a client of the gateway: its OpenAI route (/v1/chat/completions) and its Anthropic route
(/v1/messages), each with a GPT and a Claude model behind it - tool round trips, streamed tool calls,
images and response_format."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price map from the internet

import litellm  # noqa: E402

from tests.compat_support import (CLAUDE, GPT, OPENAI_TOOLS, PNG_DATA_URL, audit, gateway, sent,  # noqa: E402,F401
                                  upstream_path)
from tests.conftest import counters_match_audit  # noqa: E402
from tests.fake_upstream import Behavior  # noqa: E402

ROUTES = [("openai", GPT), ("openai", CLAUDE), ("anthropic", CLAUDE), ("anthropic", GPT)]
ASK = [{"role": "user", "content": "Weather in Paris?"}]


def ask(gateway, route: str, model: str, **kwargs):
    server, account = gateway
    base = f"{server.url}/v1" if route == "openai" else server.url
    return litellm.completion(model=f"{route}/{model}", api_base=base, api_key=account.api_key, max_tokens=256,
                              num_retries=0, **kwargs)


@pytest.mark.parametrize("route, model", ROUTES)
def test_tool_round_trip(app, gateway, fake_upstream, route, model):
    fake_upstream.enqueue(Behavior(tool_calls=[("get_weather", {"city": "Paris"})]), Behavior(reply="Sunny."))
    first = ask(gateway, route, model, messages=ASK, tools=OPENAI_TOOLS, tool_choice="auto")
    assert fake_upstream.requests[-1].path == upstream_path(model)
    message = first.choices[0].message
    [call] = message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    history = ASK + [message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    second = ask(gateway, route, model, messages=history, tools=OPENAI_TOOLS)
    assert second.choices[0].message.content == "Sunny."
    assert call.id in json.dumps(sent(fake_upstream)["messages"])
    assert [r.status for r in audit(app)] == ["ok", "ok"] and counters_match_audit(app) == []


@pytest.mark.parametrize("route, model", ROUTES)
def test_streamed_tool_calls(gateway, fake_upstream, route, model):
    fake_upstream.enqueue(Behavior(tool_calls=[("get_weather", {"city": "Oslo"}), ("get_time", {"zone": "CET"})]))
    chunks = list(ask(gateway, route, model, messages=ASK, tools=OPENAI_TOOLS, stream=True))
    rebuilt = litellm.stream_chunk_builder(chunks)
    calls = rebuilt.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == \
        [("get_weather", {"city": "Oslo"}), ("get_time", {"zone": "CET"})]


@pytest.mark.parametrize("route, model", ROUTES)
def test_image_and_json_schema(gateway, fake_upstream, route, model):
    content = [{"type": "text", "text": "What is this? Answer as JSON."},
               {"type": "image_url", "image_url": {"url": PNG_DATA_URL}}]
    schema = {"type": "object", "properties": {"thing": {"type": "string"}}, "required": ["thing"],
              "additionalProperties": False}
    reply = ask(gateway, route, model, messages=[{"role": "user", "content": content}],
                response_format={"type": "json_schema", "json_schema": {"name": "Thing", "schema": schema,
                                                                        "strict": True}})
    assert json.loads(reply.choices[0].message.content) == {"thing": "Paris"}
    body = json.dumps(sent(fake_upstream))
    assert "iVBORw0KGgo" in body  # the image reached the upstream, in whichever shape its wire takes
