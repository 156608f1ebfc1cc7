"""The native /v1/llm answer and stream formats (documented in docs/api.md)."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.errors import error_body
from gateway.money import usd_number
from gateway.providers.base import Message, Usage
from gateway.services.completion_io import Completion, CompletionInput, StreamDelta, StreamEnd, StreamFailure
from gateway.formats.sse import sse_event


def completion_input(data: dict) -> CompletionInput:
    """Schema output -> pipeline input."""
    return CompletionInput(
        messages=tuple(Message(m["role"] if m["role"] != "developer" else "system", m["content"])
                       for m in data["messages"]),
        model=data["model"], provider=data["provider"], max_tokens=data["max_tokens"],
        temperature=data["temperature"], top_p=data["top_p"], stop=data["stop"], stream=data["stream"])


def usage_body(usage: Usage) -> dict:
    body = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}
    if usage.cached_tokens:
        body["cached_tokens"] = usage.cached_tokens
    return body


def completion_body(completion: Completion) -> dict:
    """{id, provider, model, content, finish_reason, usage, cost_usd, latency_ms}."""
    return {
        "id": completion.request_id,
        "provider": completion.entry.provider,
        "model": completion.entry.id,
        "content": completion.result.content,
        "finish_reason": completion.result.finish_reason,
        "usage": usage_body(completion.result.usage),
        "cost_usd": usd_number(completion.cost_nanousd),
        "latency_ms": completion.latency_ms,
    }


def stream_frames(request_id: str, entry, events: Iterator) -> Iterator[str]:
    """event: start, then delta events, then one done (or error) event."""
    yield sse_event({"id": request_id, "provider": entry.provider, "model": entry.id}, "start")
    for event in events:
        if isinstance(event, StreamDelta):
            yield sse_event({"content": event.text}, "delta")
        elif isinstance(event, StreamEnd):
            yield sse_event({"id": request_id, "finish_reason": event.finish_reason,
                             "usage": usage_body(event.usage),
                             "cost_usd": usd_number(event.cost_nanousd),
                             "latency_ms": event.latency_ms}, "done")
        elif isinstance(event, StreamFailure):
            error = event.error
            yield sse_event(error_body(error.error_type, error.message, request_id=request_id), "error")
