"""OpenAI's answers -> neutral results: chat.completion bodies and chunk streams (every choice, tool calls,
refusals, logprobs, annotations). The request side is gateway/providers/openai.py."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.providers.base import (
    OPENAI,
    ChatChunk,
    ChatResult,
    Choice,
    RefusalPart,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    UpstreamError,
    Usage,
)
from gateway.providers.transport import parse_event_json, sanitize

NAME = "openai"
FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                  "function_call": "tool_calls", "content_filter": "content_filter"}


def normalise_finish_reason(reason: str | None) -> str:
    """OpenAI's finish_reason as one of base.FINISH_REASONS (unknown or missing -> stop)."""
    return FINISH_REASONS.get(reason or "", "stop")


def parse_usage(usage: dict) -> Usage:
    """OpenAI usage -> Usage; prompt_tokens already includes cached tokens."""
    details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                 completion_tokens=int(usage.get("completion_tokens") or 0),
                 cached_tokens=int(details.get("cached_tokens") or 0),
                 cache_write_tokens=int(details.get("cache_write_tokens") or 0),
                 reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0))


def parse_tool_calls(calls) -> tuple[ToolCallPart, ...]:
    """message.tool_calls -> ToolCallParts (function calls; other kinds are kept as extras)."""
    parts = []
    for call in calls or ():
        function = call.get("function") or {}
        extras = {k: v for k, v in call.items() if k not in ("id", "type", "function")}
        parts.append(ToolCallPart(id=str(call.get("id") or ""), name=str(function.get("name") or ""),
                                  arguments=str(function.get("arguments") or ""), extras=extras))
    return tuple(parts)


def parse_message_parts(message: dict) -> tuple:
    """An OpenAI assistant message -> parts: text, refusal, tool calls."""
    parts: list = []
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(TextPart(content))
    elif isinstance(content, list):
        parts += [TextPart(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"]
    if message.get("refusal"):
        parts.append(RefusalPart(str(message["refusal"])))
    parts += parse_tool_calls(message.get("tool_calls"))
    return tuple(parts)


def parse_completion(body: dict, requested_model: str) -> ChatResult:
    """A chat.completion body -> ChatResult; UpstreamError when choices or usage are missing."""
    try:
        choices = tuple(Choice(content=parse_message_parts(c["message"]), index=int(c.get("index") or 0),
                               finish_reason=normalise_finish_reason(c.get("finish_reason")),
                               native_stop_reason=c.get("finish_reason"), logprobs=c.get("logprobs"),
                               annotations=c["message"].get("annotations"))
                        for c in sorted(body["choices"], key=lambda c: c.get("index") or 0))
        usage = parse_usage(body["usage"])
        if not choices:
            raise IndexError
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise UpstreamError(f"{NAME} returned a completion without choices or usage") from None
    return ChatResult(id=str(body.get("id") or ""), model=str(body.get("model") or requested_model),
                      choices=choices, usage=usage, family=OPENAI,
                      system_fingerprint=body.get("system_fingerprint"), service_tier=body.get("service_tier"))


def parse_stream(events, secrets=()) -> Iterator[ChatChunk]:
    """chat.completion.chunk events -> ChatChunks; a mid-stream error or an early end raises UpstreamError."""
    stream_id, usage, finishes, head = None, None, {}, {}
    for event in events:
        if event.data.strip() == "[DONE]":
            break
        payload = parse_event_json(event, NAME)
        if payload.get("error"):
            raise _midstream_error(payload["error"], secrets)
        stream_id = payload.get("id") or stream_id
        head = {"model": payload.get("model") or head.get("model"),
                "system_fingerprint": payload.get("system_fingerprint") or head.get("system_fingerprint")}
        if payload.get("usage"):
            usage = _stream_usage(payload["usage"])
        for choice in payload.get("choices") or []:
            yield from _choice_chunks(choice, stream_id, head)
            if choice.get("finish_reason"):
                finishes[int(choice.get("index") or 0)] = choice["finish_reason"]
    if not finishes:
        raise UpstreamError(f"the {NAME} stream ended before the completion finished")
    ordered = tuple(normalise_finish_reason(finishes.get(i)) for i in range(max(finishes) + 1))
    yield ChatChunk(finish_reason=ordered[0], finish_reasons=ordered, usage=usage, id=stream_id,
                    native_stop_reason=finishes.get(0), **head)


def _choice_chunks(choice: dict, stream_id, head: dict) -> Iterator[ChatChunk]:
    index = int(choice.get("index") or 0)
    delta = choice.get("delta") or {}
    text, refusal, logprobs = delta.get("content") or "", delta.get("refusal"), choice.get("logprobs")
    if text or refusal or logprobs:
        yield ChatChunk(delta=text, refusal=refusal or None, logprobs=logprobs, choice=index, id=stream_id, **head)
    for call in delta.get("tool_calls") or []:
        function = call.get("function") or {}
        yield ChatChunk(choice=index, id=stream_id, **head, tool_call=ToolCallDelta(
            index=int(call.get("index") or 0), id=call.get("id"), name=function.get("name"),
            arguments=function.get("arguments") or ""))


def _stream_usage(usage: object) -> Usage:
    try:
        return parse_usage(usage)
    except (AttributeError, TypeError, ValueError):
        raise UpstreamError(f"{NAME} sent an unreadable usage chunk") from None


def _midstream_error(error: object, secrets) -> UpstreamError:
    message = error.get("message") if isinstance(error, dict) else error
    return UpstreamError(f"{NAME} failed mid-stream: {sanitize(message, secrets) or 'unknown error'}")


