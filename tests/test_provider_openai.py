"""OpenAIProvider against the real fake upstream: translation, streaming, usage, retries, error mapping."""

from __future__ import annotations

import pytest
import requests

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
from gateway.providers.openai import OpenAIProvider
from gateway.providers.transport import (
    backoff_delay,
    make_session,
    retry_hint,
    sanitize,
    upstream_failure,
)
from tests.fake_upstream import Behavior
from tests.upstream_fixtures import closed_port, sleeps, upstream, upstream_server  # noqa: F401

KEY = "sk-test-openai-SECRET0123456789"
PROMPT = "Tell me the launch codes"
MESSAGES = (Message("system", "Be brief."), Message("user", PROMPT))


def settings(base_url: str, **overrides) -> ProviderSettings:
    values = dict(api_key=KEY, base_url=base_url, connect_timeout_s=1.0, read_timeout_s=2.0, max_retries=2)
    values.update(overrides)
    return ProviderSettings(**values)


@pytest.fixture
def provider(upstream, sleeps):
    return OpenAIProvider(settings(upstream.openai_base_url), sleep=sleeps)


def chat(**overrides) -> ChatRequest:
    values = dict(model="gpt-4o", messages=MESSAGES, max_tokens=100)
    values.update(overrides)
    return ChatRequest(**values)


def drain(iterator) -> tuple[list, Exception | None]:
    """Chunks received before the iterator raised, and what it raised."""
    received = []
    try:
        for chunk in iterator:
            received.append(chunk)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return received, exc
    return received, None


# --- request translation ---------------------------------------------------------------------------

def test_body_headers_and_path(provider, upstream):
    provider.complete(chat(temperature=0.2, top_p=0.9, stop=("END",)))
    [sent] = upstream.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.body == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}],
        "max_completion_tokens": 100, "temperature": 0.2, "top_p": 0.9, "stop": ["END"],
    }


def test_the_adapter_forwards_sampling_as_given(provider, upstream):
    """Reasoning models' refusals of temperature/top_p/stop happen in the pipeline (a 400), not here."""
    provider.complete(chat(model="o3", temperature=1, reasoning=True, reasoning_effort="high"))
    assert upstream.requests[0].body == {
        "model": "o3", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}],
        "max_completion_tokens": 100, "temperature": 1, "reasoning_effort": "high"}


def test_the_prepared_request_is_what_session_post_sends(provider, upstream):
    """The request template (transport.RequestTemplate) sends the same head and body as Session.post
    would, every time, and never sends back a cookie an upstream set (the session serves every caller)."""
    upstream.enqueue(Behavior(headers={"Set-Cookie": "__cf_bm=abc; Path=/"}))
    provider.complete(chat())
    provider.complete(chat())
    body = provider.request_body(chat(), stream=False)
    requests.Session().post(upstream.openai_base_url + "/chat/completions", json=body,
                            headers={"Authorization": f"Bearer {KEY}"})
    first, second, plain = upstream.requests
    skip = {"cookie"}
    as_sent = lambda recorded: sorted((k.lower(), v) for k, v in recorded.headers.items() if k.lower() not in skip)
    assert as_sent(first) == as_sent(second) == as_sent(plain)
    assert first.body == second.body == plain.body == body
    assert "cookie" not in {k.lower() for k in second.headers.keys()}


def test_extra_headers_are_sent_and_base_url_slash_is_tolerated(upstream, sleeps):
    custom = settings(upstream.openai_base_url + "/", extra_headers={"OpenAI-Project": "proj_1"})
    OpenAIProvider(custom, sleep=sleeps).complete(chat())
    assert upstream.requests[0].path == "/v1/chat/completions"
    assert upstream.requests[0].headers["OpenAI-Project"] == "proj_1"


# --- results, finish reasons and usage -------------------------------------------------------------

def test_complete_returns_content_and_cached_usage(provider, upstream):
    upstream.enqueue(Behavior(reply="Hi!", prompt_tokens=1000, completion_tokens=500, cached_tokens=200))
    assert provider.complete(chat()) == ChatResult(
        id="chatcmpl-fake1", model="gpt-4o", family="openai", service_tier="default", system_fingerprint="fp_fake",
        choices=(Choice(content=(TextPart("Hi!"),), finish_reason="stop", native_stop_reason="stop",
                        annotations=[]),),
        usage=Usage(prompt_tokens=1000, completion_tokens=500, cached_tokens=200))


@pytest.mark.parametrize("native, normalised", [
    ("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"), ("function_call", "tool_calls"),
    ("content_filter", "content_filter"), ("something_new", "stop"),
])
def test_finish_reasons_are_normalised(provider, upstream, native, normalised):
    upstream.enqueue(Behavior(finish_reason=native), Behavior(finish_reason=native))
    assert provider.complete(chat()).finish_reason == normalised
    assert list(provider.stream(chat()))[-1].finish_reason == normalised


def test_stream_yields_deltas_then_finish_and_usage(provider, upstream):
    upstream.enqueue(Behavior(chunks=["Foo", "!"], prompt_tokens=9, completion_tokens=2, cached_tokens=3))
    head = dict(id="chatcmpl-fake1", model="gpt-4o", system_fingerprint="fp_fake")
    assert list(provider.stream(chat())) == [
        ChatChunk(delta="Foo", **head),
        ChatChunk(delta="!", **head),
        ChatChunk(finish_reason="stop", finish_reasons=("stop",), usage=Usage(9, 2, 3), native_stop_reason="stop",
                  **head),
    ]
    body = upstream.requests[0].body
    assert (body["stream"], body["stream_options"]) == (True, {"include_usage": True})


def test_stream_without_usage_chunk_ends_with_usage_none(provider, upstream):
    upstream.enqueue(Behavior(chunks=["a", "b"], omit_usage=True))
    chunks = list(provider.stream(chat()))
    assert [c.delta for c in chunks] == ["a", "b", ""]
    assert (chunks[-1].finish_reason, chunks[-1].usage) == ("stop", None)


def test_default_fake_usage_counts_words(provider, upstream):
    result = provider.complete(chat())
    assert result.content == "Hello from the fake upstream."
    assert result.usage == Usage(prompt_tokens=7, completion_tokens=5)  # "Be brief." + 5 prompt words


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_streams_reuse_the_upstream_connection(provider, upstream, framing):
    """A finished stream's connection goes back to the pool: three streams and a completion over one TCP
    connection (to a real provider each new connection would cost a TLS handshake before the first token)."""
    for _ in range(3):
        upstream.enqueue(Behavior(chunks=["a", "b"], sse_framing=framing))
        assert [c.delta for c in provider.stream(chat())] == ["a", "b", ""]
    assert provider.complete(chat()).content == "Hello from the fake upstream."
    assert upstream.connections == 1


def test_closing_a_stream_early_is_quiet(provider, upstream):
    upstream.enqueue(Behavior(chunks=["a", "b", "c"]))
    stream = provider.stream(chat())
    assert next(stream).delta == "a"
    stream.close()
    assert provider.complete(chat()).content == "Hello from the fake upstream."


# --- HTTP errors and retries -----------------------------------------------------------------------

def test_400_is_invalid_request_with_sanitized_message_and_param(provider, upstream, sleeps):
    upstream.enqueue(Behavior(status=400, error_param="temperature",
                              error_message="Unsupported value: 'temperature' for key sk-live-abcdef123456."))
    with pytest.raises(UpstreamInvalidRequest) as raised:
        provider.complete(chat())
    error = raised.value
    assert error.message == "openai rejected the request: Unsupported value: 'temperature' for key sk-***"
    assert (error.param, error.upstream_status, error.http_status) == ("temperature", 400, 400)
    assert (len(upstream.requests), sleeps) == (1, [])


@pytest.mark.parametrize("status", [404, 413, 422])
def test_other_request_errors_are_invalid_request(provider, upstream, status):
    upstream.enqueue(Behavior(status=status, error_message="nope"))
    with pytest.raises(UpstreamInvalidRequest) as raised:
        provider.complete(chat())
    assert (raised.value.message, raised.value.upstream_status) == ("openai rejected the request: nope", status)
    assert len(upstream.requests) == 1


def test_long_upstream_messages_are_truncated(provider, upstream):
    upstream.enqueue(Behavior(status=400, error_message="word " * 200))
    with pytest.raises(UpstreamInvalidRequest) as raised:
        provider.complete(chat())
    detail = raised.value.message.removeprefix("openai rejected the request: ")
    assert len(detail) == 300 and detail.endswith("…")


@pytest.mark.parametrize("status", [401, 403])
def test_credential_errors_hide_the_upstream_message(provider, upstream, sleeps, status):
    upstream.enqueue(Behavior(status=status, error_message=f"Incorrect API key provided: {KEY}"))
    with pytest.raises(UpstreamError) as raised:
        provider.complete(chat())
    assert type(raised.value) is UpstreamError
    assert raised.value.message == "openai rejected the gateway's provider credentials"
    assert (raised.value.upstream_status, raised.value.http_status) == (status, 502)
    assert (len(upstream.requests), sleeps) == (1, [])


def test_429_retry_after_is_honoured_then_success(provider, upstream, sleeps):
    upstream.enqueue(Behavior(status=429, retry_after=2, error_message="slow down"), Behavior(reply="ok"))
    assert provider.complete(chat()).content == "ok"
    assert (len(upstream.requests), sleeps) == (2, [2.0])


def test_retry_after_ms_wins_over_retry_after(provider, upstream, sleeps):
    upstream.enqueue(Behavior(status=429, retry_after=9, headers={"retry-after-ms": "250"}), Behavior())
    provider.complete(chat())
    assert sleeps == [0.25]


def test_429_exhausted_is_rate_limited_with_retry_after(provider, upstream, sleeps):
    upstream.enqueue(*[Behavior(status=429, retry_after=1, error_message="slow down")] * 3)
    with pytest.raises(UpstreamRateLimited) as raised:
        provider.complete(chat())
    error = raised.value
    assert (error.message, error.retry_after, error.upstream_status, error.http_status) == \
        ("openai is rate limiting the gateway: slow down", 1.0, 429, 429)
    assert (len(upstream.requests), sleeps) == (3, [1.0, 1.0])


def test_429_with_a_hint_over_60s_is_not_retried(provider, upstream, sleeps):
    upstream.enqueue(Behavior(status=429, retry_after=120))
    with pytest.raises(UpstreamRateLimited) as raised:
        provider.complete(chat())
    assert raised.value.retry_after == 120.0
    assert (len(upstream.requests), sleeps) == (1, [])


def test_500_is_retried_with_backoff_then_succeeds(provider, upstream, sleeps):
    upstream.enqueue(Behavior(status=500, error_message="boom"), Behavior(status=503), Behavior(reply="ok"))
    assert provider.complete(chat()).content == "ok"
    assert len(upstream.requests) == 3
    assert 0.375 <= sleeps[0] <= 0.5 and 0.75 <= sleeps[1] <= 1.0


@pytest.mark.parametrize("status, message", [
    (500, "openai failed with HTTP 500: boom"),
    (529, "openai is overloaded (HTTP 529): boom"),
    (408, "openai failed with HTTP 408: boom"),
])
def test_server_errors_exhausted_are_upstream_errors(provider, upstream, sleeps, status, message):
    upstream.set_default(Behavior(status=status, error_message="boom"))
    with pytest.raises(UpstreamError) as raised:
        provider.complete(chat())
    assert (raised.value.message, raised.value.upstream_status, raised.value.http_status) == (message, status, 502)
    assert (len(upstream.requests), len(sleeps)) == (3, 2)


def test_x_should_retry_false_is_obeyed(provider, upstream, sleeps):
    upstream.enqueue(Behavior(status=500, headers={"x-should-retry": "false"}))
    with pytest.raises(UpstreamError):
        provider.complete(chat())
    assert (len(upstream.requests), sleeps) == (1, [])


def test_stream_is_retried_before_the_body(provider, upstream, sleeps):
    upstream.enqueue(Behavior(status=529, error_message="busy"), Behavior(chunks=["x"]))
    assert [c.delta for c in provider.stream(chat())] == ["x", ""]
    assert len(upstream.requests) == 2 and len(sleeps) == 1


def test_stream_error_status_is_mapped(provider, upstream):
    upstream.enqueue(Behavior(status=400, error_message="bad stop"))
    with pytest.raises(UpstreamInvalidRequest, match="openai rejected the request: bad stop"):
        next(provider.stream(chat()))


# --- connection failures ---------------------------------------------------------------------------

def test_connection_refused_is_retried_then_upstream_error(sleeps):
    provider = OpenAIProvider(settings(f"http://127.0.0.1:{closed_port()}/v1"), sleep=sleeps)
    with pytest.raises(UpstreamError) as raised:
        provider.complete(chat())
    assert type(raised.value) is UpstreamError
    assert (raised.value.message, raised.value.upstream_status) == ("could not connect to openai", None)
    assert len(sleeps) == 2


def test_read_timeout_is_upstream_timeout_and_not_retried(upstream, sleeps):
    provider = OpenAIProvider(settings(upstream.openai_base_url, read_timeout_s=0.2), sleep=sleeps)
    upstream.enqueue(Behavior(delay_s=0.6))
    with pytest.raises(UpstreamTimeout) as raised:
        provider.complete(chat())
    assert raised.value.message == "openai did not respond within the read timeout"
    assert (raised.value.http_status, len(upstream.requests), sleeps) == (504, 1, [])


def test_stream_stalling_mid_body_is_upstream_timeout(upstream, sleeps):
    provider = OpenAIProvider(settings(upstream.openai_base_url, read_timeout_s=0.2), sleep=sleeps)
    upstream.enqueue(Behavior(chunks=["a", "b"], chunk_delay_s=0.6))
    received, error = drain(provider.stream(chat()))
    assert (received, type(error)) == ([], UpstreamTimeout)
    assert (len(upstream.requests), sleeps) == (1, [])


def test_mid_stream_drop_raises_after_chunks_and_is_not_retried(provider, upstream, sleeps):
    upstream.enqueue(Behavior(chunks=["one ", "two ", "three ", "four"], drop_after_chunks=2))
    received, error = drain(provider.stream(chat()))
    assert [c.delta for c in received] == ["one ", "two "]
    assert type(error) is UpstreamError and error.message == "the connection to openai broke mid-response"
    assert (len(upstream.requests), sleeps) == (1, [])


def test_mid_stream_error_line_raises(provider, upstream):
    upstream.enqueue(Behavior(chunks=["one ", "two"], error_midstream=True, error_message=f"boom {KEY}"))
    received, error = drain(provider.stream(chat()))
    assert [c.delta for c in received] == ["one "]
    assert type(error) is UpstreamError and error.message == "openai failed mid-stream: boom ***"
    assert len(upstream.requests) == 1


def test_malformed_json_is_upstream_error(provider, upstream, sleeps):
    upstream.enqueue(Behavior(malformed=True))
    with pytest.raises(UpstreamError) as raised:
        provider.complete(chat())
    assert (raised.value.message, raised.value.upstream_status) == \
        ("openai returned a response that is not a JSON object", 200)
    assert (len(upstream.requests), sleeps) == (1, [])


def test_completion_without_usage_is_upstream_error(provider, upstream):
    upstream.enqueue(Behavior(omit_usage=True))
    with pytest.raises(UpstreamError, match="^openai returned a completion without choices or usage$"):
        provider.complete(chat())


def test_broken_sse_is_upstream_error(provider, upstream):
    upstream.enqueue(Behavior(malformed=True))
    received, error = drain(provider.stream(chat()))
    assert received == [] and type(error) is UpstreamError
    assert error.message == "openai sent an unreadable stream event"


@pytest.mark.parametrize("behavior, stream", [
    (Behavior(status=400, error_message=f"bad request for {PROMPT!r} with key {KEY}"), False),
    (Behavior(status=401, error_message=f"Incorrect API key provided: {KEY}"), False),
    (Behavior(status=429, error_message=f"Authorization: Bearer {KEY}"), True),
    (Behavior(status=500, error_message=f"key={KEY}"), True),
    (Behavior(chunks=["a", "b"], error_midstream=True, error_message=f"key={KEY}"), True),
])
def test_errors_never_carry_the_key(provider, upstream, behavior, stream):
    upstream.set_default(behavior)
    with pytest.raises(ProviderError) as raised:
        list(provider.stream(chat())) if stream else provider.complete(chat())
    assert "SECRET" not in str(raised.value) and "SECRET" not in raised.value.message


def test_errors_never_carry_the_prompt_text(provider, upstream):
    for behavior in (Behavior(status=401), Behavior(status=500), Behavior(malformed=True)):
        upstream.reset()
        upstream.set_default(behavior)
        with pytest.raises(ProviderError) as raised:
            provider.complete(chat())
        assert "launch codes" not in raised.value.message


# --- transport helpers -----------------------------------------------------------------------------

def test_backoff_is_exponential_capped_and_jittered():
    assert [backoff_delay(n, rng=lambda: 0.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff_delay(0, rng=lambda: 1.0) == 0.375


@pytest.mark.parametrize("headers, seconds", [
    ({"retry-after-ms": "1500"}, 1.5), ({"retry-after": "3"}, 3.0), ({"retry-after": "0.5"}, 0.5),
    ({"retry-after": "soon"}, None), ({}, None), ({"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0),
])
def test_retry_hint(headers, seconds):
    assert retry_hint(headers) == seconds


def test_retry_hint_http_date_in_the_future():
    from email.utils import formatdate
    import time

    assert 28 <= retry_hint({"retry-after": formatdate(time.time() + 30, usegmt=True)}) <= 30


def test_requests_exceptions_map_at_one_boundary():
    assert isinstance(upstream_failure(requests.ConnectTimeout(), "openai"), UpstreamTimeout)
    assert upstream_failure(requests.ConnectTimeout(), "openai").message == "timed out connecting to openai"
    assert isinstance(upstream_failure(requests.ReadTimeout(), "openai"), UpstreamTimeout)
    assert upstream_failure(requests.ConnectionError(), "openai").message == \
        "the connection to openai broke before it answered"
    assert upstream_failure(requests.exceptions.InvalidURL("http://x"), "openai").message == \
        "the request to openai failed (InvalidURL)"


def test_only_failures_before_a_connection_are_free():
    """The ledger bills what the upstream may have seen: a refused connection or a connect timeout never
    reached it; a read timeout or a reset after connecting may have (billable)."""
    from requests.packages.urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

    refused = requests.ConnectionError(MaxRetryError(None, "/v1", NewConnectionError(None, "refused")))
    reset = requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))
    assert (upstream_failure(refused, "openai").message, upstream_failure(refused, "openai").billable) == \
        ("could not connect to openai", False)
    assert upstream_failure(requests.ConnectTimeout(), "openai").billable is False
    assert upstream_failure(requests.exceptions.SSLError(), "openai").billable is False
    assert upstream_failure(reset, "openai").billable is True
    assert upstream_failure(requests.ReadTimeout(), "openai").billable is True
    assert upstream_failure(requests.exceptions.ChunkedEncodingError(), "openai").billable is True


def test_a_read_timeout_inside_a_body_is_a_timeout_and_never_retried():
    from requests.packages.urllib3.exceptions import ReadTimeoutError

    from gateway.providers.transport import _is_connect_failure

    stalled = requests.ConnectionError(ReadTimeoutError(None, "/v1/chat/completions", "Read timed out."))
    assert isinstance(upstream_failure(stalled, "openai"), UpstreamTimeout)
    assert _is_connect_failure(stalled) is False
    assert _is_connect_failure(requests.ConnectionError()) is True
    assert _is_connect_failure(requests.ConnectTimeout()) is True
    assert _is_connect_failure(requests.ReadTimeout()) is False


def test_sanitize_masks_keys_and_folds_whitespace():
    text = "bad\n key sk-proj-abc123XYZ and dom_abcd1234_efgh and Bearer abc.def org-AbCd1234 ok"
    assert sanitize(text) == "bad key sk-*** and dom_*** and Bearer *** org-*** ok"
    assert sanitize("my custom key hunter2-key", secrets=("hunter2-key",)) == "my custom key ***"


def test_session_pool_fits_64_connections_without_urllib3_retries():
    adapter = make_session().get_adapter("https://api.openai.com")
    assert adapter._pool_maxsize == 64 and adapter.max_retries.total == 0
