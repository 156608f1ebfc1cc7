"""The fake upstream refuses what the real APIs refuse, in their own 400 envelopes, so a wrong translation
fails a test instead of passing silently.

The rules are the documented ones (OpenAI Chat Completions and Anthropic Messages references, the SDKs'
`*_param.py` types, wire-protocols.md): unknown fields, role order, tool call/result pairing, image
shapes, tool definitions and choices, structured-output shapes, thinking budgets, reasoning-model rules.
"""

from __future__ import annotations

import re

OPENAI_FIELDS = {
    "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n", "parallel_tool_calls",
    "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention",
    "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
    "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
    "web_search_options"}
ANTHROPIC_FIELDS = {
    "model", "max_tokens", "messages", "cache_control", "container", "context_management", "inference_geo",
    "mcp_servers", "metadata", "output_config", "service_tier", "speed", "stop_sequences", "stream", "system",
    "temperature", "thinking", "tool_choice", "tools", "top_k", "top_p"}
REASONING_MODELS = re.compile(r"^(o\d|gpt-5)")
OPENAI_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ANTHROPIC_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
DATA_URL = re.compile(r"^data:(image/(?:jpeg|png|gif|webp));base64,[A-Za-z0-9+/]+=*$")
ANTHROPIC_BLOCKS = {
    "text": ({"type", "text"}, {"cache_control", "citations"}),
    "image": ({"type", "source"}, {"cache_control"}),
    "document": ({"type", "source"}, {"cache_control", "citations", "context", "title"}),
    "tool_use": ({"type", "id", "name", "input"}, {"cache_control", "caller"}),
    "tool_result": ({"type", "tool_use_id"}, {"content", "is_error", "cache_control"}),
    "thinking": ({"type", "thinking", "signature"}, set()),
    "redacted_thinking": ({"type", "data"}, set()),
}


class Refused(Exception):
    """A 400 the real API would answer; param is OpenAI's error.param."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param = message, param


def openai_refusal(body: dict) -> dict | None:
    """None when OpenAI would accept body, else its 400 error body."""
    try:
        check_openai(body)
    except Refused as refused:
        return {"error": {"message": refused.message, "type": "invalid_request_error", "param": refused.param,
                          "code": None}}
    return None


def anthropic_refusal(body: dict, headers) -> dict | None:
    """None when Anthropic would accept body, else its 400 error body."""
    try:
        check_anthropic(body)
    except Refused as refused:
        return _anthropic_invalid(refused.message)
    return None


def _anthropic_invalid(message: str) -> dict:
    return {"type": "error", "error": {"type": "invalid_request_error", "message": message},
            "request_id": "req_fake_invalid"}


# What POST /v1/messages/count_tokens takes (anthropic 2.14 MessageCountTokensParams).
ANTHROPIC_COUNT_FIELDS = {"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
                          "cache_control", "speed", "user_profile_id", "workspace_id"}


def count_tokens_refusal(body: dict, headers) -> dict | None:
    """None when Anthropic would count body's tokens, else its 400: fields of a Messages body that do not
    shape the prompt (max_tokens, stream, sampling) are extra inputs; the rest is checked as for /v1/messages."""
    extra = next((name for name in body if name not in ANTHROPIC_COUNT_FIELDS), None)
    if extra is not None:
        return _anthropic_invalid(f"{extra}: Extra inputs are not permitted")
    return anthropic_refusal({**body, "max_tokens": 1_000_000}, headers)


# --- OpenAI ----------------------------------------------------------------------------------------------

def check_openai(body: dict) -> None:
    for name in body:
        if name not in OPENAI_FIELDS:
            raise Refused(f"Unrecognized request argument supplied: {name}", name)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Refused("'messages' must be a non-empty array", "messages")
    if "max_tokens" in body and "max_completion_tokens" in body:
        raise Refused("max_tokens and max_completion_tokens cannot both be set", "max_tokens")
    if body.get("stream_options") is not None and body.get("stream") is not True:
        raise Refused("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
    _openai_reasoning_rules(body)
    tools = body.get("tools") or []
    names = [_openai_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    _openai_tool_choice(body, names)
    _openai_messages(messages)
    _openai_response_format(body)
    if body.get("top_logprobs") is not None and not body.get("logprobs"):
        raise Refused("top_logprobs requires logprobs to be true", "top_logprobs")


def _openai_reasoning_rules(body: dict) -> None:
    model = str(body.get("model") or "")
    if not REASONING_MODELS.match(model):
        if body.get("reasoning_effort") is not None:
            raise Refused("Unrecognized request argument supplied: reasoning_effort", "reasoning_effort")
        return
    if "max_tokens" in body:
        raise Refused("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                      "'max_completion_tokens' instead.", "max_tokens")
    if body.get("temperature") not in (None, 1):
        raise Refused(f"Unsupported value: 'temperature' does not support {body['temperature']} with this model. "
                      "Only the default (1) value is supported.", "temperature")
    for name in ("top_p", "stop", "logprobs", "presence_penalty", "frequency_penalty", "logit_bias"):
        if body.get(name) is not None:
            raise Refused(f"Unsupported parameter: '{name}' is not supported with this model.", name)


def _openai_tool(tool, where: str) -> str:
    if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
        raise Refused(f"Invalid value for '{where}': expected a function tool", where)
    function = tool["function"]
    if set(tool) - {"type", "function"} or set(function) - {"name", "description", "parameters", "strict"}:
        raise Refused(f"Unknown parameter in '{where}'", where)
    if not OPENAI_TOOL_NAME.match(str(function.get("name") or "")):
        raise Refused(f"Invalid '{where}.function.name': string does not match pattern", f"{where}.function.name")
    if "parameters" in function and not isinstance(function["parameters"], dict):
        raise Refused(f"Invalid '{where}.function.parameters'", f"{where}.function.parameters")
    return function["name"]


def _openai_tool_choice(body: dict, names: list[str]) -> None:
    choice = body.get("tool_choice")
    if choice is None:
        if body.get("parallel_tool_calls") is not None and not names:
            raise Refused("parallel_tool_calls is only allowed when 'tools' are specified", "parallel_tool_calls")
        return
    if not names:
        raise Refused("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                      "tool_choice")
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise Refused(f"Invalid value: '{choice}'.", "tool_choice")
        return
    name = ((choice or {}).get("function") or {}).get("name")
    if choice.get("type") != "function" or name not in names:
        raise Refused(f"Invalid value for 'tool_choice': no function named '{name}' was specified in 'tools'",
                      "tool_choice")


def _openai_messages(messages: list) -> None:
    pending: set[str] = set()
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                raise Refused(f"Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                              f"message with 'tool_calls'. ({where})", f"{where}.role")
            pending.discard(call_id)
            _openai_text_content(message.get("content"), where)
            continue
        if pending:
            raise Refused("An assistant message with 'tool_calls' must be followed by tool messages responding to "
                          f"each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                          f"{', '.join(sorted(pending))}", f"{where}.role")
        if role in ("system", "developer"):
            _openai_text_content(message.get("content"), where)
        elif role == "user":
            _openai_user_content(message.get("content"), where)
        elif role == "assistant":
            pending = _openai_assistant(message, where)
        else:
            raise Refused(f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'tool', "
                          "'function', and 'developer'.", f"{where}.role")
    if pending:
        raise Refused("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                      f"'tool_call_id'. The following tool_call_ids did not have response messages: "
                      f"{', '.join(sorted(pending))}", "messages")


def _openai_text_content(content, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise Refused(f"Invalid '{where}.content': expected a string or an array of text parts", f"{where}.content")
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text" or set(part) != {"type", "text"}:
            raise Refused(f"Invalid '{where}.content': only text parts are allowed here", f"{where}.content")


def _openai_user_content(content, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise Refused(f"Invalid '{where}.content'", f"{where}.content")
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and set(part) == {"type", "text"}:
            continue
        if kind == "image_url" and set(part) == {"type", "image_url"}:
            image = part["image_url"]
            url = image.get("url", "") if isinstance(image, dict) else ""
            if set(image) - {"url", "detail"} or not (url.startswith("https://") or DATA_URL.match(url)):
                raise Refused(f"Invalid '{where}.content[{i}].image_url.url': expected an https URL or a base64 "
                              "data URL of an image", f"{where}.content[{i}].image_url.url")
            continue
        if kind in ("input_audio", "file"):
            continue
        raise Refused(f"Invalid '{where}.content[{i}]'", f"{where}.content[{i}]")


def _openai_assistant(message: dict, where: str) -> set[str]:
    if set(message) - {"role", "content", "refusal", "tool_calls", "name", "audio", "function_call", "annotations"}:
        raise Refused(f"Unknown parameter in '{where}'", where)
    calls = message.get("tool_calls") or []
    if message.get("content") is None and not calls and message.get("refusal") is None:
        raise Refused(f"Invalid '{where}.content': content is required unless tool_calls are given",
                      f"{where}.content")
    ids = set()
    for call in calls:
        function = call.get("function") or {}
        if call.get("type") != "function" or not call.get("id") or not isinstance(function.get("arguments"), str):
            raise Refused(f"Invalid '{where}.tool_calls'", f"{where}.tool_calls")
        ids.add(call["id"])
    return ids


def _openai_response_format(body: dict) -> None:
    form = body.get("response_format")
    if form is None:
        return
    kind = form.get("type")
    if kind == "json_object":
        texts = " ".join(str(m.get("content")) for m in body["messages"])
        if "json" not in texts.lower():
            raise Refused("'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                          "'json_object'.", "messages")
    elif kind == "json_schema":
        spec = form.get("json_schema") or {}
        if not spec.get("name") or not isinstance(spec.get("schema", {}), dict):
            raise Refused("Missing required parameter: 'response_format.json_schema.name'.",
                          "response_format.json_schema.name")
    elif kind != "text":
        raise Refused(f"Invalid value: '{kind}'.", "response_format.type")


# --- Anthropic -------------------------------------------------------------------------------------------

def check_anthropic(body: dict) -> None:
    for name in body:
        if name not in ANTHROPIC_FIELDS:
            raise Refused(f"{name}: Extra inputs are not permitted")
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise Refused(f"{name}: Field required")
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        raise Refused("temperature: Input should be less than or equal to 1")
    if set(body.get("metadata") or {}) - {"user_id"}:
        raise Refused("metadata: Extra inputs are not permitted")
    for sequence in body.get("stop_sequences") or []:
        if not str(sequence).strip():
            raise Refused("stop_sequences: each stop sequence must contain non-whitespace")
    system = body.get("system")
    if isinstance(system, list):
        for i, block in enumerate(system):
            _anthropic_block(block, f"system.{i}", allowed=("text",))
    tools = [_anthropic_tool(tool, f"tools.{i}") for i, tool in enumerate(body.get("tools") or [])]
    _anthropic_tool_choice(body.get("tool_choice"), tools)
    _anthropic_thinking(body)
    _anthropic_output_config(body.get("output_config"))
    _anthropic_messages(body["messages"])


def _anthropic_tool(tool, where: str) -> str:
    if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
        raise Refused(f"{where}: only client tools are accepted here")
    allowed = {"name", "input_schema", "description", "cache_control", "strict", "type", "input_examples",
               "defer_loading", "eager_input_streaming", "allowed_callers"}
    if set(tool) - allowed:
        raise Refused(f"{where}.{sorted(set(tool) - allowed)[0]}: Extra inputs are not permitted")
    if not ANTHROPIC_TOOL_NAME.match(str(tool.get("name") or "")):
        raise Refused(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
    schema = tool.get("input_schema")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise Refused(f"{where}.input_schema.type: Input should be 'object'")
    return tool["name"]


def _anthropic_tool_choice(choice, tools: list[str]) -> None:
    if choice is None:
        return
    kind = choice.get("type")
    allowed = {"type", "disable_parallel_tool_use"} | ({"name"} if kind == "tool" else set())
    if kind not in ("auto", "any", "tool", "none") or set(choice) - allowed:
        raise Refused("tool_choice: Input tag does not match any of the expected tags")
    if kind != "none" and not tools:
        raise Refused("tool_choice may only be specified while providing tools.")
    if kind == "tool" and choice.get("name") not in tools:
        raise Refused(f"tool_choice.name: Tool '{choice.get('name')}' not found in tools")


def _anthropic_thinking(body: dict) -> None:
    thinking = body.get("thinking")
    if thinking is None or thinking.get("type") == "disabled":
        return
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise Refused("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if budget >= body.get("max_tokens", 0):
            raise Refused("`max_tokens` must be greater than `thinking.budget_tokens`.")
    elif thinking.get("type") != "adaptive":
        raise Refused("thinking: Input tag does not match any of the expected tags")
    if body.get("temperature") not in (None, 1) or body.get("top_k") is not None:
        raise Refused("`temperature` may only be set to 1 when thinking is enabled; top_k is not allowed.")
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        raise Refused("Thinking may not be enabled when tool_choice forces tool use.")


def _anthropic_output_config(config) -> None:
    if config is None:
        return
    if set(config) - {"effort", "format"}:
        raise Refused("output_config: Extra inputs are not permitted")
    form = config.get("format")
    if form is not None and (form.get("type") != "json_schema" or not isinstance(form.get("schema"), dict)
                             or set(form) != {"type", "schema"}):
        raise Refused("output_config.format: expected {\"type\": \"json_schema\", \"schema\": {...}}")


def _anthropic_messages(messages) -> None:
    if not isinstance(messages, list) or not messages:
        raise Refused("messages: at least one message is required")
    if messages[0].get("role") != "user":
        raise Refused("messages: first message must use the \"user\" role")
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        role = message.get("role")
        if role not in ("user", "assistant") or set(message) != {"role", "content"}:
            raise Refused(f"{where}: Input should be a user or assistant message with content")
        blocks = _anthropic_blocks(message["content"], f"{where}.content")
        kinds = [block.get("type") for block in blocks]
        results = [block["tool_use_id"] for block in blocks if block.get("type") == "tool_result"]
        if open_calls:
            if role != "user" or set(results) != open_calls:
                raise Refused(f"{where}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                              f"{', '.join(sorted(open_calls - set(results)))}. Each `tool_use` block must have a "
                              "corresponding `tool_result` block in the next message.")
            if kinds[:len(results)] != ["tool_result"] * len(results):
                raise Refused(f"{where}: tool_result blocks must come first in the user message")
        elif results:
            raise Refused(f"{where}.content: unexpected `tool_use_id` found in `tool_result` blocks: {results[0]}. "
                          "Each `tool_result` block must have a corresponding `tool_use` block in the previous "
                          "message.")
        if role == "user" and ("tool_use" in kinds or "thinking" in kinds):
            raise Refused(f"{where}: tool_use and thinking blocks belong in assistant messages")
        if role == "assistant" and "tool_result" in kinds:
            raise Refused(f"{where}: tool_result blocks belong in user messages")
        open_calls = {b["id"] for b in blocks if b.get("type") == "tool_use"} if role == "assistant" else set()
    last = messages[-1]
    if last["role"] == "assistant":
        blocks = _anthropic_blocks(last["content"], "messages")
        if blocks and blocks[-1].get("type") == "text" and blocks[-1]["text"] != blocks[-1]["text"].rstrip():
            raise Refused("messages: final assistant content cannot end with trailing whitespace")


def _anthropic_blocks(content, where: str) -> list[dict]:
    if isinstance(content, str):
        if not content.strip():
            raise Refused(f"{where}: text content blocks must contain non-whitespace text")
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        raise Refused(f"{where}: Input should be a valid string or a non-empty list")
    for i, block in enumerate(content):
        _anthropic_block(block, f"{where}.{i}")
    return content


def _anthropic_block(block, where: str, allowed: tuple[str, ...] | None = None) -> None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in ANTHROPIC_BLOCKS or (allowed and kind not in allowed):
        raise Refused(f"{where}: Input tag '{kind}' does not match any of the expected tags")
    required, optional = ANTHROPIC_BLOCKS[kind]
    if required - set(block) or set(block) - required - optional:
        raise Refused(f"{where}.{kind}: fields must be exactly {sorted(required)} (+ {sorted(optional)})")
    if kind == "text" and not block["text"].strip():
        raise Refused(f"{where}: text content blocks must contain non-whitespace text")
    if kind == "image":
        _anthropic_image_source(block["source"], f"{where}.source")
    if kind == "tool_use" and not isinstance(block["input"], dict):
        raise Refused(f"{where}.input: Input should be a valid dictionary")
    if kind == "tool_result" and isinstance(block.get("content"), list):
        for i, inner in enumerate(block["content"]):
            _anthropic_block(inner, f"{where}.content.{i}", allowed=("text", "image", "document"))
    cache = block.get("cache_control")
    if cache is not None and (cache.get("type") != "ephemeral" or set(cache) - {"type", "ttl"}):
        raise Refused(f"{where}.cache_control: Input tag does not match 'ephemeral'")


def _anthropic_image_source(source, where: str) -> None:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        if set(source) != {"type", "media_type", "data"} or source["media_type"] not in IMAGE_TYPES:
            raise Refused(f"{where}.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or "
                          "'image/webp'")
        if not source["data"] or not re.match(r"^[A-Za-z0-9+/]+=*$", source["data"]):
            raise Refused(f"{where}.base64.data: invalid base64 data")
    elif kind == "url":
        if set(source) != {"type", "url"} or not str(source["url"]).startswith("https://"):
            raise Refused(f"{where}.url.url: must be an https URL")
    elif kind != "file":
        raise Refused(f"{where}: Input tag '{kind}' does not match any of the expected tags")
