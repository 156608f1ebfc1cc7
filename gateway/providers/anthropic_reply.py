"""Anthropic's answers -> neutral results: message bodies and message stream events (tool_use, thinking,
stop sequences, cache usage). The request side is gateway/providers/anthropic.py."""

from __future__ import annotations

import json
from collections.abc import Iterator

from gateway.providers.base import (
    ANTHROPIC,
    ChatChunk,
    ChatResult,
    Choice,
    NativePart,
    RedactedThinkingPart,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    UpstreamError,
    Usage,
)
from gateway.providers.transport import parse_event_json, sanitize

NAME = "anthropic"
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "pause_turn": "length",
                "model_context_window_exceeded": "length", "compaction": "length", "tool_use": "tool_calls",
                "refusal": "content_filter", "content_filtered": "content_filter"}


def normalise_stop_reason(reason: str | None) -> str:
    """Anthropic's stop_reason as one of base.FINISH_REASONS (reference §3.1; unknown -> stop)."""
    return STOP_REASONS.get(reason or "", "stop")


def parse_usage(usage: dict) -> Usage:
    """Anthropic usage -> Usage: prompt = input + cache writes + cache reads (reference §3.2)."""
    fresh = int(usage.get("input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    read = int(usage.get("cache_read_input_tokens") or 0)
    hour = int((usage.get("cache_creation") or {}).get("ephemeral_1h_input_tokens") or 0)
    return Usage(prompt_tokens=fresh + written + read, completion_tokens=int(usage.get("output_tokens") or 0),
                 cached_tokens=read, cache_write_tokens=written, cache_write_1h_tokens=min(hour, written))


def parse_block(block: dict):
    """One response content block -> a neutral part (unknown kinds stay native)."""
    kind = block.get("type")
    if kind == "text":
        extras = {k: v for k, v in block.items() if k not in ("type", "text") and v is not None}
        return TextPart(str(block.get("text") or ""), extras=extras)
    if kind == "tool_use":
        return ToolCallPart(id=str(block.get("id") or ""), name=str(block.get("name") or ""),
                            arguments=json.dumps(block.get("input") or {}, separators=(",", ":")))
    if kind == "thinking":
        return ThinkingPart(str(block.get("thinking") or ""), block.get("signature"))
    if kind == "redacted_thinking":
        return RedactedThinkingPart(str(block.get("data") or ""))
    return NativePart(ANTHROPIC, block)


def parse_message(body: dict, requested_model: str, json_tool: str | None = None) -> ChatResult:
    """A message body -> ChatResult; UpstreamError when content or usage is missing. With json_tool, that
    forced tool's input is the answer, as JSON text (response_format json_object)."""
    try:
        parts = tuple(_json_answer(block, json_tool) or parse_block(block) for block in body["content"])
        usage = parse_usage(body["usage"])
    except (KeyError, TypeError, AttributeError, ValueError):
        raise UpstreamError(f"{NAME} returned a message without content or usage") from None
    reason = body.get("stop_reason")
    if json_tool is not None and reason == "tool_use":
        reason = "end_turn"
    choice = Choice(content=parts, finish_reason=normalise_stop_reason(reason), native_stop_reason=reason,
                    stop_sequence=body.get("stop_sequence"))
    return ChatResult(id=str(body.get("id") or ""), model=str(body.get("model") or requested_model),
                      choices=(choice,), usage=usage, family=ANTHROPIC)


def _json_answer(block: dict, json_tool: str | None) -> TextPart | None:
    if json_tool is None or block.get("type") != "tool_use" or block.get("name") != json_tool:
        return None
    return TextPart(json.dumps(block.get("input") or {}, ensure_ascii=False))


class _StreamState:
    """What the events of one message stream have said so far."""

    def __init__(self, json_tool: str | None = None) -> None:
        self.json_tool = json_tool
        self.json_blocks: set[int] = set()
        self.id: str | None = None
        self.model: str | None = None
        self.usage: dict = {}
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.saw_delta = False
        self.final_output = False
        self.stopped = False
        self.tool_index: dict[int, int] = {}

    def final_chunk(self) -> ChatChunk:
        """The last chunk; usage only when both input (message_start) and final output counts arrived."""
        known = "input_tokens" in self.usage and self.final_output
        usage = _stream_usage(self.usage) if known else None
        native = "end_turn" if self.json_blocks and self.stop_reason == "tool_use" else self.stop_reason
        reason = normalise_stop_reason(native)
        return ChatChunk(finish_reason=reason, finish_reasons=(reason,), usage=usage, id=self.id,
                         native_stop_reason=native, stop_sequence=self.stop_sequence, model=self.model)

    def block_start(self, payload: dict) -> ChatChunk | None:
        block = payload.get("content_block") or {}
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return ChatChunk(delta=block["text"], id=self.id)
        if kind == "tool_use" and self.json_tool is not None and block.get("name") == self.json_tool:
            self.json_blocks.add(int(payload.get("index") or 0))
            return None
        if kind == "tool_use":
            index = self.tool_index.setdefault(int(payload.get("index") or 0), len(self.tool_index))
            initial = block.get("input")
            arguments = json.dumps(initial, separators=(",", ":")) if initial else ""
            return ChatChunk(id=self.id, tool_call=ToolCallDelta(index=index, id=block.get("id"),
                                                                 name=block.get("name"), arguments=arguments))
        if kind == "thinking":
            return ChatChunk(id=self.id, thinking=ThinkingDelta(text=block.get("thinking") or ""))
        if kind == "redacted_thinking":
            return ChatChunk(id=self.id, thinking=ThinkingDelta(redacted=block.get("data") or ""))
        return None

    def block_delta(self, payload: dict) -> ChatChunk | None:
        delta = payload.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return ChatChunk(delta=delta["text"], id=self.id)
        if kind == "input_json_delta" and int(payload.get("index") or 0) in self.json_blocks:
            return ChatChunk(delta=delta.get("partial_json") or "", id=self.id) if delta.get("partial_json") else None
        if kind == "input_json_delta":
            index = self.tool_index.get(int(payload.get("index") or 0), 0)
            return ChatChunk(id=self.id, tool_call=ToolCallDelta(index=index,
                                                                 arguments=delta.get("partial_json") or ""))
        if kind == "thinking_delta":
            return ChatChunk(id=self.id, thinking=ThinkingDelta(text=delta.get("thinking") or ""))
        if kind == "citations_delta" and isinstance(delta.get("citation"), dict):
            return ChatChunk(id=self.id, citation=delta["citation"])
        if kind == "signature_delta":
            return ChatChunk(id=self.id, thinking=ThinkingDelta(signature=delta.get("signature") or ""))
        return None


def parse_stream(events, secrets=(), json_tool: str | None = None) -> Iterator[ChatChunk]:
    """Message stream events -> ChatChunks; error events and early ends raise UpstreamError. With json_tool,
    that forced tool's input streams as text."""
    state = _StreamState(json_tool)
    for event in events:
        payload = parse_event_json(event, NAME)
        kind = payload.get("type") or event.event
        if kind == "error":
            raise _midstream_error(payload.get("error"), secrets)
        if kind == "message_start":
            message = payload.get("message") or {}
            state.id, state.model = message.get("id"), message.get("model")
            state.usage.update(message.get("usage") or {})
            if "input_tokens" in state.usage:
                start_usage = _stream_usage(state.usage)
                yield ChatChunk(id=state.id, model=state.model, input_tokens=start_usage.prompt_tokens)
        elif kind == "content_block_start":
            chunk = state.block_start(payload)
            if chunk is not None:
                yield chunk
        elif kind == "content_block_delta":
            chunk = state.block_delta(payload)
            if chunk is not None:
                yield chunk
        elif kind == "message_delta":
            state.saw_delta = True
            delta = payload.get("delta") or {}
            state.stop_reason = delta.get("stop_reason") or state.stop_reason
            state.stop_sequence = delta.get("stop_sequence") or state.stop_sequence
            delta_usage = payload.get("usage") or {}
            state.final_output = state.final_output or "output_tokens" in delta_usage
            state.usage.update({k: v for k, v in delta_usage.items() if v is not None})
        elif kind == "message_stop":
            state.stopped = True
            break
    if not (state.stopped or state.saw_delta):
        raise UpstreamError(f"the {NAME} stream ended before message_stop")
    yield state.final_chunk()


def _stream_usage(usage: dict) -> Usage:
    try:
        return parse_usage(usage)
    except (AttributeError, TypeError, ValueError):
        raise UpstreamError(f"{NAME} sent unreadable usage in its stream") from None


def _midstream_error(error: object, secrets) -> UpstreamError:
    if not isinstance(error, dict):
        return UpstreamError(f"{NAME} failed mid-stream")
    kind = sanitize(error.get("type")) or "error"
    return UpstreamError(f"{NAME} failed mid-stream ({kind}): {sanitize(error.get('message'), secrets)}")
