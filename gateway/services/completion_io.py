"""What goes into the completion pipeline and what comes out of it: plain values, shared with the formats."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.providers.base import ChatResult, Message, ProviderError, Usage
from gateway.services.catalog import ModelEntry


@dataclass(frozen=True)
class CompletionInput:
    """A validated completion request in the gateway's own terms, whatever endpoint it came from."""

    messages: tuple[Message, ...]
    model: str | None = None
    provider: str = "auto"
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False


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
class StreamDelta:
    """Text the upstream produced, to pass on now."""

    text: str


@dataclass(frozen=True)
class StreamEnd:
    """The stream ended normally: why, what it used and what it cost."""

    finish_reason: str
    usage: Usage
    cost_nanousd: int
    latency_ms: int


@dataclass(frozen=True)
class StreamFailure:
    """The upstream broke after the stream began; the client is told in the stream itself."""

    error: ProviderError
