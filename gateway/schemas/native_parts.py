"""The native API's messages, tools, tool_choice and response_format: the neutral model written as JSON.

Content is a string or a list of parts: {"type": "text", "text"}, {"type": "image", "url"} or
{"type": "image", "data", "media_type"} (+ "detail"), {"type": "tool_call", "id", "name", "arguments"},
{"type": "tool_result", "tool_call_id", "content", "is_error"?}, {"type": "thinking", "thinking", "signature"}.
"""

from __future__ import annotations

from gateway.providers.base import (ImagePart, Message, ResponseFormat, TextPart, ThinkingPart, ToolCallPart,
                                    ToolChoice, ToolResultPart, ToolSpec)
from gateway.schemas.openai_parts import IMAGE_DETAILS, TOOL_NAME
from gateway.schemas.shapes import (ShapeError, Shaped, array, boolean, join, obj, one_of, optional_text, text)

ROLES = ("system", "developer", "user", "assistant", "tool")
PART_TYPES = ("text", "image", "tool_call", "tool_result", "thinking")


def read_messages(value) -> tuple[Message, ...]:
    messages = []
    for index, raw in enumerate(array(value, "")):
        path = str(index)
        obj(raw, path, ("role", "content"))
        role = one_of(raw["role"], join(path, "role"), ROLES)
        content = raw["content"]
        where = join(path, "content")
        parts = ((TextPart(text(content, where)),) if isinstance(content, str)
                 else tuple(read_part(part, join(where, i)) for i, part in enumerate(array(content, where))))
        if role == "tool" and not all(isinstance(p, ToolResultPart) for p in parts):
            raise ShapeError(where, "A tool message holds tool_result parts only.")
        messages.append(Message(role, parts))
    return tuple(messages)


def read_part(part, path: str):
    kind = part.get("type") if isinstance(part, dict) else None
    one_of(kind, join(path, "type"), PART_TYPES)
    if kind == "text":
        obj(part, path, ("type", "text"))
        return TextPart(text(part["text"], join(path, "text")))
    if kind == "image":
        return _image(part, path)
    if kind == "tool_call":
        obj(part, path, ("type", "id", "name", "arguments"))
        return ToolCallPart(text(part["id"], join(path, "id"), allow_empty=False),
                            text(part["name"], join(path, "name"), allow_empty=False),
                            text(part["arguments"], join(path, "arguments")))
    if kind == "tool_result":
        obj(part, path, ("type", "tool_call_id", "content"), ("is_error",))
        return ToolResultPart(text(part["tool_call_id"], join(path, "tool_call_id"), allow_empty=False),
                              (TextPart(text(part["content"], join(path, "content"))),),
                              boolean(part["is_error"], join(path, "is_error")) if "is_error" in part else None)
    obj(part, path, ("type", "thinking"), ("signature",))
    return ThinkingPart(text(part["thinking"], join(path, "thinking")),
                        optional_text(part.get("signature"), join(path, "signature")))


def _image(part: dict, path: str) -> ImagePart:
    detail = one_of(part["detail"], join(path, "detail"), IMAGE_DETAILS) if "detail" in part else None
    if "url" in part:
        obj(part, path, ("type", "url"), ("detail",))
        url = text(part["url"], join(path, "url"), allow_empty=False)
        if not url.startswith(("https://", "http://")):
            raise ShapeError(join(path, "url"), "Must be an http(s) URL (send inline images as data + media_type).")
        return ImagePart(url=url, detail=detail)
    obj(part, path, ("type", "data", "media_type"), ("detail",))
    return ImagePart(data=text(part["data"], join(path, "data"), allow_empty=False),
                     media_type=text(part["media_type"], join(path, "media_type"), allow_empty=False), detail=detail)


def read_tools(value) -> tuple[ToolSpec, ...]:
    tools = []
    for index, tool in enumerate(array(value, "", allow_empty=True)):
        path = str(index)
        obj(tool, path, ("name",), ("description", "parameters", "strict"))
        if not isinstance(tool["name"], str) or not TOOL_NAME.match(tool["name"]):
            raise ShapeError(join(path, "name"), "Must be 1-64 characters of a-z, A-Z, 0-9, _ and -.")
        if tool.get("parameters") is not None and not isinstance(tool["parameters"], dict):
            raise ShapeError(join(path, "parameters"), "Must be a JSON Schema object.")
        tools.append(ToolSpec(tool["name"], optional_text(tool.get("description"), join(path, "description")),
                              tool.get("parameters"),
                              boolean(tool["strict"], join(path, "strict")) if "strict" in tool else None))
    return tuple(tools)


def read_tool_choice(value) -> ToolChoice:
    if isinstance(value, str):
        return ToolChoice(one_of(value, "", ("auto", "none", "required")))
    obj(value, "", ("name",))
    return ToolChoice("tool", text(value["name"], "name", allow_empty=False))


def read_response_format(value) -> ResponseFormat:
    kind = value.get("type") if isinstance(value, dict) else None
    one_of(kind, "type", ("text", "json_object", "json_schema"))
    if kind != "json_schema":
        obj(value, "", ("type",))
        return ResponseFormat(kind)
    obj(value, "", ("type", "schema"), ("name", "description", "strict"))
    if not isinstance(value["schema"], dict):
        raise ShapeError("schema", "Must be a JSON Schema object.")
    return ResponseFormat("json_schema", value["schema"], optional_text(value.get("name"), "name"),
                          optional_text(value.get("description"), "description"),
                          boolean(value["strict"], "strict") if "strict" in value else None)


class NativeMessages(Shaped):
    json_schema = {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["role", "content"],
        "properties": {"role": {"type": "string", "enum": list(ROLES)}}}}

    def parse(self, value):
        return read_messages(value)


class NativeTools(Shaped):
    json_schema = {"type": "array", "items": {"type": "object", "required": ["name"]}}

    def parse(self, value):
        return read_tools(value)


class NativeToolChoice(Shaped):
    json_schema = {"oneOf": [{"type": "string", "enum": ["auto", "none", "required"]}, {"type": "object"}]}

    def parse(self, value):
        return read_tool_choice(value)


class NativeResponseFormat(Shaped):
    json_schema = {"type": "object", "required": ["type"]}

    def parse(self, value):
        return read_response_format(value)
