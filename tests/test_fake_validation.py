"""The fake upstream refuses what the real APIs refuse, in their own envelopes - so a wrong translation fails
a test instead of passing. Each case is a body a careless translation could produce."""

from __future__ import annotations

import pytest
import requests

from tests.upstream_fixtures import upstream, upstream_server  # noqa: F401

USER = {"role": "user", "content": "hi"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
OPENAI_BAD = {
    "unknown field": {"messages": [USER], "frobnicate": 1},
    "tool result without a call": {"messages": [USER, {"role": "tool", "tool_call_id": "call_1", "content": "x"}]},
    "call without a result": {"messages": [USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                                            USER]},
    "tool_choice without tools": {"messages": [USER], "tool_choice": "auto"},
    "named tool not in tools": {"messages": [USER], "tools": [TOOL],
                                "tool_choice": {"type": "function", "function": {"name": "g"}}},
    "image that is not a url": {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]},
    "json_object without the word json": {"messages": [USER], "response_format": {"type": "json_object"}},
    "json_schema without a name": {"messages": [USER], "response_format": {"type": "json_schema",
                                                                           "json_schema": {"schema": {}}}},
    "stream_options without stream": {"messages": [USER], "stream_options": {"include_usage": True}},
}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}
ANTHROPIC_BAD = {
    "unknown field": {"messages": [USER], "frobnicate": 1},
    "system role in messages": {"messages": [{"role": "system", "content": "s"}, USER]},
    "first turn from the assistant": {"messages": [{"role": "assistant", "content": "a"}, USER]},
    "tool_use without its result next": {"messages": [USER, {"role": "assistant", "content": [TOOL_USE]}, USER]},
    "result without a tool_use before it": {"messages": [USER, {"role": "assistant", "content": "a"},
                                                         {"role": "user", "content": [RESULT]}]},
    "result after text": {"messages": [USER, {"role": "assistant", "content": [TOOL_USE]},
                                       {"role": "user", "content": [{"type": "text", "text": "t"}, RESULT]}]},
    "image media type": {"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "Qk0="}}]}]},
    "openai-shaped image": {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]},
    "whitespace-only text": {"messages": [{"role": "user", "content": "  "}]},
    "trailing whitespace in a prefill": {"messages": [USER, {"role": "assistant", "content": "a "}]},
    "temperature above 1": {"messages": [USER], "temperature": 1.5},
    "thinking budget under 1024": {"messages": [USER], "thinking": {"type": "enabled", "budget_tokens": 100}},
    "thinking with a forced tool": {"messages": [USER], "thinking": {"type": "enabled", "budget_tokens": 1024},
                                    "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                                    "tool_choice": {"type": "any"}},
    "tool_choice without tools": {"messages": [USER], "tool_choice": {"type": "auto"}},
    "openai-shaped tool": {"messages": [USER], "tools": [TOOL]},
    "metadata beyond user_id": {"messages": [USER], "metadata": {"user_id": "u", "team": "t"}},
}


@pytest.mark.parametrize("case", sorted(OPENAI_BAD))
def test_openai_refusals(upstream, case):
    body = {"model": "gpt-4o-mini", **OPENAI_BAD[case]}
    response = requests.post(upstream.openai_base_url + "/chat/completions", json=body, timeout=5)
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("case", sorted(ANTHROPIC_BAD))
def test_anthropic_refusals(upstream, case):
    body = {"model": "claude-haiku-4-5", "max_tokens": 2000, **ANTHROPIC_BAD[case]}
    response = requests.post(upstream.anthropic_base_url + "/v1/messages", json=body, timeout=5)
    assert response.status_code == 400
    payload = response.json()
    assert (payload["type"], payload["error"]["type"]) == ("error", "invalid_request_error")


@pytest.mark.parametrize("model, field, value", [("o3", "temperature", 0.2), ("o3", "max_tokens", 10),
                                                 ("gpt-5", "stop", ["x"]), ("gpt-4o", "reasoning_effort", "low")])
def test_openai_model_rules(upstream, model, field, value):
    body = {"model": model, "messages": [USER], field: value}
    response = requests.post(upstream.openai_base_url + "/chat/completions", json=body, timeout=5)
    assert response.status_code == 400 and response.json()["error"]["param"] == field


def test_valid_tool_conversations_pass(upstream):
    openai_body = {"model": "gpt-4o-mini", "tools": [TOOL], "tool_choice": "auto", "messages": [
        USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "x"}]}
    assert requests.post(upstream.openai_base_url + "/chat/completions", json=openai_body, timeout=5).ok
    anthropic_body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [
        USER, {"role": "assistant", "content": [TOOL_USE]}, {"role": "user", "content": [RESULT]}]}
    assert requests.post(upstream.anthropic_base_url + "/v1/messages", json=anthropic_body, timeout=5).ok
