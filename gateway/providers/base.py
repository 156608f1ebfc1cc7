"""Provider-neutral request/response types, the Provider interface and the ProviderError tree.

Adapters translate between these types and one wire format each; nothing else in the gateway
knows a provider's JSON. Content is a tuple of typed parts (text, image, tool call, tool result,
thinking, ...), the shape of the SDKs' `*_param.py` types. What only one wire family can express
(OpenAI's `seed`, Anthropic's `top_k`, a block's `citations`, ...) rides in `extras`, tagged by the
family the caller spoke: the adapter of that family forwards it unchanged, the other one refuses the
request with a 400 naming the field. Nothing is ever dropped silently.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

OPENAI = "openai"
ANTHROPIC = "anthropic"
FAMILIES = (OPENAI, ANTHROPIC)
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")


def _extras():
    """An empty extras mapping of its own for each instance."""
    return field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text; cache_control is Anthropic's prompt-cache marker (OpenAI caches prefixes by itself)."""

    text: str
    cache_control: dict | None = None
    extras: Mapping[str, Any] = _extras()


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image by https URL (url) or inline base64 (data + media_type); detail is OpenAI's."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None
    cache_control: dict | None = None
    extras: Mapping[str, Any] = _extras()

    def data_url(self) -> str:
        """The image as OpenAI's image_url.url: the https URL, or a data: URL."""
        return self.url or f"data:{self.media_type};base64,{self.data}"


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    """An assistant's call of a tool; arguments is JSON text (OpenAI) - Anthropic's input, serialised."""

    id: str
    name: str
    arguments: str
    cache_control: dict | None = None
    extras: Mapping[str, Any] = _extras()

    def input(self) -> Any:
        """The arguments parsed (Anthropic's tool_use.input); {} for empty text."""
        return json.loads(self.arguments) if self.arguments.strip() else {}


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """What a tool returned for tool_call_id: text and (Anthropic) image parts."""

    tool_call_id: str
    content: tuple[TextPart | ImagePart | NativePart, ...] = ()
    is_error: bool | None = None
    cache_control: dict | None = None
    extras: Mapping[str, Any] = _extras()


@dataclass(frozen=True, slots=True)
class ThinkingPart:
    """Visible reasoning with the signature that must come back unchanged (Anthropic)."""

    thinking: str
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class RedactedThinkingPart:
    """Encrypted reasoning (Anthropic), passed back as it came."""

    data: str


@dataclass(frozen=True, slots=True)
class RefusalPart:
    """An assistant turn's refusal text (OpenAI)."""

    refusal: str


@dataclass(frozen=True, slots=True)
class NativePart:
    """A content block only its own family understands (Anthropic document, OpenAI file/input_audio, ...):
    forwarded verbatim to that family, refused by name for the other."""

    family: str
    block: Mapping[str, Any]

    @property
    def kind(self) -> str:
        return str(self.block.get("type"))


Part = Union[TextPart, ImagePart, ToolCallPart, ToolResultPart, ThinkingPart, RedactedThinkingPart, RefusalPart,
             NativePart]


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. role: system, developer, user, assistant or tool (a tool turn holds ToolResultParts).

    content may be given as a plain string; it is kept as a tuple of parts.
    """

    role: str
    content: tuple[Part, ...] | str
    extras: Mapping[str, Any] = _extras()

    def __post_init__(self) -> None:
        if isinstance(self.content, str):
            object.__setattr__(self, "content", (TextPart(self.content),))

    @property
    def text(self) -> str:
        """The message's text parts joined (what text-only consumers see)."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call: its JSON-schema parameters and OpenAI's strict flag."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None
    strict: bool | None = None
    cache_control: dict | None = None
    extras: Mapping[str, Any] = _extras()


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """auto, none, required (Anthropic's any) or tool (one named tool)."""

    mode: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """text, json_object, or json_schema with its schema (name/description/strict are OpenAI's)."""

    type: str
    schema: Mapping[str, Any] | None = None
    name: str | None = None
    description: str | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class Thinking:
    """Anthropic's thinking switch: enabled (with budget_tokens), adaptive or disabled."""

    type: str
    budget_tokens: int | None = None
    extras: Mapping[str, Any] = _extras()


@dataclass(frozen=True, slots=True)
class WireOptions:
    """Top-level fields only the caller's wire family knows, forwarded to that family (per-model options)."""

    family: str | None = None
    fields: Mapping[str, Any] = _extras()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated completion request, already resolved to an upstream model id.

    family is the wire family the caller spoke ("openai", "anthropic", or None for the native API):
    extras anywhere in the request belong to it.
    """

    model: str
    messages: tuple[Message, ...]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    family: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: str | None = None
    thinking: Thinking | None = None
    user: str | None = None
    n: int = 1
    options: WireOptions = field(default_factory=WireOptions)
    headers: Mapping[str, str] = _extras()
    # What the upstream model accepts (from the model catalog).
    reasoning: bool = False
    supports_structured_output: bool = True


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the upstream reported them, normalised.

    prompt_tokens includes cached_tokens and cache_write_tokens (OpenAI semantics), so that
    prompt_tokens + completion_tokens is the total a caller is charged for. cache_write_1h_tokens is
    the part of cache_write_tokens written with a one-hour TTL; reasoning_tokens is part of
    completion_tokens.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Choice:
    """One answer: its parts, why it ended (neutral and as the upstream said it), and OpenAI's extras."""

    content: tuple[Part, ...]
    finish_reason: str
    index: int = 0
    native_stop_reason: str | None = None
    stop_sequence: str | None = None
    logprobs: Any = None
    annotations: Any = None

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def refusal(self) -> str | None:
        refusals = [p.refusal for p in self.content if isinstance(p, RefusalPart)]
        return "".join(refusals) if refusals else None


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A finished, non-streamed completion (one Choice per `n`)."""

    id: str
    model: str
    choices: tuple[Choice, ...]
    usage: Usage
    family: str | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None

    @property
    def content(self) -> str:
        """The first choice's text."""
        return self.choices[0].text if self.choices else ""

    @property
    def finish_reason(self) -> str:
        return self.choices[0].finish_reason if self.choices else "stop"


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of the index-th tool call of a choice: id and name on its first piece, then arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    """A piece of reasoning text, its signature, or a redacted block's data (Anthropic)."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One streamed piece: content, tool-call, thinking or refusal deltas of a choice, then a last chunk
    carrying finish_reason (finish_reasons for every choice) and usage."""

    delta: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    id: str | None = None
    choice: int = 0
    tool_call: ToolCallDelta | None = None
    thinking: ThinkingDelta | None = None
    refusal: str | None = None
    logprobs: Any = None
    finish_reasons: tuple[str, ...] = ()
    native_stop_reason: str | None = None
    stop_sequence: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    input_tokens: int | None = None
    citation: Mapping[str, Any] | None = None

    @property
    def delivered_text(self) -> str:
        """Everything this chunk hands the caller as generated output (for billing by estimate)."""
        parts = [self.delta, self.refusal or ""]
        if self.tool_call is not None:
            parts += [self.tool_call.name or "", self.tool_call.arguments]
        if self.thinking is not None:
            parts.append(self.thinking.text)
        return "".join(parts)

    @property
    def carries_output(self) -> bool:
        return bool(self.delta or self.tool_call or self.thinking or self.refusal or self.logprobs or self.citation)


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
    """The upstream says the request itself is invalid, or the adapter knows it would: 400."""

    http_status = 400
    error_type = "invalid_request_error"


def unsupported(field_name: str, target: str, why: str = "") -> UpstreamInvalidRequest:
    """The 400 for a field the target model family has no equivalent for; it names the field."""
    reason = f" ({why})" if why else ""
    return UpstreamInvalidRequest(f"{field_name} is not supported for {target} models{reason}; remove it "
                                  "or use a model that supports it.", param=field_name)


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
        """Yield deltas, then one last chunk with finish_reason and usage.

        Failures before the first chunk raise ProviderError (after bounded retries); failures
        after it raise ProviderError mid-iteration and are never retried. Closing the iterator
        closes the upstream connection.
        """

    counts_tokens = False  # whether count_tokens asks the upstream (Anthropic's API has an endpoint for it)

    def count_tokens(self, request: ChatRequest) -> int:
        """The request's input tokens as the upstream counts them; only where counts_tokens is True."""
        raise NotImplementedError(f"{self.name} does not count tokens")
