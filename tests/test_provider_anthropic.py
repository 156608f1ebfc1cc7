"""AnthropicProvider against the real fake upstream: translation, role rules, streaming, usage, errors."""

from __future__ import annotations

import pytest

from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    Choice,
    Message,
    ProviderError,
    ProviderSettings,
    TextPart,
    UpstreamError,
    UpstreamInvalidRequest,
    UpstreamRateLimited,
    UpstreamTimeout,
    Usage,
)
from tests.fake_upstream import Behavior
from tests.upstream_fixtures import closed_port, sleeps, upstream, upstream_server  # noqa: F401

KEY = "sk-ant-test-SECRET0123456789"
MODEL = "claude-haiku-4-5-20251001"


def settings(base_url: str, **overrides) -> ProviderSettings:
    values = dict(api_key=KEY, base_url=base_url, connect_timeout_s=1.0, read_timeout_s=2.0, max_retries=2)
    values.update(overrides)
    return ProviderSettings(**values)


@pytest.fixture
def provider(upstream, sleeps):
    return AnthropicProvider(settings(upstream.anthropic_base_url), sleep=sleeps)


def chat(*turns: tuple[str, str], **overrides) -> ChatRequest:
    messages = tuple(Message(role, content) for role, content in turns) or (
        Message("system", "Be brief."), Message("user", "Say hello"))
    values = dict(model=MODEL, messages=messages, max_tokens=50)
    values.update(overrides)
    return ChatRequest(**values)


def drain(iterator) -> tuple[list, Exception | None]:
    received = []
    try:
        for chunk in iterator:
            received.append(chunk)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return received, exc
    return received, None


# --- request translation ---------------------------------------------------------------------------

def test_body_headers_and_path(provider, upstream):
    provider.complete(chat(temperature=0.7, stop=("END", "STOP")))
    [sent] = upstream.requests
    assert sent.path == "/v1/messages"
    assert (sent.headers["x-api-key"], sent.headers["anthropic-version"]) == (KEY, "2023-06-01")
    assert "Authorization" not in sent.headers
    assert sent.body == {"model": MODEL, "max_tokens": 50, "system": "Be brief.",
                         "messages": [{"role": "user", "content": "Say hello"}],
                         "temperature": 0.7, "stop_sequences": ["END", "STOP"]}


def test_leading_systems_become_blocks_and_user_turns_merge(provider, upstream):
    provider.complete(chat(("system", "A"), ("developer", "B"), ("user", "u1"), ("user", "u2"),
                           ("assistant", "a1"), ("user", "u3")))
    body = upstream.requests[0].body
    assert body["system"] == [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "u1"},
                                                             {"type": "text", "text": "u2"}]},
                                {"role": "assistant", "content": "a1"},
                                {"role": "user", "content": "u3"}]


def test_a_system_turn_after_the_conversation_began_is_refused_not_hoisted(provider, upstream):
    with pytest.raises(UpstreamInvalidRequest) as raised:
        provider.validate(chat(("user", "u1"), ("assistant", "a1"), ("system", "B"), ("user", "u2")))
    assert raised.value.param == "messages.2.role"
    assert upstream.requests == []


def test_no_system_means_no_system_field_and_prefill_is_right_stripped(provider, upstream):
    provider.complete(chat(("user", "Name a colour"), ("assistant", "The colour is  \n")))
    body = upstream.requests[0].body
    assert "system" not in body
    assert body["messages"][-1] == {"role": "assistant", "content": "The colour is"}


def test_temperature_and_top_p_are_both_sent_never_dropped(provider, upstream):
    provider.complete(chat(temperature=0.3, top_p=0.9))
    provider.complete(chat(top_p=0.9))
    first, second = (r.body for r in upstream.requests)
    assert (first["temperature"], first["top_p"]) == (0.3, 0.9)
    assert ("temperature" in second, second["top_p"]) == (False, 0.9)


def test_temperature_one_is_allowed(provider, upstream):
    provider.complete(chat(temperature=1.0))
    assert upstream.requests[0].body["temperature"] == 1.0


@pytest.mark.parametrize("turns, param, message", [
    ((("system", "only system"),), "messages",
     "messages must contain at least one user message besides system messages"),
    ((("assistant", "hi"), ("user", "x")), "messages",
     "the first non-system message must come from the user for Anthropic models"),
    ((("system", "s"), ("user", "  ")), "messages.1.content",
     "messages[1] (user) has empty content; Anthropic models need non-empty text in every turn"),
])
def test_role_rules_are_400_before_any_http_call(provider, upstream, turns, param, message):
    request = chat(*turns)
    for call in (provider.validate, provider.complete, lambda r: next(provider.stream(r))):
        with pytest.raises(UpstreamInvalidRequest) as raised:
            call(request)
        assert (raised.value.param, raised.value.message, raised.value.http_status) == (param, message, 400)
    assert upstream.requests == []


@pytest.mark.parametrize("temperature", [1.5, -0.1])
def test_temperature_outside_0_1_is_400_before_any_http_call(provider, upstream, temperature):
    with pytest.raises(UpstreamInvalidRequest) as raised:
        provider.validate(chat(temperature=temperature))
    assert (raised.value.param, raised.value.message) == \
        ("temperature", "temperature must be between 0 and 1 for Anthropic models")
    with pytest.raises(UpstreamInvalidRequest):
        provider.complete(chat(temperature=temperature))
    assert upstream.requests == []


# --- results, stop reasons and usage ---------------------------------------------------------------

def test_complete_normalises_cache_usage(provider, upstream):
    upstream.enqueue(Behavior(reply="Hi there", prompt_tokens=1000, completion_tokens=50, cached_tokens=300,
                              cache_write_tokens=100))
    assert provider.complete(chat()) == ChatResult(
        id="msg_fake1", model=MODEL, family="anthropic",
        choices=(Choice(content=(TextPart("Hi there"),), finish_reason="stop", native_stop_reason="end_turn"),),
        usage=Usage(prompt_tokens=1000, completion_tokens=50, cached_tokens=300, cache_write_tokens=100))


@pytest.mark.parametrize("native, normalised", [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("pause_turn", "length"),
    ("model_context_window_exceeded", "length"), ("tool_use", "tool_calls"), ("refusal", "content_filter"),
    ("brand_new_reason", "stop"),
])
def test_stop_reasons_are_normalised(provider, upstream, native, normalised):
    upstream.enqueue(Behavior(finish_reason=native), Behavior(finish_reason=native))
    assert provider.complete(chat()).finish_reason == normalised
    assert list(provider.stream(chat()))[-1].finish_reason == normalised


def test_stream_yields_deltas_then_finish_and_usage(provider, upstream):
    upstream.enqueue(Behavior(chunks=["Hel", "lo"], prompt_tokens=8, completion_tokens=2, cached_tokens=2))
    assert list(provider.stream(chat())) == [
        ChatChunk(id="msg_fake1", model=MODEL, input_tokens=8),
        ChatChunk(delta="Hel", id="msg_fake1"),
        ChatChunk(delta="lo", id="msg_fake1"),
        ChatChunk(finish_reason="stop", finish_reasons=("stop",), usage=Usage(8, 2, 2, 0), id="msg_fake1",
                  native_stop_reason="end_turn", model=MODEL),
    ]
    assert upstream.requests[0].body["stream"] is True


def test_streams_reuse_the_upstream_connection(provider, upstream):
    """A stream read to message_stop gives its connection back to the pool for the next call."""
    for _ in range(3):
        upstream.enqueue(Behavior(chunks=["Hel", "lo"]))
        assert [c.delta for c in provider.stream(chat()) if c.delta] == ["Hel", "lo"]
    assert upstream.connections == 1


def test_stream_without_usage_ends_with_usage_none(provider, upstream):
    upstream.enqueue(Behavior(chunks=["a"], omit_usage=True))
    assert list(provider.stream(chat()))[-1] == ChatChunk(finish_reason="stop", finish_reasons=("stop",), usage=None,
                                                          id="msg_fake1", native_stop_reason="end_turn", model=MODEL)


# --- HTTP errors and retries -----------------------------------------------------------------------

@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_request_errors_are_invalid_request(provider, upstream, sleeps, status):
    upstream.enqueue(Behavior(status=status, error_message=f"prompt is too long (key {KEY})"))
    with pytest.raises(UpstreamInvalidRequest) as raised:
        provider.complete(chat())
    assert (raised.value.message, raised.value.upstream_status) == \
        ("anthropic rejected the request: prompt is too long (key ***)", status)
    assert (len(upstream.requests), sleeps) == (1, [])


def test_401_is_a_credentials_error(provider, upstream):
    upstream.enqueue(Behavior(status=401, error_message="invalid x-api-key"))
    with pytest.raises(UpstreamError) as raised:
        provider.complete(chat())
    assert (raised.value.message, raised.value.upstream_status) == \
        ("anthropic rejected the gateway's provider credentials", 401)


def test_429_retry_after_is_honoured_then_success(provider, upstream, sleeps):
    upstream.enqueue(Behavior(status=429, retry_after=3), Behavior(reply="ok"))
    assert provider.complete(chat()).content == "ok"
    assert (len(upstream.requests), sleeps) == (2, [3.0])


def test_429_exhausted_is_rate_limited(provider, upstream, sleeps):
    upstream.set_default(Behavior(status=429, retry_after=7, error_message="slow down"))
    with pytest.raises(UpstreamRateLimited) as raised:
        provider.complete(chat())
    assert (raised.value.retry_after, raised.value.message) == (7.0, "anthropic is rate limiting the gateway: slow down")
    assert (len(upstream.requests), sleeps) == (3, [7.0, 7.0])


def test_529_is_retried_then_succeeds(provider, upstream, sleeps):
    upstream.enqueue(Behavior(status=529, error_message="Overloaded"), Behavior(reply="ok"))
    assert provider.complete(chat()).content == "ok"
    assert len(upstream.requests) == 2 and len(sleeps) == 1


def test_529_exhausted_is_upstream_error(provider, upstream):
    upstream.set_default(Behavior(status=529, error_message="Overloaded"))
    with pytest.raises(UpstreamError) as raised:
        next(provider.stream(chat()))
    assert (raised.value.message, raised.value.upstream_status) == \
        ("anthropic is overloaded (HTTP 529): Overloaded", 529)
    assert len(upstream.requests) == 3


def test_500_is_upstream_error(provider, upstream):
    upstream.set_default(Behavior(status=500, error_message="Internal server error"))
    with pytest.raises(UpstreamError, match=r"^anthropic failed with HTTP 500: Internal server error$"):
        provider.complete(chat())


def test_connection_refused(sleeps):
    provider = AnthropicProvider(settings(f"http://127.0.0.1:{closed_port()}", max_retries=1), sleep=sleeps)
    with pytest.raises(UpstreamError, match="^could not connect to anthropic$"):
        provider.complete(chat())
    assert len(sleeps) == 1


def test_read_timeout(upstream, sleeps):
    provider = AnthropicProvider(settings(upstream.anthropic_base_url, read_timeout_s=0.2), sleep=sleeps)
    upstream.enqueue(Behavior(delay_s=0.6))
    with pytest.raises(UpstreamTimeout, match="^anthropic did not respond within the read timeout$"):
        next(provider.stream(chat()))
    assert (len(upstream.requests), sleeps) == (1, [])


def test_mid_stream_drop_is_not_retried(provider, upstream, sleeps):
    upstream.enqueue(Behavior(chunks=["a ", "b ", "c"], drop_after_chunks=1))
    received, error = drain(provider.stream(chat()))
    assert [c.delta for c in received if c.carries_output] == ["a "]
    assert type(error) is UpstreamError and error.message == "the connection to anthropic broke mid-response"
    assert (len(upstream.requests), sleeps) == (1, [])


def test_mid_stream_error_event_raises(provider, upstream):
    upstream.enqueue(Behavior(chunks=["a ", "b"], error_midstream=True))
    received, error = drain(provider.stream(chat()))
    assert [c.delta for c in received if c.carries_output] == ["a "]
    assert type(error) is UpstreamError
    assert error.message == "anthropic failed mid-stream (overloaded_error): Overloaded"
    assert len(upstream.requests) == 1


def test_malformed_json_and_broken_sse(provider, upstream):
    upstream.enqueue(Behavior(malformed=True), Behavior(malformed=True))
    with pytest.raises(UpstreamError, match="^anthropic returned a response that is not a JSON object$"):
        provider.complete(chat())
    received, error = drain(provider.stream(chat()))
    assert received == [] and error.message == "anthropic sent an unreadable stream event"


def test_message_without_usage_is_upstream_error(provider, upstream):
    upstream.enqueue(Behavior(omit_usage=True))
    with pytest.raises(UpstreamError, match="^anthropic returned a message without content or usage$"):
        provider.complete(chat())


@pytest.mark.parametrize("behavior", [
    Behavior(status=401, error_message=f"invalid x-api-key {KEY}"),
    Behavior(status=429, error_message=f"x-api-key: {KEY}"),
    Behavior(status=529, error_message=f"{KEY}"),
    Behavior(chunks=["a", "b"], error_midstream=True, error_message=f"key {KEY}"),
])
def test_errors_never_carry_the_key_or_prompt(provider, upstream, behavior):
    upstream.set_default(behavior)
    with pytest.raises(ProviderError) as raised:
        list(provider.stream(chat(("user", "my secret diary entry"))))
    assert "SECRET" not in raised.value.message and "diary" not in raised.value.message
