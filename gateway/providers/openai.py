"""The OpenAI Chat Completions adapter (also fits OpenAI-compatible servers such as vLLM or Ollama).

A stream that ends without a usage chunk still ends with a final ChatChunk (finish_reason set,
usage=None), so the caller can bill by estimate; a stream cut off before any finish_reason raises.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    UpstreamError,
    Usage,
)
from gateway.providers.http_provider import HttpProvider
from gateway.providers.transport import parse_event_json, sanitize

NAME = "openai"
FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                  "function_call": "tool_calls", "content_filter": "content_filter"}


class OpenAIProvider(HttpProvider):
    """Sends ChatRequests to {base_url}/chat/completions."""

    name = NAME
    path = "/chat/completions"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def request_body(self, request: ChatRequest, stream: bool) -> dict:
        return request_body(request, stream)

    def parse_result(self, body: dict, requested_model: str) -> ChatResult:
        return parse_completion(body, requested_model)

    def parse_events(self, events, secrets) -> Iterator[ChatChunk]:
        return parse_stream(events, secrets)


def request_body(request: ChatRequest, stream: bool) -> dict:
    """The chat/completions JSON body, without the parameters the model does not accept."""
    body: dict = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "max_completion_tokens": request.max_tokens,
    }
    if request.supports_sampling:
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
    if request.supports_stop and request.stop:
        body["stop"] = list(request.stop)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def normalise_finish_reason(reason: str | None) -> str:
    """OpenAI's finish_reason as one of base.FINISH_REASONS (unknown or missing -> stop)."""
    return FINISH_REASONS.get(reason or "", "stop")


def parse_usage(usage: dict) -> Usage:
    """OpenAI usage -> Usage; prompt_tokens already includes cached tokens."""
    details = usage.get("prompt_tokens_details") or {}
    return Usage(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                 completion_tokens=int(usage.get("completion_tokens") or 0),
                 cached_tokens=int(details.get("cached_tokens") or 0))


def parse_completion(body: dict, requested_model: str) -> ChatResult:
    """A chat.completion body -> ChatResult; UpstreamError when choices or usage are missing."""
    try:
        choice = body["choices"][0]
        content = choice["message"].get("content") or ""
        usage = parse_usage(body["usage"])
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise UpstreamError(f"{NAME} returned a completion without choices or usage") from None
    return ChatResult(id=str(body.get("id") or ""), model=str(body.get("model") or requested_model),
                      content=content, finish_reason=normalise_finish_reason(choice.get("finish_reason")),
                      usage=usage)


def parse_stream(events, secrets=()) -> Iterator[ChatChunk]:
    """chat.completion.chunk events -> ChatChunks; a mid-stream error or an early end raises UpstreamError."""
    stream_id, finish_reason, usage = None, None, None
    for event in events:
        if event.data.strip() == "[DONE]":
            break
        payload = parse_event_json(event, NAME)
        if payload.get("error"):
            raise _midstream_error(payload["error"], secrets)
        stream_id = payload.get("id") or stream_id
        if payload.get("usage"):
            usage = _stream_usage(payload["usage"])
        for choice in payload.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield ChatChunk(delta=text, id=stream_id)
            if choice.get("finish_reason"):
                finish_reason = normalise_finish_reason(choice["finish_reason"])
    if finish_reason is None:
        raise UpstreamError(f"the {NAME} stream ended before the completion finished")
    yield ChatChunk(finish_reason=finish_reason, usage=usage, id=stream_id)


def _stream_usage(usage: object) -> Usage:
    try:
        return parse_usage(usage)
    except (AttributeError, TypeError, ValueError):
        raise UpstreamError(f"{NAME} sent an unreadable usage chunk") from None


def _midstream_error(error: object, secrets) -> UpstreamError:
    message = error.get("message") if isinstance(error, dict) else error
    return UpstreamError(f"{NAME} failed mid-stream: {sanitize(message, secrets) or 'unknown error'}")
