"""LangChain pointed at the gateway: ChatOpenAI (on /v1/chat/completions) and ChatAnthropic (on /v1/messages),
each with a GPT and a Claude model behind it - bind_tools round trips, streamed tool calls and
with_structured_output."""

from __future__ import annotations

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.compat_support import CLAUDE, GPT, audit, gateway, sent, upstream_path  # noqa: F401
from tests.conftest import counters_match_audit
from tests.fake_upstream import Behavior


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


class City(BaseModel):
    """A city and its population."""

    city: str
    population: int


def chat_model(kind: str, gateway, model: str):
    server, account = gateway
    if kind == "openai":
        return ChatOpenAI(model=model, base_url=f"{server.url}/v1", api_key=account.api_key, max_retries=0)
    return ChatAnthropic(model=model, base_url=server.url, api_key=account.api_key, max_retries=0,
                         max_tokens=512)


CLIENTS = [("openai", GPT), ("openai", CLAUDE), ("anthropic", CLAUDE), ("anthropic", GPT)]


@pytest.mark.parametrize("kind, model", CLIENTS)
def test_bind_tools_round_trip(app, gateway, fake_upstream, kind, model):
    llm = chat_model(kind, gateway, model).bind_tools([get_weather])
    fake_upstream.enqueue(Behavior(tool_calls=[("get_weather", {"city": "Paris"})]), Behavior(reply="Sunny."))
    question = HumanMessage("Weather in Paris?")
    first = llm.invoke([question])
    [call] = first.tool_calls
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})
    assert fake_upstream.requests[-1].path == upstream_path(model)
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    second = llm.invoke([question, first, result])
    assert second.text == "Sunny."
    body = sent(fake_upstream)
    ids = [m["tool_call_id"] for m in body["messages"] if m.get("role") == "tool"] or \
        [b["tool_use_id"] for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]
         if b.get("type") == "tool_result"]
    assert ids == [call["id"]]
    assert [r.status for r in audit(app)] == ["ok", "ok"] and counters_match_audit(app) == []


@pytest.mark.parametrize("kind, model", CLIENTS)
def test_streamed_tool_calls(gateway, fake_upstream, kind, model):
    llm = chat_model(kind, gateway, model).bind_tools([get_weather])
    fake_upstream.enqueue(Behavior(tool_calls=[("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Rome"})]))
    merged = None
    for chunk in llm.stream("Weather in Oslo and Rome?"):
        merged = chunk if merged is None else merged + chunk
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [("get_weather", {"city": "Oslo"}),
                                                                  ("get_weather", {"city": "Rome"})]


@pytest.mark.parametrize("kind, model", CLIENTS)
def test_with_structured_output(gateway, fake_upstream, kind, model):
    """ChatOpenAI asks with response_format json_schema (Claude gets output_config.format); ChatAnthropic
    forces a tool (GPT gets a named tool_choice). The fake answers an instance of the schema it was sent."""
    structured = chat_model(kind, gateway, model).with_structured_output(City)
    assert structured.invoke("The biggest French city?") == City(city="Paris", population=7)
    body = sent(fake_upstream)
    if kind == "openai" and model == GPT:
        assert body["response_format"]["json_schema"]["name"] == "City"
    elif kind == "openai":
        assert body["output_config"]["format"]["schema"]["required"] == ["city", "population"]
    elif model == CLAUDE:
        assert body["tool_choice"] == {"type": "tool", "name": "City"}
    else:
        assert body["tool_choice"] == {"type": "function", "function": {"name": "City"}}
