"""The Anthropic Messages adapter: neutral request -> /v1/messages JSON and back.

A request that came in Anthropic's own format goes out as the caller wrote it (its extras merged back
verbatim, anthropic-beta forwarded); one from OpenAI's format is translated (system turns to the top,
tool turns to tool_result blocks, images to image sources, reasoning_effort to a thinking budget, ...)
and what has no equivalent is refused by name before any HTTP call. The client-facing Anthropic format
writes answer blocks with block_to_wire from here. Answers are read in providers/anthropic_reply.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from gateway.providers.anthropic_reply import NAME, normalise_stop_reason, parse_message, parse_stream, parse_usage
from gateway.providers.base import (
    ANTHROPIC,
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
    UpstreamError,
    UpstreamInvalidRequest,
    unsupported,
)
from gateway.providers.http_provider import HttpProvider
from gateway.providers.transport import RequestTemplate, read_json

__all__ = ["AnthropicProvider", "request_body", "parse_message", "parse_stream", "parse_usage",
           "normalise_stop_reason"]

TARGET = "Anthropic"
API_VERSION = "2023-06-01"
SYSTEM_ROLES = ("system", "developer")
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_CHOICES = {"auto": "auto", "required": "any", "none": "none", "tool": "tool"}
# reasoning_effort -> thinking budget_tokens (docs/compat.md); Anthropic needs 1024 <= budget < max_tokens.
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 8192, "xhigh": 16384, "max": 24576}
MIN_THINKING_BUDGET = 1024
EMPTY_SCHEMA = {"type": "object", "properties": {}}
PASSED_HEADERS = ("anthropic-beta",)
# response_format json_object on Claude: a forced tool whose input is the JSON object (LiteLLM's trick).
JSON_TOOL = {"name": "json_object", "description": "Respond with the JSON object the user asked for.",
             "input_schema": {"type": "object"}}
# What POST /v1/messages/count_tokens takes of a Messages body (anthropic 2.14 MessageCountTokensParams).
COUNTED_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
                  "cache_control")
# Fields of an OpenAI answer that clients send back with it and that instruct nothing (docs/compat.md).
ECHOED_FIELDS = ("annotations",)


class AnthropicProvider(HttpProvider):
    """Sends ChatRequests to {base_url}/v1/messages, and counts their tokens at /v1/messages/count_tokens."""

    name = NAME
    path = "/v1/messages"
    counts_tokens = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        counting = replace(self._endpoint, url=self._endpoint.url + "/count_tokens")
        self._counting = (counting, RequestTemplate(self._session, counting))

    def count_tokens(self, request: ChatRequest) -> int:
        """The input tokens Anthropic counts for request: its Messages body less what does not shape the
        prompt (max_tokens, sampling, stream), which the counting endpoint refuses."""
        body = {name: value for name, value in self.request_body(request, stream=False).items()
                if name in COUNTED_FIELDS}
        answer = read_json(self._send(request, body, stream=False, endpoint=self._counting), self.name)
        tokens = answer.get("input_tokens")
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
            raise UpstreamError(f"{self.name} answered a token count without input_tokens", upstream_status=200)
        return tokens

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key, "anthropic-version": API_VERSION}

    def request_headers(self, request: ChatRequest) -> dict[str, str]:
        """The caller's anthropic-beta flags travel with its request."""
        return {k: v for k, v in request.headers.items() if k in PASSED_HEADERS}

    def validate(self, request: ChatRequest) -> None:
        """Refuse what Anthropic would refuse, before anything is reserved or sent."""
        request_body(request, stream=False)

    def request_body(self, request: ChatRequest, stream: bool) -> dict:
        return request_body(request, stream)

    def parse_result(self, body: dict, request: ChatRequest) -> ChatResult:
        return parse_message(body, request.model, json_tool=json_tool(request))

    def parse_events(self, events, secrets, request: ChatRequest) -> Iterator[ChatChunk]:
        return parse_stream(events, secrets, json_tool=json_tool(request))


def request_body(request: ChatRequest, stream: bool) -> dict:
    """The /v1/messages JSON body; raises UpstreamInvalidRequest for what Anthropic would refuse."""
    foreign = request.family != ANTHROPIC
    if request.n != 1:
        raise unsupported("n", TARGET, "Claude returns one answer per request")
    system, turns = split_messages(request.messages, foreign)
    body: dict = {"model": request.model, "max_tokens": request.max_tokens, "messages": turns}
    if system:
        body["system"] = system
    if request.temperature is not None:
        if foreign and not 0 <= request.temperature <= 1:
            raise UpstreamInvalidRequest("temperature must be between 0 and 1 for Anthropic models",
                                         param="temperature")
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.tools:
        body["tools"] = [tool_to_wire(tool, i, foreign) for i, tool in enumerate(request.tools)]
    choice = tool_choice_to_wire(request)
    if choice is not None:
        body["tool_choice"] = choice
    _reasoning(body, request, foreign)
    _output_format(body, request)
    if request.user is not None:
        body["metadata"] = {"user_id": request.user}
    _merge_options(body, request)
    if stream:
        body["stream"] = True
    return body


def _merge_options(body: dict, request: ChatRequest) -> None:
    options = request.options
    if not options.fields:
        return
    if options.family != ANTHROPIC:
        raise unsupported(next(iter(options.fields)), TARGET)
    for name, value in options.fields.items():
        if name == "output_config" and "output_config" in body:
            body["output_config"] = {**value, **body["output_config"]}
        else:
            body[name] = value


def _reasoning(body: dict, request: ChatRequest, foreign: bool) -> None:
    """thinking as given; OpenAI's reasoning_effort as a thinking budget; Anthropic's effort as output_config."""
    if request.thinking is not None:
        thinking = {"type": request.thinking.type, **request.thinking.extras}
        if request.thinking.budget_tokens is not None:
            thinking["budget_tokens"] = request.thinking.budget_tokens
        body["thinking"] = thinking
    effort = request.reasoning_effort
    if effort is None:
        return
    if not foreign:
        body.setdefault("output_config", {})["effort"] = effort
        return
    if effort == "none":
        return
    budget = THINKING_BUDGETS.get(effort)
    if budget is None:
        raise UpstreamInvalidRequest(f"reasoning_effort {effort!r} has no Claude equivalent; use one of "
                                     f"{', '.join(['none', *THINKING_BUDGETS])}", param="reasoning_effort")
    if budget >= request.max_tokens:
        budget = request.max_tokens // 2
    if budget < MIN_THINKING_BUDGET:
        raise UpstreamInvalidRequest("reasoning_effort on Claude models needs a thinking budget of at least "
                                     f"{MIN_THINKING_BUDGET} tokens below max_tokens; raise max_completion_tokens "
                                     f"to at least {2 * MIN_THINKING_BUDGET}", param="reasoning_effort")
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}


def json_tool(request: ChatRequest) -> str | None:
    """The forced tool that carries a json_object answer, when the request asked for one."""
    form = request.response_format
    return JSON_TOOL["name"] if form is not None and form.type == "json_object" else None


def _output_format(body: dict, request: ChatRequest) -> None:
    """response_format json_schema -> output_config.format (structured outputs); json_object -> a forced tool
    whose input is the object (answered as text by anthropic_reply)."""
    response_format = request.response_format
    if response_format is None or response_format.type == "text":
        return
    if response_format.type == "json_object":
        if request.tools or request.tool_choice is not None or request.thinking is not None \
                or request.reasoning_effort not in (None, "none"):
            raise UpstreamInvalidRequest("response_format json_object is answered through a forced tool on "
                                         "Anthropic models, which cannot be combined with tools or thinking; use "
                                         "json_schema", param="response_format")
        body["tools"] = [dict(JSON_TOOL)]
        body["tool_choice"] = {"type": "tool", "name": JSON_TOOL["name"]}
        return
    if not request.supports_structured_output:
        raise unsupported("response_format", f"this {TARGET}", "the model has no structured outputs")
    body.setdefault("output_config", {})["format"] = {"type": "json_schema",
                                                      "schema": dict(response_format.schema or {})}


def split_messages(messages: tuple[Message, ...], foreign: bool) -> tuple[list[dict] | str, list[dict]]:
    """(leading system turns as system blocks, the other turns); tool turns become user tool_result turns."""
    system: list[dict] = []
    turns: list[dict] = []
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        if message.role in SYSTEM_ROLES:
            if turns:
                raise UpstreamInvalidRequest(f"{where} is a {message.role} message after the conversation began; "
                                             "Anthropic models take system instructions only before the first "
                                             "user turn", param=f"{where}.role")
            system += [block for block in blocks_to_wire(message.content, where, foreign)]
            continue
        extras = {k: v for k, v in message.extras.items() if k not in ECHOED_FIELDS} if foreign else message.extras
        if foreign and extras:
            raise unsupported(f"{where}.{next(iter(extras))}", TARGET)
        role = "assistant" if message.role == "assistant" else "user"
        content = blocks_to_wire(message.content, where, foreign)
        if not content:
            raise UpstreamInvalidRequest(f"messages[{index}] ({message.role}) has empty content; Anthropic models "
                                         "need non-empty text in every turn", param=f"{where}.content")
        if foreign and turns and turns[-1]["role"] == role == "user":
            turns[-1]["content"] += content
        else:
            turns.append({"role": role, "content": content, **extras})
    if not turns:
        raise UpstreamInvalidRequest("messages must contain at least one user message besides system "
                                     "messages", param="messages")
    if turns[0]["role"] != "user":
        raise UpstreamInvalidRequest("the first non-system message must come from the user for Anthropic "
                                     "models", param="messages")
    if foreign:
        _strip_prefill(turns[-1])
    return _system_value(system), [_compact(turn) for turn in turns]


def _strip_prefill(turn: dict) -> None:
    """A final assistant turn (a prefill) may not end in whitespace on Anthropic: trailing spaces are cut."""
    last = turn["content"][-1] if turn["role"] == "assistant" else None
    if last is not None and last.get("type") == "text":
        last["text"] = last["text"].rstrip()


def _system_value(blocks: list[dict]) -> list[dict] | str:
    if len(blocks) == 1 and set(blocks[0]) == {"type", "text"}:
        return blocks[0]["text"]
    return blocks


def _compact(turn: dict) -> dict:
    """A turn of one plain text block is sent as a string, as most callers write it."""
    content = turn["content"]
    if len(content) == 1 and set(content[0]) == {"type", "text"}:
        return {**turn, "content": content[0]["text"]}
    return turn


def blocks_to_wire(parts, where: str, foreign: bool) -> list[dict]:
    """Neutral parts -> Anthropic content blocks; from OpenAI, empty text parts are left out."""
    blocks = []
    for i, part in enumerate(parts):
        if foreign and isinstance(part, TextPart) and not part.text.strip() and part.cache_control is None:
            continue
        blocks.append(block_to_wire(part, f"{where}.content.{i}", foreign))
    return blocks


def block_to_wire(part, where: str, foreign: bool) -> dict:
    """One neutral part -> one Anthropic content block."""
    extras = getattr(part, "extras", None) or {}
    if foreign and extras:
        raise unsupported(f"{where}.{next(iter(extras))}", TARGET)
    if isinstance(part, TextPart):
        block = {"type": "text", "text": part.text}
    elif isinstance(part, RefusalPart):
        block = {"type": "text", "text": part.refusal}
    elif isinstance(part, ImagePart):
        block = {"type": "image", "source": image_source(part, where)}
    elif isinstance(part, ToolCallPart):
        block = {"type": "tool_use", "id": part.id, "name": part.name, "input": _tool_input(part, where)}
    elif isinstance(part, ToolResultPart):
        block = {"type": "tool_result", "tool_use_id": part.tool_call_id}
        if part.content:
            block["content"] = tool_result_content(part.content, where, foreign)
        if part.is_error is not None:
            block["is_error"] = part.is_error
    elif isinstance(part, ThinkingPart):
        block = {"type": "thinking", "thinking": part.thinking, "signature": part.signature or ""}
    elif isinstance(part, RedactedThinkingPart):
        block = {"type": "redacted_thinking", "data": part.data}
    elif isinstance(part, NativePart) and part.family == ANTHROPIC:
        return dict(part.block)
    else:
        raise unsupported(f"{where} ({getattr(part, 'kind', type(part).__name__)} content)", TARGET)
    if getattr(part, "cache_control", None) is not None:
        block["cache_control"] = part.cache_control
    return {**block, **extras}


def tool_result_content(parts, where: str, foreign: bool) -> str | list[dict]:
    blocks = blocks_to_wire(parts, where, foreign)
    if len(blocks) == 1 and set(blocks[0]) == {"type", "text"}:
        return blocks[0]["text"]
    return blocks


def image_source(image: ImagePart, where: str) -> dict:
    """base64 (one of the four media types) or url; OpenAI's detail "low" has no Claude equivalent."""
    if image.detail == "low":
        raise unsupported(f"{where}.image_url.detail", TARGET, "Claude has no low-detail image mode; use auto or "
                          "high")
    if image.url is not None:
        return {"type": "url", "url": image.url}
    if image.media_type not in IMAGE_MEDIA_TYPES:
        raise UpstreamInvalidRequest(f"{where}: image media type {image.media_type!r} is not supported by "
                                     f"Anthropic models; use one of {', '.join(IMAGE_MEDIA_TYPES)}",
                                     param=where)
    return {"type": "base64", "media_type": image.media_type, "data": image.data}


def _tool_input(call: ToolCallPart, where: str):
    try:
        value = call.input()
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UpstreamInvalidRequest(f"{where}: tool call arguments must be a JSON object for Anthropic models",
                                     param=f"{where}.function.arguments")
    return value


def tool_to_wire(tool, index: int, foreign: bool) -> dict:
    if foreign and tool.extras:
        raise unsupported(f"tools.{index}.{next(iter(tool.extras))}", TARGET)
    wire = {"name": tool.name}
    if tool.description is not None:
        wire["description"] = tool.description
    wire["input_schema"] = dict(tool.parameters) if tool.parameters is not None else dict(EMPTY_SCHEMA)
    if tool.strict is not None:
        wire["strict"] = tool.strict
    if tool.cache_control is not None:
        wire["cache_control"] = tool.cache_control
    return {**wire, **tool.extras}


def tool_choice_to_wire(request: ChatRequest) -> dict | None:
    """tool_choice auto/required/none/named -> auto/any/none/tool; parallel_tool_calls is its inverted flag."""
    choice = request.tool_choice
    if choice is None and request.parallel_tool_calls is None:
        return None
    if choice is None and not request.tools:
        return None
    wire = {"type": TOOL_CHOICES[choice.mode] if choice else "auto"}
    if choice is not None and choice.mode == "tool":
        wire["name"] = choice.name
    if request.parallel_tool_calls is not None and wire["type"] != "none":
        wire["disable_parallel_tool_use"] = not request.parallel_tool_calls
    return wire
