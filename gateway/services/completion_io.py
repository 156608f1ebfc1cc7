"""What goes into the completion pipeline and what comes out of it: plain values, shared with the formats."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.providers.base import ChatChunk, ChatRequest, ChatResult, Message, ProviderError, Usage
from gateway.services.catalog import ModelEntry


@dataclass(frozen=True)
class CompletionInput:
    """A validated completion request in the gateway's own terms, whatever endpoint it came from.

    request is the neutral request as the caller wrote it; the pipeline fills in its upstream model id,
    max_tokens (max_tokens here, or the model's default) and the catalog's flags.
    """

    request: ChatRequest
    model: str | None = None
    provider: str = "auto"
    max_tokens: int | None = None
    stream: bool = False

    @property
    def messages(self) -> tuple[Message, ...]:
        return self.request.messages


def draft_request(**fields) -> ChatRequest:
    """A ChatRequest whose model and max_tokens the pipeline fills in."""
    return ChatRequest(model="", max_tokens=0, **fields)


@dataclass(frozen=True)
class RequestMeta:
    """Where the request came from and when it started."""

    request_id: str
    endpoint: str
    client_ip: str
    started_at: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class Completion:
    """A finished non-streamed completion with its price."""

    request_id: str
    entry: ModelEntry
    result: ChatResult
    cost_nanousd: int
    latency_ms: int
    upstream_latency_ms: int


@dataclass(frozen=True)
class StreamStart:
    """The stream is open: the prompt's input tokens (the upstream's count, or the gateway's estimate)."""

    input_tokens: int
    model: str | None = None


@dataclass(frozen=True)
class StreamDelta:
    """Output the upstream produced, to pass on now: text, a tool-call piece, thinking, refusal, logprobs."""

    chunk: ChatChunk

    @property
    def text(self) -> str:
        return self.chunk.delta


@dataclass(frozen=True)
class StreamEnd:
    """The stream ended normally: why (per choice, and as the upstream said it), what it used and cost."""

    finish_reason: str
    usage: Usage
    cost_nanousd: int
    latency_ms: int
    finish_reasons: tuple[str, ...] = ()
    native_stop_reason: str | None = None
    stop_sequence: str | None = None


@dataclass(frozen=True)
class StreamFailure:
    """The upstream broke after the stream began; the client is told in the stream itself."""

    error: ProviderError
