"""Anthropic Message shapes and the message_start ... message_stop event sequence for /v1/messages."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.errors import error_body
from gateway.formats.sse import sse_event
from gateway.providers.base import Message, Usage
from gateway.services.completion_io import Completion, CompletionInput, StreamDelta, StreamEnd, StreamFailure

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "content_filter": "refusal"}


def completion_input(data: dict) -> CompletionInput:
    """Schema output -> pipeline input; the top-level system prompt becomes a system turn."""
    messages = [Message(m["role"], m["content"]) for m in data["messages"]]
    if data.get("system"):
        messages.insert(0, Message("system", data["system"]))
    return CompletionInput(messages=tuple(messages), model=data["model"], max_tokens=data["max_tokens"],
                           temperature=data.get("temperature"), top_p=data.get("top_p"),
                           stop=data.get("stop_sequences") or (), stream=data.get("stream", False))


def message_id(request_id: str) -> str:
    return f"msg_{request_id.removeprefix('req_')}"


def usage_body(usage: Usage) -> dict:
    uncached = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    return {"input_tokens": uncached, "output_tokens": usage.completion_tokens,
            "cache_read_input_tokens": usage.cached_tokens,
            "cache_creation_input_tokens": usage.cache_write_tokens}


def message_body(completion: Completion) -> dict:
    """A Message object."""
    return {
        "id": message_id(completion.request_id), "type": "message", "role": "assistant",
        "model": completion.entry.id,
        "content": [{"type": "text", "text": completion.result.content}],
        "stop_reason": STOP_REASONS.get(completion.result.finish_reason, "end_turn"), "stop_sequence": None,
        "usage": usage_body(completion.result.usage),
    }


def stream_frames(request_id: str, entry, events: Iterator) -> Iterator[str]:
    """message_start, one text block's start/deltas/stop, message_delta with usage, message_stop."""
    start = {"id": message_id(request_id), "type": "message", "role": "assistant", "model": entry.id,
             "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {"input_tokens": 0, "output_tokens": 0}}
    yield _event("message_start", {"message": start})
    yield _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    for event in events:
        if isinstance(event, StreamDelta):
            yield _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": event.text}})
        elif isinstance(event, StreamEnd):
            yield _event("content_block_stop", {"index": 0})
            yield _event("message_delta", {
                "delta": {"stop_reason": STOP_REASONS.get(event.finish_reason, "end_turn"), "stop_sequence": None},
                "usage": usage_body(event.usage)})
            yield _event("message_stop", {})
        elif isinstance(event, StreamFailure):
            body = error_body(event.error.error_type, event.error.message, request_id=request_id)
            yield sse_event({"type": "error", **body}, "error")


def _event(name: str, data: dict) -> str:
    return sse_event({"type": name, **data}, name)
