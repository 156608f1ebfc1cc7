"""The Anthropic Messages adapter: system to top level, alternating turns, max_tokens always sent.

Requests Anthropic would refuse (bad turn order, empty text, temperature above 1) are refused
here with UpstreamInvalidRequest before any HTTP call. A stream without usage events still ends
with a final ChatChunk (usage=None) so the caller can bill by estimate.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    Message,
    UpstreamError,
    UpstreamInvalidRequest,
    Usage,
)
from gateway.providers.http_provider import HttpProvider
from gateway.providers.transport import parse_event_json, sanitize

NAME = "anthropic"
API_VERSION = "2023-06-01"
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "pause_turn": "length",
                "model_context_window_exceeded": "length", "compaction": "length", "tool_use": "tool_calls",
                "refusal": "content_filter", "content_filtered": "content_filter"}
SYSTEM_ROLES = ("system", "developer")
TURN_ROLES = ("user", "assistant")


class AnthropicProvider(HttpProvider):
    """Sends ChatRequests to {base_url}/v1/messages."""

    name = NAME
    path = "/v1/messages"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key, "anthropic-version": API_VERSION}

    def validate(self, request: ChatRequest) -> None:
        """Refuse what Anthropic would refuse, before anything is reserved or sent."""
        request_body(request, stream=False)

    def request_body(self, request: ChatRequest, stream: bool) -> dict:
        return request_body(request, stream)

    def parse_result(self, body: dict, requested_model: str) -> ChatResult:
        return parse_message(body, requested_model)

    def parse_events(self, events, secrets) -> Iterator[ChatChunk]:
        return parse_stream(events, secrets)


def request_body(request: ChatRequest, stream: bool) -> dict:
    """The /v1/messages JSON body; raises UpstreamInvalidRequest for what Anthropic would refuse."""
    system, turns = split_messages(request.messages)
    body: dict = {"model": request.model, "max_tokens": request.max_tokens, "messages": turns}
    if system:
        body["system"] = system
    if request.supports_sampling:
        if request.temperature is not None:
            if not 0 <= request.temperature <= 1:
                raise UpstreamInvalidRequest("temperature must be between 0 and 1 for Anthropic models",
                                             param="temperature")
            body["temperature"] = request.temperature
        elif request.top_p is not None:
            body["top_p"] = request.top_p
    if request.supports_stop and request.stop:
        body["stop_sequences"] = list(request.stop)
    if stream:
        body["stream"] = True
    return body


def split_messages(messages: tuple[Message, ...]) -> tuple[str, list[dict]]:
    """(system text joined by blank lines, alternating user/assistant turns starting with user)."""
    system: list[str] = []
    turns: list[dict] = []
    for index, message in enumerate(messages):
        if message.role in SYSTEM_ROLES:
            if message.content.strip():
                system.append(message.content)
            continue
        if message.role not in TURN_ROLES:
            raise UpstreamInvalidRequest(f"messages[{index}] has role {message.role!r}; Anthropic models take "
                                         "system, user and assistant messages", param=f"messages.{index}.role")
        if not message.content.strip():
            raise UpstreamInvalidRequest(f"messages[{index}] ({message.role}) has empty content; Anthropic "
                                         "models need non-empty text in every turn",
                                         param=f"messages.{index}.content")
        if turns and turns[-1]["role"] == message.role:
            turns[-1]["content"] += "\n\n" + message.content
        else:
            turns.append({"role": message.role, "content": message.content})
    if not turns:
        raise UpstreamInvalidRequest("messages must contain at least one user message besides system "
                                     "messages", param="messages")
    if turns[0]["role"] != "user":
        raise UpstreamInvalidRequest("the first non-system message must come from the user for Anthropic "
                                     "models", param="messages")
    if turns[-1]["role"] == "assistant":
        turns[-1]["content"] = turns[-1]["content"].rstrip()
    return "\n\n".join(system), turns


def normalise_stop_reason(reason: str | None) -> str:
    """Anthropic's stop_reason as one of base.FINISH_REASONS (reference §3.1; unknown -> stop)."""
    return STOP_REASONS.get(reason or "", "stop")


def parse_usage(usage: dict) -> Usage:
    """Anthropic usage -> Usage: prompt = input + cache writes + cache reads (reference §3.2)."""
    fresh = int(usage.get("input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    read = int(usage.get("cache_read_input_tokens") or 0)
    return Usage(prompt_tokens=fresh + written + read, completion_tokens=int(usage.get("output_tokens") or 0),
                 cached_tokens=read, cache_write_tokens=written)


def parse_message(body: dict, requested_model: str) -> ChatResult:
    """A message body -> ChatResult (text blocks joined); UpstreamError when content or usage is missing."""
    try:
        text = "".join(block.get("text", "") for block in body["content"] if block.get("type") == "text")
        usage = parse_usage(body["usage"])
    except (KeyError, TypeError, AttributeError, ValueError):
        raise UpstreamError(f"{NAME} returned a message without content or usage") from None
    return ChatResult(id=str(body.get("id") or ""), model=str(body.get("model") or requested_model),
                      content=text, finish_reason=normalise_stop_reason(body.get("stop_reason")), usage=usage)


class _StreamState:
    """What the events of one message stream have said so far."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.usage: dict = {}
        self.stop_reason: str | None = None
        self.saw_delta = False
        self.final_output = False
        self.stopped = False

    def final_chunk(self) -> ChatChunk:
        """The last chunk; usage only when both input (message_start) and final output counts arrived."""
        known = "input_tokens" in self.usage and self.final_output
        usage = _stream_usage(self.usage) if known else None
        return ChatChunk(finish_reason=normalise_stop_reason(self.stop_reason), usage=usage, id=self.id)


def parse_stream(events, secrets=()) -> Iterator[ChatChunk]:
    """Message stream events -> ChatChunks; error events and early ends raise UpstreamError."""
    state = _StreamState()
    for event in events:
        payload = parse_event_json(event, NAME)
        kind = payload.get("type") or event.event
        if kind == "error":
            raise _midstream_error(payload.get("error"), secrets)
        if kind == "message_start":
            message = payload.get("message") or {}
            state.id = message.get("id")
            state.usage.update(message.get("usage") or {})
        elif kind == "content_block_start":
            text = (payload.get("content_block") or {}).get("text")
            if text:
                yield ChatChunk(delta=text, id=state.id)
        elif kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                yield ChatChunk(delta=delta["text"], id=state.id)
        elif kind == "message_delta":
            state.saw_delta = True
            state.stop_reason = (payload.get("delta") or {}).get("stop_reason") or state.stop_reason
            delta_usage = payload.get("usage") or {}
            state.final_output = state.final_output or "output_tokens" in delta_usage
            state.usage.update(delta_usage)
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
