"""Provider-neutral request/response types, the Provider interface and the ProviderError tree.

Adapters translate between these types and one wire format each; nothing else in the gateway
knows a provider's JSON.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn; role is system, user or assistant (developer is folded into system)."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated completion request, already resolved to an upstream model id."""

    model: str
    messages: tuple[Message, ...]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    # What the upstream model accepts (from the model catalog); adapters drop what it rejects.
    supports_sampling: bool = True
    supports_stop: bool = True


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the upstream reported them, normalised.

    prompt_tokens includes cached_tokens and cache_write_tokens (OpenAI semantics), so that
    prompt_tokens + completion_tokens is the total a caller is charged for.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A finished, non-streamed completion."""

    id: str
    model: str
    content: str
    finish_reason: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One streamed piece: content deltas, then a last chunk carrying finish_reason and usage."""

    delta: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    id: str | None = None


class ProviderError(Exception):
    """An upstream failure, already mapped to what the gateway answers its caller.

    billable is False only when the provider cannot have charged for the request: it never received
    it (connect failure) or refused it with an error status. Anything else (a read timeout, a broken or
    unreadable answer) happened after the upstream had the prompt, and the ledger bills it.
    """

    http_status = 502
    error_type = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        retry_after: float | None = None,
        param: str | None = None,
        billable: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        self.param = param
        self.billable = billable


class UpstreamError(ProviderError):
    """The upstream failed (5xx, 529, bad credentials, unreadable reply): 502."""


class UpstreamTimeout(ProviderError):
    """The upstream did not answer in time: 504."""

    http_status = 504
    error_type = "upstream_timeout"


class UpstreamRateLimited(ProviderError):
    """The upstream refused for its own rate limits: 429 with its Retry-After."""

    http_status = 429
    error_type = "upstream_rate_limited"


class UpstreamInvalidRequest(ProviderError):
    """The upstream says the request itself is invalid: 400."""

    http_status = 400
    error_type = "invalid_request_error"


@dataclass
class ProviderSettings:
    """What an adapter needs, handed in by the factory; providers never read config themselves."""

    api_key: str
    base_url: str
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 120.0
    max_retries: int = 2
    extra_headers: dict[str, str] = field(default_factory=dict)


class Provider(ABC):
    """One upstream: turns ChatRequests into ChatResults or streams of ChatChunks."""

    name: str

    def validate(self, request: ChatRequest) -> None:
        """Raise UpstreamInvalidRequest for what this provider would refuse, before anything is sent."""

    @abstractmethod
    def complete(self, request: ChatRequest) -> ChatResult:
        """Run a completion to the end; raises ProviderError."""

    @abstractmethod
    def stream(self, request: ChatRequest) -> Iterator[ChatChunk]:
        """Yield content deltas, then one last chunk with finish_reason and usage.

        Failures before the first chunk raise ProviderError (after bounded retries); failures
        after it raise ProviderError mid-iteration and are never retried. Closing the iterator
        closes the upstream connection.
        """
