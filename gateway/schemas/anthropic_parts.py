"""Anthropic Messages request shapes inside a body (content blocks, system, tools, tool_choice, thinking,
output_config), checked the way the API checks them and read into the neutral model (types/*_param.py)."""

from __future__ import annotations

import json

from gateway.providers.base import (
    ANTHROPIC,
    ImagePart,
    Message,
    NativePart,
    RedactedThinkingPart,
    ResponseFormat,
    TextPart,
    Thinking,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)
from gateway.schemas.shapes import (ShapeError, Shaped, array, boolean, cache_control, integer, join, obj, one_of,
                                    text)

ROLES = ("user", "assistant")
TOOL_RESULT_BLOCKS = ("text", "image", "document", "search_result")
NATIVE_BLOCKS = ("document", "search_result")
SERVER_BLOCKS = ("server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
                 "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "mcp_tool_use",
                 "mcp_tool_result", "container_upload", "tool_search_tool_result")
TOOL_EXTRAS = ("input_examples", "defer_loading", "eager_input_streaming", "allowed_callers")
EFFORTS = ("low", "medium", "high", "xhigh", "max")
MIN_BUDGET = 1024


def read_messages(value) -> tuple[Message, ...]:
    messages = []
    for index, raw in enumerate(array(value, "")):
        path = str(index)
        obj(raw, path, ("role", "content"))
        role = one_of(raw["role"], join(path, "role"), ROLES)
        messages.append(Message(role, read_content(raw["content"], join(path, "content"))))
    return tuple(messages)


def read_content(content, path: str, allowed: tuple[str, ...] | None = None) -> tuple:
    """A string (one text block) or a list of content blocks."""
    if isinstance(content, str):
        return (TextPart(text(content, path)),)
    return tuple(read_block(block, join(path, i), allowed) for i, block in enumerate(array(content, path)))


def read_block(block, path: str, allowed: tuple[str, ...] | None = None):
    kind = block.get("type") if isinstance(block, dict) else None
    if kind in SERVER_BLOCKS:
        raise ShapeError(join(path, "type"), f"{kind} blocks belong to server tools, which this gateway does not "
                                             "support (it cannot price them).")
    if kind not in READERS or (allowed is not None and kind not in allowed):
        raise ShapeError(join(path, "type"), f"Must be one of: {', '.join(allowed or READERS)}.")
    return READERS[kind](block, path)


def _text(block: dict, path: str) -> TextPart:
    obj(block, path, ("type", "text"), ("cache_control", "citations"))
    extras = {"citations": block["citations"]} if block.get("citations") is not None else {}
    return TextPart(text(block["text"], join(path, "text")), cache_control(block.get("cache_control"),
                                                                           join(path, "cache_control")), extras)


def _image(block: dict, path: str):
    obj(block, path, ("type", "source"), ("cache_control",))
    source, where = block["source"], join(path, "source")
    kind = source.get("type") if isinstance(source, dict) else None
    control = cache_control(block.get("cache_control"), join(path, "cache_control"))
    if kind == "base64":
        obj(source, where, ("type", "media_type", "data"))
        return ImagePart(data=text(source["data"], join(where, "data"), allow_empty=False),
                         media_type=one_of(source["media_type"], join(where, "media_type"),
                                           ("image/jpeg", "image/png", "image/gif", "image/webp")),
                         cache_control=control)
    if kind == "url":
        obj(source, where, ("type", "url"))
        return ImagePart(url=text(source["url"], join(where, "url"), allow_empty=False), cache_control=control)
    if kind == "file":
        obj(source, where, ("type", "file_id"))
        return NativePart(ANTHROPIC, block)
    raise ShapeError(join(where, "type"), "Must be one of: base64, url, file.")


def _native(block: dict, path: str) -> NativePart:
    """Documents and search results: checked for a source/content, forwarded as they are."""
    required = ("type", "source") if block["type"] == "document" else ("type", "source", "title", "content")
    obj(block, path, required, ("cache_control", "citations", "context", "title"))
    cache_control(block.get("cache_control"), join(path, "cache_control"))
    return NativePart(ANTHROPIC, block)


def _tool_use(block: dict, path: str) -> ToolCallPart:
    obj(block, path, ("type", "id", "name", "input"), ("cache_control", "caller"))
    if not isinstance(block["input"], dict):
        raise ShapeError(join(path, "input"), "Must be a JSON object.")
    extras = {"caller": block["caller"]} if "caller" in block else {}
    return ToolCallPart(id=text(block["id"], join(path, "id"), allow_empty=False),
                        name=text(block["name"], join(path, "name"), allow_empty=False),
                        arguments=json.dumps(block["input"], separators=(",", ":"), ensure_ascii=False),
                        cache_control=cache_control(block.get("cache_control"), join(path, "cache_control")),
                        extras=extras)


def _tool_result(block: dict, path: str) -> ToolResultPart:
    obj(block, path, ("type", "tool_use_id"), ("content", "is_error", "cache_control"))
    content = block.get("content")
    parts = () if content is None else read_content(content, join(path, "content"), TOOL_RESULT_BLOCKS)
    return ToolResultPart(tool_call_id=text(block["tool_use_id"], join(path, "tool_use_id"), allow_empty=False),
                          content=parts,
                          is_error=boolean(block["is_error"], join(path, "is_error")) if "is_error" in block else None,
                          cache_control=cache_control(block.get("cache_control"), join(path, "cache_control")))


def _thinking(block: dict, path: str) -> ThinkingPart:
    obj(block, path, ("type", "thinking", "signature"))
    return ThinkingPart(text(block["thinking"], join(path, "thinking")),
                        text(block["signature"], join(path, "signature")))


def _redacted(block: dict, path: str) -> RedactedThinkingPart:
    obj(block, path, ("type", "data"))
    return RedactedThinkingPart(text(block["data"], join(path, "data")))


READERS = {"text": _text, "image": _image, "document": _native, "search_result": _native, "tool_use": _tool_use,
           "tool_result": _tool_result, "thinking": _thinking, "redacted_thinking": _redacted}


def read_system(value) -> tuple[TextPart, ...]:
    if isinstance(value, str):
        return (TextPart(text(value, "")),)
    return tuple(read_block(block, str(i), ("text",)) for i, block in enumerate(array(value, "")))


def read_tools(value) -> tuple[ToolSpec, ...]:
    """Client (custom) tools; server tools are refused by name."""
    tools = []
    for index, tool in enumerate(array(value, "", allow_empty=True)):
        path = str(index)
        kind = tool.get("type", "custom") if isinstance(tool, dict) else None
        if kind not in ("custom", None):
            raise ShapeError(join(path, "type"), f"Server tool {kind!r} is not supported by this gateway (it cannot "
                                                 "price server-side tool use); only client tools are.")
        obj(tool, path, ("name", "input_schema"), ("type", "description", "cache_control", "strict", *TOOL_EXTRAS))
        schema = obj(tool["input_schema"], join(path, "input_schema"), ("type",),
                     tuple(k for k in tool["input_schema"] if k != "type") if isinstance(tool["input_schema"], dict)
                     else ())
        one_of(schema["type"], join(path, "input_schema.type"), ("object",))
        extras = {k: tool[k] for k in TOOL_EXTRAS if k in tool}
        tools.append(ToolSpec(name=text(tool["name"], join(path, "name"), allow_empty=False, max_length=128),
                              description=None if tool.get("description") is None
                              else text(tool["description"], join(path, "description")),
                              parameters=schema,
                              strict=boolean(tool["strict"], join(path, "strict")) if "strict" in tool else None,
                              cache_control=cache_control(tool.get("cache_control"), join(path, "cache_control")),
                              extras=extras))
    return tuple(tools)


def read_tool_choice(value) -> tuple[ToolChoice, bool | None]:
    """(the choice, parallel_tool_calls = not disable_parallel_tool_use when given)."""
    kind = value.get("type") if isinstance(value, dict) else None
    one_of(kind, "type", ("auto", "any", "tool", "none"))
    obj(value, "", ("type", "name") if kind == "tool" else ("type",),
        ("disable_parallel_tool_use",) if kind != "none" else ())
    disable = value.get("disable_parallel_tool_use")
    parallel = None if disable is None else not boolean(disable, "disable_parallel_tool_use")
    name = text(value["name"], "name", allow_empty=False) if kind == "tool" else None
    return ToolChoice({"any": "required"}.get(kind, kind), name), parallel


def read_thinking(value) -> Thinking:
    kind = value.get("type") if isinstance(value, dict) else None
    one_of(kind, "type", ("enabled", "disabled", "adaptive"))
    if kind == "disabled":
        obj(value, "", ("type",))
        return Thinking("disabled")
    obj(value, "", ("type", "budget_tokens") if kind == "enabled" else ("type",), ("display",))
    extras = {"display": one_of(value["display"], "display", ("summarized", "omitted"))} if "display" in value else {}
    budget = integer(value["budget_tokens"], "budget_tokens", MIN_BUDGET) if kind == "enabled" else None
    return Thinking(kind, budget, extras)


def read_output_config(value) -> tuple[str | None, ResponseFormat | None]:
    """(effort, the json_schema format) of output_config."""
    obj(value, "", (), ("effort", "format"))
    effort = one_of(value["effort"], "effort", EFFORTS) if value.get("effort") is not None else None
    form = value.get("format")
    return effort, None if form is None else read_output_format(form, "format")


def read_output_format(form, path: str = "") -> ResponseFormat:
    """{"type": "json_schema", "schema": {...}}: output_config.format, or the beta top-level output_format."""
    obj(form, path, ("type", "schema"))
    one_of(form["type"], join(path, "type"), ("json_schema",))
    if not isinstance(form["schema"], dict):
        raise ShapeError(join(path, "schema"), "Must be a JSON Schema object.")
    return ResponseFormat("json_schema", schema=form["schema"])


class AnthropicOutputFormat(Shaped):
    json_schema = {"type": "object", "required": ["type", "schema"]}

    def parse(self, value):
        return read_output_format(value)


class AnthropicMessages(Shaped):
    json_schema = {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["role", "content"],
        "properties": {"role": {"type": "string", "enum": list(ROLES)}}}}

    def parse(self, value):
        return read_messages(value)


class AnthropicSystem(Shaped):
    json_schema = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}

    def parse(self, value):
        return read_system(value)


class AnthropicTools(Shaped):
    json_schema = {"type": "array", "items": {"type": "object", "required": ["name", "input_schema"]}}

    def parse(self, value):
        return read_tools(value)


class AnthropicToolChoice(Shaped):
    json_schema = {"type": "object", "required": ["type"]}

    def parse(self, value):
        return read_tool_choice(value)


class AnthropicThinking(Shaped):
    json_schema = {"type": "object", "required": ["type"]}

    def parse(self, value):
        return read_thinking(value)


class AnthropicOutputConfig(Shaped):
    json_schema = {"type": "object"}

    def parse(self, value):
        return read_output_config(value)
