"""OpenAI chat.completion / chat.completion.chunk shapes for /v1/chat/completions and /v1/models.

Answers carry what the upstream returned: every choice, tool_calls, refusal, logprobs, annotations,
system_fingerprint, service_tier, reasoning tokens; Claude's thinking comes back as reasoning_content and
thinking_blocks (LiteLLM's convention; send thinking_blocks back on the assistant turn).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from gateway.errors import error_body
from gateway.formats.sse import sse_event
from gateway.providers.base import (OPENAI, Choice, RedactedThinkingPart, ThinkingPart, ToolCallPart, Usage,
                                    WireOptions)
from gateway.providers.openai import tool_call_to_wire
from gateway.schemas.compat import OPENAI_OPTIONS
from gateway.services.completion_io import (Completion, CompletionInput, StreamDelta, StreamEnd, StreamFailure,
                                           StreamStart, draft_request)

CATALOG_CREATED = 1735689600  # 2025-01-01: models have no creation date of their own here


# ChatRequest fields this wire spells the same way: read straight from the schema's output.
SAME_NAMED = ("messages", "temperature", "top_p", "stop", "tools", "tool_choice", "parallel_tool_calls",
              "response_format", "reasoning_effort", "user", "n")


def completion_input(data: dict) -> CompletionInput:
    """Schema output -> pipeline input: the neutral request plus this wire's own options."""
    options = {name: data[name] for name in OPENAI_OPTIONS if data.get(name) is not None}
    stream_options = {k: v for k, v in (data.get("stream_options") or {}).items()
                      if k != "include_usage" and v is not None}
    if stream_options:
        options["stream_options"] = stream_options
    neutral = {name: data[name] for name in SAME_NAMED if data.get(name) not in (None, ())}
    request = draft_request(**neutral, family=OPENAI,
                            options=WireOptions(OPENAI, options) if options else WireOptions())
    return CompletionInput(request=request, model=data["model"],
                           max_tokens=data.get("max_completion_tokens") or data.get("max_tokens"),
                           stream=bool(data.get("stream")))


def include_usage(data: dict) -> bool:
    return bool((data.get("stream_options") or {}).get("include_usage"))


def usage_body(usage: Usage) -> dict:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}


def completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id.removeprefix('req_')}"


def message_body(choice: Choice) -> dict:
    """A choice's assistant message: content, refusal, tool_calls, annotations, Claude thinking."""
    calls = [p for p in choice.content if isinstance(p, ToolCallPart)]
    text = choice.text
    message: dict = {"role": "assistant", "content": text if text or not calls else None,
                     "refusal": choice.refusal}
    if calls:
        message["tool_calls"] = [tool_call_to_wire(call, "tool_calls", foreign=False) for call in calls]
    if choice.annotations is not None:
        message["annotations"] = choice.annotations
    blocks = thinking_blocks(choice.content)
    if blocks:
        message["reasoning_content"] = "".join(b.get("thinking", "") for b in blocks)
        message["thinking_blocks"] = blocks
    return message


def thinking_blocks(parts) -> list[dict]:
    blocks = []
    for part in parts:
        if isinstance(part, ThinkingPart):
            blocks.append({"type": "thinking", "thinking": part.thinking, "signature": part.signature})
        elif isinstance(part, RedactedThinkingPart):
            blocks.append({"type": "redacted_thinking", "data": part.data})
    return blocks


def completion_body(completion: Completion) -> dict:
    """A chat.completion object."""
    result = completion.result
    body = {
        "id": completion_id(completion.request_id), "object": "chat.completion", "created": int(time.time()),
        "model": completion.entry.id,
        "choices": [{"index": choice.index, "message": message_body(choice), "logprobs": choice.logprobs,
                     "finish_reason": choice.finish_reason} for choice in result.choices],
        "usage": usage_body(result.usage),
    }
    if result.system_fingerprint is not None:
        body["system_fingerprint"] = result.system_fingerprint
    if result.service_tier is not None:
        body["service_tier"] = result.service_tier
    return body


def stream_frames(request_id: str, entry, events: Iterator, with_usage: bool) -> Iterator[str]:
    """chat.completion.chunk events ending in data: [DONE]; the usage chunk when it was asked for."""
    base = {"id": completion_id(request_id), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": entry.id}
    started: set[int] = set()
    fingerprint: dict = {}

    def chunk(index: int, delta: dict, finish_reason=None, logprobs=None) -> str:
        payload = {**base, **fingerprint,
                   "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]}
        if with_usage:
            payload["usage"] = None
        return sse_event(payload)

    for event in events:
        if isinstance(event, StreamStart):
            continue
        if isinstance(event, StreamDelta):
            piece = event.chunk
            if piece.system_fingerprint:
                fingerprint["system_fingerprint"] = piece.system_fingerprint
            delta = delta_body(piece)
            if not delta and piece.logprobs is None:
                continue  # nothing OpenAI's format carries (an Anthropic citation)
            if piece.choice not in started:
                started.add(piece.choice)
                yield chunk(piece.choice, {"role": "assistant", "content": ""})
            yield chunk(piece.choice, delta, logprobs=piece.logprobs)
        elif isinstance(event, StreamEnd):
            reasons = event.finish_reasons or (event.finish_reason,)
            for index, reason in enumerate(reasons):
                if index not in started:
                    yield chunk(index, {"role": "assistant", "content": ""})
                yield chunk(index, {}, reason)
            if with_usage:
                yield sse_event({**base, **fingerprint, "choices": [], "usage": usage_body(event.usage)})
        elif isinstance(event, StreamFailure):
            yield sse_event(error_body(event.error.error_type, event.error.message, request_id=request_id))
    yield sse_event("[DONE]")


def delta_body(piece) -> dict:
    """One neutral chunk as an OpenAI delta: content, refusal, a tool_calls[index] fragment or reasoning."""
    delta: dict = {}
    if piece.delta:
        delta["content"] = piece.delta
    if piece.refusal:
        delta["refusal"] = piece.refusal
    call = piece.tool_call
    if call is not None:
        fragment: dict = {"index": call.index}
        function: dict = {"arguments": call.arguments}
        if call.id is not None:
            fragment.update(id=call.id, type="function")
        if call.name is not None:
            function["name"] = call.name
        fragment["function"] = function
        delta["tool_calls"] = [fragment]
    thinking = piece.thinking
    if thinking is not None:
        if thinking.text:
            delta["reasoning_content"] = thinking.text
        block = ({"type": "redacted_thinking", "data": thinking.redacted} if thinking.redacted is not None
                 else {"type": "thinking", "thinking": thinking.text, "signature": thinking.signature})
        delta["thinking_blocks"] = [block]
    return delta


def model_object(model: dict) -> dict:
    """One model as both SDKs read it: OpenAI's {id, object, created, owned_by} plus Anthropic's
    {type, id, display_name, created_at}."""
    return {"id": model["id"], "object": "model", "created": CATALOG_CREATED, "owned_by": model["provider"],
            "type": "model", "display_name": model["id"], "created_at": "2025-01-01T00:00:00Z"}


def model_list(models: list[dict]) -> dict:
    """One list both SDKs read: OpenAI's {object, data[id, object, created, owned_by]} plus
    Anthropic's {data[type, id, display_name, created_at], has_more, first_id, last_id}."""
    data = [model_object(m) for m in models]
    return {"object": "list", "data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}
