"""The native /v1/llm answer and stream formats (documented in docs/api.md)."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.errors import error_body
from gateway.money import usd_number
from gateway.formats.sse import sse_event
from gateway.providers.base import ThinkingPart, ToolCallPart, Usage
from gateway.services.completion_io import (Completion, CompletionInput, StreamDelta, StreamEnd, StreamFailure,
                                           draft_request)


def completion_input(data: dict) -> CompletionInput:
    """Schema output -> pipeline input (the native API speaks the neutral model directly)."""
    request = draft_request(
        messages=data["messages"], temperature=data["temperature"], top_p=data["top_p"], stop=data["stop"],
        tools=data["tools"], tool_choice=data["tool_choice"], parallel_tool_calls=data["parallel_tool_calls"],
        response_format=data["response_format"], reasoning_effort=data["reasoning_effort"], user=data["user"])
    return CompletionInput(request=request, model=data["model"], provider=data["provider"],
                           max_tokens=data["max_tokens"], stream=data["stream"])


def usage_body(usage: Usage) -> dict:
    body = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}
    if usage.cached_tokens:
        body["cached_tokens"] = usage.cached_tokens
    return body


def completion_body(completion: Completion) -> dict:
    """{id, provider, model, content, [tool_calls], [thinking], finish_reason, usage, cost_usd, latency_ms}."""
    choice = completion.result.choices[0]
    body = {
        "id": completion.request_id,
        "provider": completion.entry.provider,
        "model": completion.entry.id,
        "content": choice.text,
        "finish_reason": choice.finish_reason,
        "usage": usage_body(completion.result.usage),
        "cost_usd": usd_number(completion.cost_nanousd),
        "latency_ms": completion.latency_ms,
    }
    calls = [{"id": p.id, "name": p.name, "arguments": p.arguments} for p in choice.content
             if isinstance(p, ToolCallPart)]
    if calls:
        body["tool_calls"] = calls
    thinking = [{"thinking": p.thinking, "signature": p.signature} for p in choice.content
                if isinstance(p, ThinkingPart)]
    if thinking:
        body["thinking"] = thinking
    return body


def stream_frames(request_id: str, entry, events: Iterator) -> Iterator[str]:
    """event: start, then delta events, then one done (or error) event."""
    yield sse_event({"id": request_id, "provider": entry.provider, "model": entry.id}, "start")
    for event in events:
        if isinstance(event, StreamDelta) and _delta(event.chunk):
            yield sse_event(_delta(event.chunk), "delta")
        elif isinstance(event, StreamEnd):
            yield sse_event({"id": request_id, "finish_reason": event.finish_reason,
                             "usage": usage_body(event.usage),
                             "cost_usd": usd_number(event.cost_nanousd),
                             "latency_ms": event.latency_ms}, "done")
        elif isinstance(event, StreamFailure):
            error = event.error
            yield sse_event(error_body(error.error_type, error.message, request_id=request_id), "error")


def _delta(chunk) -> dict:
    """{"content"} for text; {"tool_call": {index, id?, name?, arguments}}; {"thinking"} for reasoning."""
    delta: dict = {}
    if chunk.delta or chunk.refusal:
        delta["content"] = chunk.delta + (chunk.refusal or "")
    if chunk.tool_call is not None:
        call = chunk.tool_call
        delta["tool_call"] = {"index": call.index, "arguments": call.arguments,
                              **({"id": call.id} if call.id is not None else {}),
                              **({"name": call.name} if call.name is not None else {})}
    if chunk.thinking is not None and (chunk.thinking.text or chunk.thinking.signature):
        delta["thinking"] = {"text": chunk.thinking.text, "signature": chunk.thinking.signature}
    return delta
