"""docs/compat.md row by row: each request field of both endpoints, sent to a GPT and a Claude model, is
forwarded (the upstream got it exactly), translated (the upstream got its equivalent) or refused (a 400
naming it, nothing sent, nothing reserved). Raw JSON through the test client, so no SDK reshapes it."""

from __future__ import annotations

import pytest

from tests.compat_support import CLAUDE, CLAUDE_UPSTREAM, GPT, audit

USER = [{"role": "user", "content": "Say hi in JSON"}]
FORWARDED, REFUSED = "forwarded", "refused"

# field -> (value, to GPT, to Claude); a dict outcome is the translation the upstream must have received.
OPENAI_ROWS = {
    "seed": (7, FORWARDED, REFUSED),
    "frequency_penalty": (0.2, FORWARDED, REFUSED),
    "presence_penalty": (-0.2, FORWARDED, REFUSED),
    "logit_bias": ({"100": 5}, FORWARDED, REFUSED),
    "logprobs": (True, FORWARDED, REFUSED),
    "safety_identifier": ("h-1", FORWARDED, REFUSED),
    "metadata": ({"k": "v"}, FORWARDED, REFUSED),
    "service_tier": ("flex", FORWARDED, REFUSED),
    "prompt_cache_key": ("c-1", FORWARDED, REFUSED),
    "prompt_cache_retention": ("in_memory", FORWARDED, REFUSED),
    "prompt_cache_options": ({"mode": "implicit"}, FORWARDED, REFUSED),
    "store": (True, FORWARDED, REFUSED),
    "prediction": ({"type": "content", "content": "hi"}, FORWARDED, REFUSED),
    "verbosity": ("high", FORWARDED, REFUSED),
    "modalities": (["text"], FORWARDED, REFUSED),
    "moderation": ({"model": "omni-moderation-latest"}, FORWARDED, REFUSED),
    "n": (2, FORWARDED, REFUSED),
    "user": ("u-1", FORWARDED, {"metadata": {"user_id": "u-1"}}),
    "stop": (["END"], FORWARDED, {"stop_sequences": ["END"]}),
    "temperature": (0.4, FORWARDED, FORWARDED),
    "top_p": (0.5, FORWARDED, FORWARDED),
    "max_tokens": (33, {"max_completion_tokens": 33}, {"max_tokens": 33}),
    "max_completion_tokens": (34, FORWARDED, {"max_tokens": 34}),
    "response_format": ({"type": "json_object"}, FORWARDED, {"tool_choice": {"type": "tool", "name": "json_object"}}),
    "parallel_tool_calls": (False, REFUSED, REFUSED),  # only with tools (the real APIs refuse it alone)
    "web_search_options": ({}, REFUSED, REFUSED),
    "audio": ({"voice": "alloy", "format": "mp3"}, REFUSED, REFUSED),
    "functions": ([{"name": "f"}], REFUSED, REFUSED),
    "function_call": ("auto", REFUSED, REFUSED),
    "frobnicate": (1, REFUSED, REFUSED),
}
ANTHROPIC_ROWS = {
    "top_k": (5, REFUSED, FORWARDED),
    "service_tier": ("standard_only", REFUSED, FORWARDED),
    "cache_control": ({"type": "ephemeral"}, REFUSED, FORWARDED),
    "context_management": ({"edits": []}, REFUSED, FORWARDED),
    "metadata": ({"user_id": "u-2"}, {"safety_identifier": "u-2"}, FORWARDED),
    "stop_sequences": (["END"], {"stop": ["END"]}, FORWARDED),
    "temperature": (0.3, FORWARDED, FORWARDED),
    "top_p": (0.6, FORWARDED, FORWARDED),
    "system": ("Be brief.", {"messages": [{"role": "system", "content": "Be brief."}] + USER}, FORWARDED),
    "thinking": ({"type": "disabled"}, {"reasoning_effort": None}, FORWARDED),
    "output_config": ({"format": {"type": "json_schema", "schema": {"type": "object"}}},
                      {"response_format": {"type": "json_schema",
                                           "json_schema": {"name": "response", "schema": {"type": "object"}}}},
                      FORWARDED),
    "output_format": ({"type": "json_schema", "schema": {"type": "object"}},
                      {"response_format": {"type": "json_schema",
                                           "json_schema": {"name": "response", "schema": {"type": "object"}}}},
                      {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}),
    "container": ("c", REFUSED, REFUSED),
    "mcp_servers": ([], REFUSED, REFUSED),
    "inference_geo": ("us", REFUSED, REFUSED),
    "speed": ("fast", REFUSED, REFUSED),
    "workspace_id": ("w", REFUSED, REFUSED),
    "frobnicate": (1, REFUSED, REFUSED),
}


def outcome_for(model: str, row: tuple) -> object:
    return row[1] if model == GPT else row[2]


def check(app, fake_upstream, response, field, value, outcome) -> None:
    if outcome == REFUSED:
        assert response.status_code == 400, response.get_json()
        body = response.get_json()
        named = body["error"].get("param") if "param" in body["error"] else body["error"]["message"]
        assert field in (named or ""), body
        assert fake_upstream.hits == 0 and audit(app) == []
        return
    assert response.status_code == 200, response.get_json()
    upstream = fake_upstream.requests[-1].body
    expected = {field: value} if outcome == FORWARDED else outcome
    assert {name: upstream.get(name) for name in expected} == expected, upstream


@pytest.mark.parametrize("model", [GPT, CLAUDE])
@pytest.mark.parametrize("field", sorted(OPENAI_ROWS))
def test_chat_completions_field(app, client, account, fake_upstream, model, field):
    value, *_ = OPENAI_ROWS[field]
    response = client.post("/v1/chat/completions", json={"model": model, "messages": USER, field: value},
                           headers=account.headers)
    check(app, fake_upstream, response, field, value, outcome_for(model, OPENAI_ROWS[field]))


@pytest.mark.parametrize("model", [GPT, CLAUDE])
@pytest.mark.parametrize("field", sorted(ANTHROPIC_ROWS))
def test_messages_field(app, client, account, fake_upstream, model, field):
    value, *_ = ANTHROPIC_ROWS[field]
    response = client.post("/v1/messages", json={"model": model, "max_tokens": 50, "messages": USER, field: value},
                           headers=account.headers)
    check(app, fake_upstream, response, field, value, outcome_for(model, ANTHROPIC_ROWS[field]))


def test_stream_options_obfuscation_is_forwarded_to_gpt_only(client, account, fake_upstream):
    body = {"messages": USER, "stream": True, "stream_options": {"include_usage": False, "include_obfuscation": False}}
    response = client.post("/v1/chat/completions", json={"model": GPT, **body}, headers=account.headers)
    assert response.status_code == 200 and "[DONE]" in response.get_data(as_text=True)
    assert fake_upstream.requests[-1].body["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    refused = client.post("/v1/chat/completions", json={"model": CLAUDE, **body}, headers=account.headers)
    assert refused.status_code == 400 and refused.get_json()["error"]["param"] == "stream_options"


@pytest.mark.parametrize("tier", ["priority", "scale", "fast"])
def test_unpriced_service_tiers_are_refused(client, account, fake_upstream, tier):
    response = client.post("/v1/chat/completions", json={"model": GPT, "messages": USER, "service_tier": tier},
                           headers=account.headers)
    assert response.status_code == 400 and response.get_json()["error"]["param"] == "service_tier"


def test_anthropic_server_tools_are_refused_with_why(client, account, fake_upstream):
    tools = [{"type": "web_search_20250305", "name": "web_search"}]
    response = client.post("/v1/messages", json={"model": CLAUDE, "max_tokens": 50, "messages": USER,
                                                 "tools": tools}, headers=account.headers)
    assert response.status_code == 400 and "cannot price" in response.get_json()["error"]["message"]
    assert fake_upstream.hits == 0


def test_a_mid_conversation_system_turn_is_refused_for_claude_not_hoisted(client, account, fake_upstream):
    messages = USER + [{"role": "assistant", "content": "hi"}, {"role": "system", "content": "Now be rude."},
                       {"role": "user", "content": "again"}]
    response = client.post("/v1/chat/completions", json={"model": CLAUDE, "messages": messages},
                           headers=account.headers)
    assert response.status_code == 400 and response.get_json()["error"]["param"] == "messages.2.role"
    ok = client.post("/v1/chat/completions", json={"model": GPT, "messages": messages}, headers=account.headers)
    assert ok.status_code == 200 and fake_upstream.requests[-1].body["messages"] == messages


def test_claude_gets_its_upstream_id_and_exact_body(client, account, fake_upstream):
    body = {"model": CLAUDE, "max_tokens": 50, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "5m"}}]}],
        "system": [{"type": "text", "text": "s"}], "tool_choice": {"type": "none"}, "tools": [
        {"name": "t", "input_schema": {"type": "object", "properties": {}}, "strict": True}]}
    response = client.post("/v1/messages", json=body, headers=account.headers)
    assert response.status_code == 200, response.get_json()
    assert fake_upstream.requests[-1].body == {**body, "model": CLAUDE_UPSTREAM, "system": "s"}
