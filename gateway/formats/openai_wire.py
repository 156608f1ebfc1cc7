"""OpenAI chat.completion / chat.completion.chunk shapes for /v1/chat/completions and /v1/models."""

from __future__ import annotations

import time
from collections.abc import Iterator

from gateway.errors import error_body
from gateway.formats.sse import sse_event
from gateway.providers.base import Message, Usage
from gateway.services.completion_io import Completion, CompletionInput, StreamDelta, StreamEnd, StreamFailure

CATALOG_CREATED = 1735689600  # 2025-01-01: models have no creation date of their own here


def completion_input(data: dict) -> CompletionInput:
    """Schema output -> pipeline input; developer turns are system turns."""
    messages = tuple(Message("system" if m["role"] == "developer" else m["role"], m["content"])
                     for m in data["messages"])
    return CompletionInput(messages=messages, model=data["model"],
                           max_tokens=data.get("max_completion_tokens") or data.get("max_tokens"),
                           temperature=data.get("temperature"), top_p=data.get("top_p"),
                           stop=data.get("stop") or (), stream=bool(data.get("stream")))


def include_usage(data: dict) -> bool:
    return bool((data.get("stream_options") or {}).get("include_usage"))


def usage_body(usage: Usage) -> dict:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens}}


def completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id.removeprefix('req_')}"


def completion_body(completion: Completion) -> dict:
    """A chat.completion object."""
    return {
        "id": completion_id(completion.request_id), "object": "chat.completion", "created": int(time.time()),
        "model": completion.entry.id,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.result.content,
                                             "refusal": None},
                     "logprobs": None, "finish_reason": completion.result.finish_reason}],
        "usage": usage_body(completion.result.usage),
    }


def stream_frames(request_id: str, entry, events: Iterator, with_usage: bool) -> Iterator[str]:
    """chat.completion.chunk events ending in data: [DONE]; the usage chunk when it was asked for."""
    base = {"id": completion_id(request_id), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": entry.id}

    def chunk(delta: dict, finish_reason=None) -> str:
        return sse_event({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                               "finish_reason": finish_reason}]})

    yield chunk({"role": "assistant", "content": ""})
    for event in events:
        if isinstance(event, StreamDelta):
            yield chunk({"content": event.text})
        elif isinstance(event, StreamEnd):
            yield chunk({}, event.finish_reason)
            if with_usage:
                yield sse_event({**base, "choices": [], "usage": usage_body(event.usage)})
        elif isinstance(event, StreamFailure):
            yield sse_event(error_body(event.error.error_type, event.error.message, request_id=request_id))
    yield sse_event("[DONE]")


def model_list(models: list[dict]) -> dict:
    """One list both SDKs read: OpenAI's {object, data[id, object, created, owned_by]} plus
    Anthropic's {data[type, id, display_name, created_at], has_more, first_id, last_id}."""
    data = [{"id": m["id"], "object": "model", "created": CATALOG_CREATED, "owned_by": m["provider"],
             "type": "model", "display_name": m["id"], "created_at": "2025-01-01T00:00:00Z"} for m in models]
    return {"object": "list", "data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}
