"""The OpenAI Chat Completions adapter (also fits OpenAI-compatible servers such as vLLM or Ollama).

Neutral request -> chat/completions JSON and back. A request that came in OpenAI's own format goes out
as the caller wrote it (its extras merged back verbatim); one from Anthropic's format is translated, and
what has no OpenAI equivalent is refused by name. The client-facing OpenAI format writes tool calls in
answers with tool_call_to_wire from here. Answers are read in providers/openai_reply.py.

A stream that ends without a usage chunk still ends with a final ChatChunk (finish_reason set,
usage=None), so the caller can bill by estimate; a stream cut off before any finish_reason raises.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.providers.base import (
    ANTHROPIC,
    OPENAI,
    ChatChunk,
    ChatRequest,
    ChatResult,
    ImagePart,
    Message,
    NativePart,
    RedactedThinkingPart,
    RefusalPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    unsupported,
)
from gateway.providers.http_provider import HttpProvider
from gateway.providers.openai_reply import (NAME, normalise_finish_reason, parse_completion, parse_stream,
                                            parse_usage)

__all__ = ["OpenAIProvider", "request_body", "parse_completion", "parse_stream", "parse_usage",
           "normalise_finish_reason"]

TARGET = "OpenAI"
# Anthropic thinking budgets -> the nearest reasoning_effort (docs/compat.md).
EFFORT_BY_BUDGET = ((2048, "low"), (8192, "medium"))
DEFAULT_SCHEMA_NAME = "response"
# Anthropic tool hints about how arguments are streamed, not what they are: OpenAI streams them anyway.
STREAMING_HINTS = ("eager_input_streaming",)


class OpenAIProvider(HttpProvider):
    """Sends ChatRequests to {base_url}/chat/completions."""

    name = NAME
    path = "/chat/completions"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def validate(self, request: ChatRequest) -> None:
        """Refuse what has no OpenAI equivalent, before anything is reserved or sent."""
        request_body(request, stream=False)

    def request_body(self, request: ChatRequest, stream: bool) -> dict:
        return request_body(request, stream)

    def parse_result(self, body: dict, request: ChatRequest) -> ChatResult:
        return parse_completion(body, request.model)

    def parse_events(self, events, secrets, request: ChatRequest) -> Iterator[ChatChunk]:
        return parse_stream(events, secrets)


def request_body(request: ChatRequest, stream: bool) -> dict:
    """The chat/completions JSON body; UpstreamInvalidRequest names what OpenAI cannot take."""
    foreign = request.family == ANTHROPIC
    body: dict = {"model": request.model, "messages": messages_to_wire(request.messages, foreign)}
    body["max_completion_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop)
    if request.n != 1:
        body["n"] = request.n
    if request.tools:
        body["tools"] = [tool_to_wire(t, i, foreign) for i, t in enumerate(request.tools)]
    if request.tool_choice is not None:
        body["tool_choice"] = tool_choice_to_wire(request.tool_choice)
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format is not None:
        body["response_format"] = response_format_to_wire(request.response_format)
    effort = reasoning_effort(request)
    if effort is not None:
        body["reasoning_effort"] = effort
    if request.user is not None:
        body["safety_identifier" if foreign else "user"] = request.user
    _merge_options(body, request)
    if stream:
        body["stream"] = True
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    else:
        body.pop("stream_options", None)
    return body


def _merge_options(body: dict, request: ChatRequest) -> None:
    options = request.options
    if not options.fields:
        return
    if options.family != OPENAI:
        raise unsupported(next(iter(options.fields)), TARGET)
    body.update(options.fields)


def reasoning_effort(request: ChatRequest) -> str | None:
    """reasoning_effort as given, or translated from Anthropic's thinking (enabled: by budget)."""
    if request.reasoning_effort is not None:
        if request.family == ANTHROPIC and not request.reasoning:
            raise unsupported("output_config.effort", f"non-reasoning {TARGET}",
                              "use a reasoning model such as o4-mini or gpt-5")
        return request.reasoning_effort
    thinking = request.thinking
    if thinking is None or thinking.type == "disabled":
        return None
    if thinking.extras:
        raise unsupported(f"thinking.{next(iter(thinking.extras))}", TARGET)
    if not request.reasoning:
        raise unsupported("thinking", f"non-reasoning {TARGET}", "use a reasoning model such as o4-mini or gpt-5")
    if thinking.type == "adaptive" or thinking.budget_tokens is None:
        return None
    return next((effort for limit, effort in EFFORT_BY_BUDGET if thinking.budget_tokens <= limit), "high")


def messages_to_wire(messages: tuple[Message, ...], foreign: bool) -> list[dict]:
    """Neutral turns -> OpenAI messages; a turn of tool results becomes one `tool` message per result."""
    wire: list[dict] = []
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        _check_extras(message.extras, where, foreign)
        results = [p for p in message.content if isinstance(p, ToolResultPart)]
        rest = tuple(p for p in message.content if not isinstance(p, ToolResultPart))
        for result in results:
            wire.append(tool_result_to_wire(result, where, foreign))
        if message.role == "tool":
            continue
        if message.role == "assistant":
            wire.append({**assistant_to_wire(rest, where, foreign), **message.extras})
        elif rest or not results:
            wire.append({"role": message.role, "content": content_to_wire(rest, where, foreign),
                         **message.extras})
    return wire


def _check_extras(extras, where: str, foreign: bool) -> None:
    if foreign and extras:
        raise unsupported(f"{where}.{next(iter(extras))}", TARGET)


def content_to_wire(parts, where: str, foreign: bool) -> str | list[dict]:
    """A string for one plain text part, else a list of OpenAI content parts."""
    if len(parts) == 1 and isinstance(parts[0], TextPart) and not parts[0].extras:
        return parts[0].text
    return [part_to_wire(part, f"{where}.content.{i}", foreign) for i, part in enumerate(parts)]


def part_to_wire(part, where: str, foreign: bool) -> dict:
    """One user/system content part as OpenAI's text, image_url or native part."""
    if isinstance(part, TextPart):
        _check_extras(part.extras, where, foreign)
        return {"type": "text", "text": part.text, **part.extras}
    if isinstance(part, ImagePart):
        _check_extras(part.extras, where, foreign)
        image = {"url": part.data_url()}
        if part.detail is not None:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image, **part.extras}
    if isinstance(part, NativePart) and part.family == OPENAI:
        return dict(part.block)
    kind = part.kind if isinstance(part, NativePart) else type(part).__name__
    raise unsupported(f"{where} ({kind} content)", TARGET)


def assistant_to_wire(parts, where: str, foreign: bool) -> dict:
    """An assistant turn: text content, refusal, tool_calls; prior thinking is not sent back (documented)."""
    message: dict = {"role": "assistant"}
    texts = [p for p in parts if isinstance(p, TextPart)]
    calls = [p for p in parts if isinstance(p, ToolCallPart)]
    refusals = [p.refusal for p in parts if isinstance(p, RefusalPart)]
    others = [p for p in parts if not isinstance(p, (TextPart, ToolCallPart, RefusalPart, ThinkingPart,
                                                     RedactedThinkingPart))]
    if others:
        raise unsupported(f"{where}.content ({type(others[0]).__name__})", TARGET)
    if texts:
        message["content"] = content_to_wire(tuple(texts), where, foreign)
    elif not calls:
        message["content"] = None if refusals else ""
    else:
        message["content"] = None
    if refusals:
        message["refusal"] = "".join(refusals)
    if calls:
        message["tool_calls"] = [tool_call_to_wire(c, f"{where}.tool_calls.{i}", foreign)
                                 for i, c in enumerate(calls)]
    return message


def tool_call_to_wire(call: ToolCallPart, where: str, foreign: bool) -> dict:
    _check_extras(call.extras, where, foreign)
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments},
            **call.extras}


def tool_result_to_wire(result: ToolResultPart, where: str, foreign: bool) -> dict:
    """A tool message; OpenAI tool messages take text only."""
    _check_extras(result.extras, where, foreign)
    if any(not isinstance(p, TextPart) for p in result.content):
        raise unsupported(f"{where} (images or documents inside a tool result)", TARGET)
    content = content_to_wire(result.content, where, foreign) if result.content else ""
    return {"role": "tool", "tool_call_id": result.tool_call_id, "content": content, **result.extras}


def tool_to_wire(tool, index: int, foreign: bool) -> dict:
    extras = {k: v for k, v in tool.extras.items() if not (foreign and k in STREAMING_HINTS)}
    _check_extras(extras, f"tools.{index}", foreign)
    function: dict = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = dict(tool.parameters)
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function, **extras}


def tool_choice_to_wire(choice) -> str | dict:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def response_format_to_wire(response_format) -> dict:
    if response_format.type != "json_schema":
        return {"type": response_format.type}
    schema: dict = {"name": response_format.name or DEFAULT_SCHEMA_NAME}
    if response_format.description is not None:
        schema["description"] = response_format.description
    if response_format.schema is not None:
        schema["schema"] = dict(response_format.schema)
    if response_format.strict is not None:
        schema["strict"] = response_format.strict
    return {"type": "json_schema", "json_schema": schema}
