"""The offline mock provider and the provider registry."""

from __future__ import annotations

from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.azure_openai import AzureOpenAIProvider
from gateway.providers.base import (ChatChunk, ChatRequest, ChatResult, Choice, Message, TextPart,
                                    Usage)
from gateway.providers.mock import MockProvider, count_tokens, reply_text
from gateway.providers.openai import OpenAIProvider
from gateway.providers.registry import ProviderRegistry, Upstream, build_providers
from gateway.upstream_config import UpstreamDefinition

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


def upstream(name: str, kind: str, api_version: str | None = None) -> UpstreamDefinition:
    return UpstreamDefinition(name, kind, "http://127.0.0.1:9", "KEY", "sk-x", 1.0, 1.0, 0,
                              api_version=api_version)


def test_registry_holds_only_configured_upstreams():
    registry = build_providers([], mock_enabled=True)
    assert registry.names() == ("mock",)
    assert (registry.available("mock"), registry.available("openai")) == (True, False)
    assert registry.get("openai") is None and isinstance(registry.get("mock").adapter("mock-1"), MockProvider)
    assert build_providers([], False).names() == ()


def test_registry_builds_one_adapter_per_upstream_and_one_per_azure_deployment():
    registry = build_providers([upstream("openai", "openai"), upstream("claude-eu", "anthropic"),
                                upstream("azure-se", "azure_openai", "2024-10-21")], mock_enabled=False)
    assert registry.names() == ("azure-se", "claude-eu", "openai")
    openai, claude, azure = (registry.get(name) for name in ("openai", "claude-eu", "azure-se"))
    assert isinstance(openai.adapter("gpt-4o"), OpenAIProvider)
    assert openai.adapter("gpt-4o") is openai.adapter("gpt-4o-mini")
    assert isinstance(claude.adapter("claude-haiku-4-5"), AnthropicProvider)
    assert (openai.kind, claude.kind, azure.kind) == ("openai", "anthropic", "azure_openai")
    first, second = azure.adapter("gpt4o-prod"), azure.adapter("gpt4o-mini-prod")
    assert isinstance(first, AzureOpenAIProvider) and first is not second
    assert azure.adapter("gpt4o-prod") is first


def test_registry_from_a_mapping():
    mock = MockProvider()
    assert ProviderRegistry({"mock": Upstream("mock", "mock", lambda _model: mock)}).get("mock").adapter("m") is mock
