"""The offline mock provider and the provider registry."""

from __future__ import annotations

from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.base import (ChatChunk, ChatRequest, ChatResult, Choice, Message, ProviderSettings, TextPart,
                                    Usage)
from gateway.providers.mock import MockProvider, count_tokens, reply_text
from gateway.providers.openai import OpenAIProvider
from gateway.providers.registry import ProviderRegistry, build_providers

MESSAGES = (Message("system", "Be brief."), Message("user", "Say hello, please"))
REPLY = 'Mock reply to: "Say hello, please"'


def chat(messages=MESSAGES, max_tokens=100) -> ChatRequest:
    return ChatRequest(model="mock-1", messages=messages, max_tokens=max_tokens)


def test_tokenizer_counts_words_and_punctuation():
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("") == 0
    assert count_tokens(REPLY) == 10


def test_complete_echoes_the_last_user_message_with_honest_usage():
    result = MockProvider().complete(chat())
    assert result == ChatResult(id=result.id, model="mock-1",
                                choices=(Choice(content=(TextPart(REPLY),), finish_reason="stop"),),
                                usage=Usage(prompt_tokens=3 + 4, completion_tokens=10))
    assert result.id.startswith("mock-") and result.id == MockProvider().complete(chat()).id


def test_reply_uses_the_last_user_turn_and_at_most_200_chars():
    long = "x" * 300
    messages = (Message("user", "first"), Message("assistant", "ok"), Message("user", long))
    assert reply_text(messages) == f'Mock reply to: "{"x" * 200}"'
    assert reply_text((Message("system", "only"),)) == 'Mock reply to: ""'


def test_max_tokens_truncates_with_length():
    result = MockProvider().complete(chat(max_tokens=4))
    assert (result.content, result.finish_reason, result.usage.completion_tokens) == \
        ("Mock reply to:", "length", 4)


def test_stream_is_word_by_word_and_matches_complete():
    provider = MockProvider()
    chunks = list(provider.stream(chat()))
    reply_id = provider.complete(chat()).id
    assert chunks == [ChatChunk(delta=word, id=reply_id) for word in
                      ["Mock ", "reply ", "to: ", '"Say ', "hello, ", 'please"']] + \
        [ChatChunk(finish_reason="stop", finish_reasons=("stop",), usage=Usage(prompt_tokens=7, completion_tokens=10),
                   id=reply_id)]


def test_truncated_stream_ends_with_length():
    chunks = list(MockProvider().stream(chat(max_tokens=2)))
    assert "".join(c.delta for c in chunks) == "Mock reply"
    assert (chunks[-1].finish_reason, chunks[-1].usage.completion_tokens) == ("length", 2)


def test_registry_holds_only_configured_providers():
    registry = build_providers(openai=None, anthropic=None, mock_enabled=True)
    assert registry.names() == ("mock",)
    assert (registry.available("mock"), registry.available("openai")) == (True, False)
    assert registry.get("openai") is None and isinstance(registry.get("mock"), MockProvider)
    assert build_providers(None, None, False).names() == ()


def test_registry_builds_adapters_from_settings():
    openai = ProviderSettings(api_key="sk-x", base_url="http://127.0.0.1:9/v1")
    anthropic = ProviderSettings(api_key="sk-ant-x", base_url="http://127.0.0.1:9")
    registry = build_providers(openai, anthropic, mock_enabled=False)
    assert registry.names() == ("anthropic", "openai")
    assert isinstance(registry.get("openai"), OpenAIProvider)
    assert isinstance(registry.get("anthropic"), AnthropicProvider)
    assert [registry.get(n).name for n in registry.names()] == ["anthropic", "openai"]


def test_registry_from_a_mapping():
    mock = MockProvider()
    assert ProviderRegistry({"mock": mock}).get("mock") is mock
