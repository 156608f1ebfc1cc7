"""OpenAI Chat Completions request shapes inside a body (messages, tools, tool_choice, response_format),
checked the way the API checks them and read into the neutral model (chat_completion_*_param.py types)."""

from __future__ import annotations

import re

from gateway.providers.base import (
    OPENAI,
    ImagePart,
    Message,
    NativePart,
    RedactedThinkingPart,
    RefusalPart,
    ResponseFormat,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)
from gateway.schemas.shapes import (ShapeError, Shaped, array, boolean, data_url, is_web_url, join, obj, one_of,
                                    optional_text, text)

ROLES = ("system", "developer", "user", "assistant", "tool")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
IMAGE_DETAILS = ("auto", "low", "high", "original")
NAME_MAX = 256


def read_messages(value) -> tuple[Message, ...]:
    """The messages array, each turn checked by its role's rules."""
    messages = []
    for index, raw in enumerate(array(value, "")):
        path = str(index)
        if not isinstance(raw, dict):
            raise ShapeError(path, "Must be a JSON object.")
        role = one_of(raw.get("role"), join(path, "role"), ROLES)
        messages.append(READERS[role](raw, path))
    return tuple(messages)


def _name_extras(raw: dict, path: str) -> dict:
    if "name" not in raw:
        return {}
    return {"name": text(raw["name"], join(path, "name"), allow_empty=False, max_length=NAME_MAX)}


def _instructions(raw: dict, path: str) -> Message:
    obj(raw, path, ("role", "content"), ("name",))
    return Message(raw["role"], _text_content(raw["content"], join(path, "content")), _name_extras(raw, path))


def _user(raw: dict, path: str) -> Message:
    obj(raw, path, ("role", "content"), ("name",))
    content = raw["content"]
    where = join(path, "content")
    if isinstance(content, str):
        parts = (TextPart(text(content, where)),)
    else:
        parts = tuple(_user_part(part, join(where, i)) for i, part in enumerate(array(content, where)))
    return Message("user", parts, _name_extras(raw, path))


def _assistant(raw: dict, path: str) -> Message:
    obj(raw, path, ("role",), ("content", "refusal", "tool_calls", "name", "audio", "function_call",
                                "annotations", "thinking_blocks", "reasoning_content"))
    for name in ("audio", "function_call"):
        if raw.get(name) is not None:
            raise ShapeError(join(path, name), "Not supported by this gateway (audio output and the deprecated "
                                               "function_call are refused; use tool_calls).")
    parts: list = list(_thinking_blocks(raw.get("thinking_blocks"), join(path, "thinking_blocks")))
    content, where = raw.get("content"), join(path, "content")
    if isinstance(content, str):
        parts.append(TextPart(text(content, where)))
    elif content is not None:
        for i, part in enumerate(array(content, where)):
            parts.append(_assistant_part(part, join(where, i)))
    if raw.get("refusal") is not None:
        parts.append(RefusalPart(text(raw["refusal"], join(path, "refusal"))))
    calls = raw.get("tool_calls")
    if calls is not None:
        parts += [_tool_call(call, join(join(path, "tool_calls"), i))
                  for i, call in enumerate(array(calls, join(path, "tool_calls"), allow_empty=True))]
    if content is None and not calls and raw.get("refusal") is None:
        raise ShapeError(where, "An assistant message needs content unless it has tool_calls.")
    extras = _name_extras(raw, path)
    if raw.get("annotations") is not None:
        extras["annotations"] = raw["annotations"]  # an answer's own metadata, echoed back with it
    return Message("assistant", tuple(parts), extras)


def _tool(raw: dict, path: str) -> Message:
    obj(raw, path, ("role", "content", "tool_call_id"))
    call_id = text(raw["tool_call_id"], join(path, "tool_call_id"), allow_empty=False)
    result = ToolResultPart(call_id, _text_content(raw["content"], join(path, "content")))
    return Message("tool", (result,))


READERS = {"system": _instructions, "developer": _instructions, "user": _user, "assistant": _assistant,
           "tool": _tool}


def _text_content(content, path: str) -> tuple[TextPart, ...]:
    """A string or a list of text parts."""
    if isinstance(content, str):
        return (TextPart(text(content, path)),)
    return tuple(_text_part(part, join(path, i)) for i, part in enumerate(array(content, path)))


def _text_part(part, path: str) -> TextPart:
    obj(part, path, ("type", "text"))
    one_of(part["type"], join(path, "type"), ("text",))
    return TextPart(text(part["text"], join(path, "text")))


def _user_part(part, path: str):
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return _text_part(part, path)
    if kind == "image_url":
        obj(part, path, ("type", "image_url"))
        return read_image(part["image_url"], join(path, "image_url"))
    if kind == "input_audio":
        obj(part, path, ("type", "input_audio"))
        obj(part["input_audio"], join(path, "input_audio"), ("data", "format"))
        return NativePart(OPENAI, part)
    if kind == "file":
        obj(part, path, ("type", "file"))
        obj(part["file"], join(path, "file"), (), ("file_data", "file_id", "filename"))
        return NativePart(OPENAI, part)
    raise ShapeError(join(path, "type"), "Must be one of: text, image_url, input_audio, file.")


def read_image(image, path: str) -> ImagePart:
    """{"url": https URL or data URL, "detail"?} -> ImagePart."""
    obj(image, path, ("url",), ("detail",))
    url = text(image["url"], join(path, "url"), allow_empty=False)
    detail = one_of(image["detail"], join(path, "detail"), IMAGE_DETAILS) if "detail" in image else None
    if is_web_url(url):
        return ImagePart(url=url, detail=detail)
    media_type, data = data_url(url, join(path, "url"))
    return ImagePart(data=data, media_type=media_type, detail=detail)


def _assistant_part(part, path: str):
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "refusal":
        obj(part, path, ("type", "refusal"))
        return RefusalPart(text(part["refusal"], join(path, "refusal")))
    return _text_part(part, path)


def _thinking_blocks(blocks, path: str) -> tuple:
    """The gateway's extension (LiteLLM's convention): Claude thinking blocks carried on assistant turns."""
    if blocks is None:
        return ()
    parts = []
    for i, block in enumerate(array(blocks, path, allow_empty=True)):
        where = join(path, i)
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "redacted_thinking":
            obj(block, where, ("type", "data"))
            parts.append(RedactedThinkingPart(text(block["data"], join(where, "data"))))
        else:
            obj(block, where, ("type", "thinking"), ("signature",))
            one_of(kind, join(where, "type"), ("thinking", "redacted_thinking"))
            parts.append(ThinkingPart(text(block["thinking"], join(where, "thinking")),
                                      optional_text(block.get("signature"), join(where, "signature"))))
    return tuple(parts)


def _tool_call(call, path: str) -> ToolCallPart:
    obj(call, path, ("id", "type", "function"))
    one_of(call["type"], join(path, "type"), ("function",))
    function = obj(call["function"], join(path, "function"), ("name", "arguments"))
    return ToolCallPart(id=text(call["id"], join(path, "id"), allow_empty=False),
                        name=text(function["name"], join(path, "function.name"), allow_empty=False),
                        arguments=text(function["arguments"], join(path, "function.arguments")))


def read_tools(value) -> tuple[ToolSpec, ...]:
    """Function tools; custom (free-form grammar) tools are refused by name."""
    tools = []
    for index, tool in enumerate(array(value, "", allow_empty=True)):
        path = str(index)
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise ShapeError(join(path, "type"), "Only function tools are supported (custom tools are not).")
        obj(tool, path, ("type", "function"))
        function = obj(tool["function"], join(path, "function"), ("name",), ("description", "parameters", "strict"))
        name = function["name"]
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise ShapeError(join(path, "function.name"), "Must be 1-64 characters of a-z, A-Z, 0-9, _ and -.")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise ShapeError(join(path, "function.parameters"), "Must be a JSON Schema object.")
        strict = function.get("strict")
        tools.append(ToolSpec(name=name, description=optional_text(function.get("description"),
                                                                   join(path, "function.description")),
                              parameters=parameters,
                              strict=None if strict is None else boolean(strict, join(path, "function.strict"))))
    return tuple(tools)


def read_tool_choice(value) -> ToolChoice:
    if isinstance(value, str):
        return ToolChoice(one_of(value, "", ("none", "auto", "required")))
    kind = value.get("type") if isinstance(value, dict) else None
    if kind != "function":
        raise ShapeError("type", "Must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", "
                                 "\"function\": {\"name\": ...}} (allowed_tools and custom are not supported).")
    obj(value, "", ("type", "function"))
    function = obj(value["function"], "function", ("name",))
    return ToolChoice("tool", text(function["name"], "function.name", allow_empty=False))


def read_response_format(value) -> ResponseFormat:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        obj(value, "", ("type",))
        return ResponseFormat(kind)
    if kind != "json_schema":
        raise ShapeError("type", "Must be one of: text, json_object, json_schema.")
    obj(value, "", ("type", "json_schema"))
    spec = obj(value["json_schema"], "json_schema", ("name",), ("description", "schema", "strict"))
    if spec.get("schema") is not None and not isinstance(spec["schema"], dict):
        raise ShapeError("json_schema.schema", "Must be a JSON Schema object.")
    if not isinstance(spec["name"], str) or not TOOL_NAME.match(spec["name"]):
        raise ShapeError("json_schema.name", "Must be 1-64 characters of a-z, A-Z, 0-9, _ and -.")
    strict = spec.get("strict")
    return ResponseFormat("json_schema", schema=spec.get("schema"), name=spec["name"],
                          description=optional_text(spec.get("description"), "json_schema.description"),
                          strict=None if strict is None else boolean(strict, "json_schema.strict"))


class OpenAIMessages(Shaped):
    json_schema = {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["role"], "properties": {"role": {"type": "string", "enum": list(ROLES)}}}}

    def parse(self, value):
        return read_messages(value)


class OpenAITools(Shaped):
    json_schema = {"type": "array", "items": {"type": "object", "required": ["type", "function"]}}

    def parse(self, value):
        return read_tools(value)


class OpenAIToolChoice(Shaped):
    json_schema = {"oneOf": [{"type": "string", "enum": ["none", "auto", "required"]}, {"type": "object"}]}

    def parse(self, value):
        return read_tool_choice(value)


class OpenAIResponseFormat(Shaped):
    json_schema = {"type": "object", "required": ["type"]}

    def parse(self, value):
        return read_response_format(value)
