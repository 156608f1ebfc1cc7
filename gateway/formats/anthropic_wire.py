"""Anthropic Message shapes and the message_start ... message_stop event sequence for /v1/messages.

Answers carry every block the upstream returned (text with citations, tool_use, thinking with its
signature, redacted_thinking), Claude's own stop_reason and matched stop_sequence, and input tokens from
message_start on. Streams open one content block per kind of output, with consecutive indexes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from gateway.errors import anthropic_error_body
from gateway.formats.sse import sse_event
from gateway.providers.anthropic import block_to_wire
from gateway.providers.base import ANTHROPIC, Choice, Message, NativePart, ToolCallPart, Usage, WireOptions
from gateway.schemas.compat import ANTHROPIC_OPTIONS
from gateway.services.completion_io import (Completion, CompletionInput, StreamDelta, StreamEnd, StreamFailure,
                                           StreamStart, draft_request)

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "content_filter": "refusal"}
PASSED_HEADERS = ("anthropic-beta",)


def completion_input(data: dict, headers: Mapping[str, str] | None = None) -> CompletionInput:
    """Schema output (a Messages or a count_tokens body) -> pipeline input; the top-level system prompt
    becomes a leading system turn."""
    messages = list(data["messages"])
    if data.get("system"):
        messages.insert(0, Message("system", data["system"]))
    choice, parallel = data.get("tool_choice") or (None, None)
    effort, response_format = data.get("output_config") or (None, None)
    response_format = response_format or data.get("output_format")
    options = {name: data[name] for name in ANTHROPIC_OPTIONS if data.get(name) is not None}
    passed = {name: value for name, value in (headers or {}).items() if name.lower() in PASSED_HEADERS}
    request = draft_request(
        messages=tuple(messages), temperature=data.get("temperature"), top_p=data.get("top_p"),
        stop=data.get("stop_sequences") or (), family=ANTHROPIC, tools=data.get("tools") or (),
        tool_choice=choice, parallel_tool_calls=parallel, response_format=response_format,
        reasoning_effort=effort, thinking=data.get("thinking"),
        user=(data.get("metadata") or {}).get("user_id"),
        options=WireOptions(ANTHROPIC, options) if options else WireOptions(),
        headers={name.lower(): value for name, value in passed.items()})
    return CompletionInput(request=request, model=data["model"], max_tokens=data.get("max_tokens"),
                           stream=data.get("stream", False))


def message_id(request_id: str) -> str:
    return f"msg_{request_id.removeprefix('req_')}"


def usage_body(usage: Usage) -> dict:
    uncached = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    return {"input_tokens": uncached, "output_tokens": usage.completion_tokens,
            "cache_read_input_tokens": usage.cached_tokens,
            "cache_creation_input_tokens": usage.cache_write_tokens}


def stop_reason(finish_reason: str, native: str | None, provider: str) -> str:
    """Claude's own stop_reason when Claude answered; OpenAI's finish_reason mapped otherwise."""
    if provider == ANTHROPIC and native:
        return native
    return STOP_REASONS.get(finish_reason, "end_turn")


def content_blocks(choice: Choice) -> list[dict]:
    """An answer's parts as Anthropic blocks, with the adapter's own part mapping (providers/anthropic.py);
    a GPT tool call's arguments that are not a JSON object come back as an empty input."""
    blocks = []
    for part in choice.content:
        if isinstance(part, ToolCallPart):
            blocks.append({"type": "tool_use", "id": part.id, "name": part.name, "input": _input(part.arguments)})
        elif not isinstance(part, NativePart) or part.family == ANTHROPIC:
            blocks.append(block_to_wire(part, "content", foreign=False))
    return blocks


def _input(arguments: str):
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def message_body(completion: Completion) -> dict:
    """A Message object."""
    choice = completion.result.choices[0]
    return {
        "id": message_id(completion.request_id), "type": "message", "role": "assistant",
        "model": completion.entry.id, "content": content_blocks(choice),
        "stop_reason": stop_reason(choice.finish_reason, choice.native_stop_reason, completion.entry.provider),
        "stop_sequence": choice.stop_sequence,
        "usage": usage_body(completion.result.usage),
    }


class _Blocks:
    """Opens and closes content blocks as the kind of output changes, numbering them 0, 1, ..."""

    def __init__(self) -> None:
        self.index = -1
        self.key: tuple | None = None

    def open(self, key: tuple, block: dict) -> list[str]:
        if key == self.key:
            return []
        frames = self.close()
        self.index += 1
        self.key = key
        return frames + [_event("content_block_start", {"index": self.index, "content_block": block})]

    def close(self) -> list[str]:
        if self.key is None:
            return []
        self.key = None
        return [_event("content_block_stop", {"index": self.index})]

    def delta(self, delta: dict) -> str:
        return _event("content_block_delta", {"index": self.index, "delta": delta})


def delta_frames(blocks: _Blocks, piece) -> list[str]:
    """One neutral chunk as content_block_start/_delta events."""
    frames: list[str] = []
    thinking = piece.thinking
    if thinking is not None:
        if thinking.redacted is not None:
            frames += blocks.open(("redacted", blocks.index + 1), {"type": "redacted_thinking",
                                                                    "data": thinking.redacted})
            frames += blocks.close()
        else:
            frames += blocks.open(("thinking",), {"type": "thinking", "thinking": "", "signature": ""})
            if thinking.text:
                frames.append(blocks.delta({"type": "thinking_delta", "thinking": thinking.text}))
            if thinking.signature:
                frames.append(blocks.delta({"type": "signature_delta", "signature": thinking.signature}))
    text = piece.delta + (piece.refusal or "")
    if text or piece.citation:
        frames += blocks.open(("text",), {"type": "text", "text": ""})
    if piece.citation:
        frames.append(blocks.delta({"type": "citations_delta", "citation": dict(piece.citation)}))
    if text:
        frames.append(blocks.delta({"type": "text_delta", "text": text}))
    call = piece.tool_call
    if call is not None:
        frames += blocks.open(("tool", call.index), {"type": "tool_use", "id": call.id or "", "name": call.name or "",
                                                    "input": {}})
        if call.arguments:
            frames.append(blocks.delta({"type": "input_json_delta", "partial_json": call.arguments}))
    return frames


def stream_frames(request_id: str, entry, events: Iterator) -> Iterator[str]:
    """message_start (with input tokens), content blocks, message_delta with usage, message_stop."""
    blocks = _Blocks()
    for event in events:
        if isinstance(event, StreamStart):
            start = {"id": message_id(request_id), "type": "message", "role": "assistant", "model": entry.id,
                     "content": [], "stop_reason": None, "stop_sequence": None,
                     "usage": {"input_tokens": event.input_tokens, "output_tokens": 0}}
            yield _event("message_start", {"message": start})
        elif isinstance(event, StreamDelta):
            yield from delta_frames(blocks, event.chunk)
        elif isinstance(event, StreamEnd):
            if blocks.index < 0:
                yield from blocks.open(("text",), {"type": "text", "text": ""})
            yield from blocks.close()
            reason = stop_reason(event.finish_reason, event.native_stop_reason, entry.provider)
            yield _event("message_delta", {"delta": {"stop_reason": reason, "stop_sequence": event.stop_sequence},
                                           "usage": usage_body(event.usage)})
            yield _event("message_stop", {})
        elif isinstance(event, StreamFailure):
            body = anthropic_error_body(event.error.error_type, event.error.message, request_id=request_id)
            yield sse_event(body, "error")


def _event(name: str, data: dict) -> str:
    return sse_event({"type": name, **data}, name)
