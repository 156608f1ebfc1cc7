"""What the fake upstream answers beyond text: tool calls (forced or asked for, parallel), n choices,
logprobs, refusals, structured output generated from the requested schema, Claude thinking with its
signature, stop sequences - as whole responses and as streams, in each provider's own framing.

Used by tests/fake_upstream.py through DIALECTS and refusal(); the rules for refusing live in
tests/fake_validation.py.
"""

from __future__ import annotations

import json

from tests.fake_upstream import (ANTHROPIC_PATH, OPENAI_PATH, AnthropicDialect, Frame, OpenAIDialect, _data_frame,
                                 _event)
from tests.fake_validation import anthropic_refusal, count_tokens_refusal, openai_refusal

DEFAULT_REPLY = "Hello from the fake upstream."
COUNT_TOKENS_PATH = ANTHROPIC_PATH + "/count_tokens"
SIGNATURE = "sig-fake-EqQBCkgIARABGAIiQ"


def refusal(path: str, body: dict, headers) -> dict | None:
    """The 400 body the real API would answer for this request, or None."""
    if path == OPENAI_PATH:
        return openai_refusal(body)
    if path == ANTHROPIC_PATH:
        return anthropic_refusal(body, headers)
    if path == COUNT_TOKENS_PATH:
        return count_tokens_refusal(body, headers)
    return None


def example(schema) -> object:
    """A small instance of a JSON schema (objects with every property, first enum value, ...)."""
    if not isinstance(schema, dict):
        return "x"
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema or "oneOf" in schema:
        return example((schema.get("anyOf") or schema.get("oneOf"))[0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {name: example(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [example(schema.get("items") or {})]
    return {"integer": 7, "number": 1.5, "boolean": True, "null": None}.get(kind, "Paris")


def split(text: str) -> list[str]:
    """A JSON argument string in two fragments, as providers stream them."""
    cut = max(1, len(text) // 2)
    return [text[:cut], text[cut:]] if len(text) > 1 else [text]


class _Plan:
    """What one answer holds: thinking, text, tool calls, and why it stopped."""

    def __init__(self, behavior, body: dict, tools: dict, forced: str | None, schema) -> None:
        self.thinking = behavior.thinking
        calls = behavior.tool_calls
        if calls is None and forced is not None:
            calls = [(forced, example(tools.get(forced)))]
        self.calls = [(name, args if isinstance(args, str) else json.dumps(args)) for name, args in calls or ()]
        plain = behavior.reply == DEFAULT_REPLY and behavior.chunks is None
        generated = schema is not None and plain
        text = json.dumps(example(schema)) if generated else behavior.text()
        self.text = "" if self.calls and plain and not generated else text
        self.pieces = (split(self.text) if generated else behavior.pieces()) if self.text else []
        self.stop_sequence = behavior.stop_sequence


class RichOpenAIDialect(OpenAIDialect):
    """Chat Completions answers with tool_calls, n choices, logprobs, refusal and json output."""

    def __init__(self, behavior, body: dict, number: int) -> None:
        super().__init__(behavior, body, number)
        tools = {t["function"]["name"]: t["function"].get("parameters") for t in body.get("tools") or []
                 if isinstance(t, dict) and isinstance(t.get("function"), dict)}
        choice = body.get("tool_choice")
        forced = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else (
            next(iter(tools), None) if choice == "required" else None)
        form = body.get("response_format") or {}
        schema = ((form.get("json_schema") or {}).get("schema") or {"type": "object"}
                  if form.get("type") in ("json_schema", "json_object") else None)
        self.plan = _Plan(behavior, body, tools, forced, schema)
        self.n = body.get("n") or 1

    def _finish(self) -> str:
        return self.behavior.finish_reason or ("tool_calls" if self.plan.calls else "stop")

    def _calls(self, choice: int) -> list[dict]:
        return [{"id": f"call_fake{choice}_{i}", "type": "function", "function": {"name": name, "arguments": args}}
                for i, (name, args) in enumerate(self.plan.calls)]

    def _logprobs(self, text: str):
        if not self.body.get("logprobs"):
            return None
        top = [{"token": text[:3], "logprob": -0.5, "bytes": list(text[:3].encode())}] * (
            self.body.get("top_logprobs") or 0)
        return {"content": [{"token": text, "logprob": -0.25, "bytes": list(text.encode()), "top_logprobs": top}],
                "refusal": None}

    def response(self) -> dict:
        body = super().response()
        plan = self.plan
        choices = []
        for index in range(self.n):
            message = {"role": "assistant", "content": plan.text or None, "refusal": self.behavior.refusal,
                       "annotations": []}
            if plan.calls:
                message["tool_calls"] = self._calls(index)
            choices.append({"index": index, "message": message, "logprobs": self._logprobs(plan.text),
                            "finish_reason": self._finish()})
        body["choices"] = choices
        body["system_fingerprint"] = "fp_fake"
        if "usage" in body and self.n > 1:
            body["usage"]["completion_tokens"] *= self.n
            body["usage"]["total_tokens"] = body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
        return body

    def stream_frames(self) -> list[Frame]:
        if not self._rich():
            return super().stream_frames()
        frames = []
        for index in range(self.n):
            frames.append(self._choice_frame(index, {"role": "assistant", "content": None}, "head"))
            for piece in self.plan.pieces:
                frames.append(self._choice_frame(index, {"content": piece}, "content", self._logprobs(piece)))
            if self.behavior.refusal:
                frames.append(self._choice_frame(index, {"refusal": self.behavior.refusal}, "content"))
            for i, call in enumerate(self._calls(index)):
                first = {"index": i, "id": call["id"], "type": "function",
                         "function": {"name": call["function"]["name"], "arguments": ""}}
                frames.append(self._choice_frame(index, {"tool_calls": [first]}, "content"))
                for fragment in split(call["function"]["arguments"]):
                    frames.append(self._choice_frame(index, {"tool_calls": [
                        {"index": i, "function": {"arguments": fragment}}]}, "content"))
            frames.append(self._choice_frame(index, {}, "tail", finish=self._finish()))
        usage = self.usage()
        usage["completion_tokens"] *= self.n
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if (self.body.get("stream_options") or {}).get("include_usage") is True and not self.behavior.omit_usage:
            frames.append(_data_frame(self._chunk([], usage=usage), "tail"))
        return frames + [Frame(b"data: [DONE]\n\n", "tail")]

    def _rich(self) -> bool:
        b = self.behavior
        return not (b.malformed or b.error_midstream) and bool(
            self.plan.calls or self.n > 1 or self.body.get("logprobs") or b.refusal or self.body.get("response_format"))

    def _choice_frame(self, index: int, delta: dict, kind: str, logprobs=None, finish=None) -> Frame:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return _data_frame(self._chunk([choice]), kind)


class RichAnthropicDialect(AnthropicDialect):
    """Messages answers with thinking, tool_use blocks, stop sequences and structured output."""

    def __init__(self, behavior, body: dict, number: int) -> None:
        super().__init__(behavior, body, number)
        tools = {t["name"]: t.get("input_schema") for t in body.get("tools") or [] if isinstance(t, dict)}
        choice = body.get("tool_choice") or {}
        forced = choice.get("name") if choice.get("type") == "tool" else (
            next(iter(tools), None) if choice.get("type") == "any" else None)
        form = (body.get("output_config") or {}).get("format")
        self.plan = _Plan(behavior, body, tools, forced, form.get("schema") if form else None)
        if behavior.thinking is None and (body.get("thinking") or {}).get("type") in ("enabled", "adaptive"):
            self.plan.thinking = "Let me think about this."

    def _stop(self) -> str:
        if self.behavior.finish_reason:
            return self.behavior.finish_reason
        if self.plan.stop_sequence:
            return "stop_sequence"
        return "tool_use" if self.plan.calls else "end_turn"

    def _blocks(self) -> list[dict]:
        plan, blocks = self.plan, []
        if plan.thinking:
            blocks.append({"type": "thinking", "thinking": plan.thinking, "signature": SIGNATURE})
        if plan.text:
            blocks.append({"type": "text", "text": plan.text})
        for i, (name, args) in enumerate(plan.calls):
            blocks.append({"type": "tool_use", "id": f"toolu_fake{i}", "name": name, "input": json.loads(args)})
        return blocks

    def response(self) -> dict:
        body = super().response()
        body["content"] = self._blocks()
        body["stop_reason"] = self._stop()
        body["stop_sequence"] = self.plan.stop_sequence
        return body

    def stream_frames(self) -> list[Frame]:
        b = self.behavior
        if b.malformed or b.error_midstream or not (self.plan.calls or self.plan.thinking or self.plan.stop_sequence
                                                      or (self.body.get("output_config") or {}).get("format")):
            return super().stream_frames()
        head = super().stream_frames()[0]
        frames, index = [head], 0
        if self.plan.thinking:
            frames += self._block(index, {"type": "thinking", "thinking": "", "signature": ""},
                                  [{"type": "thinking_delta", "thinking": self.plan.thinking},
                                   {"type": "signature_delta", "signature": SIGNATURE}])
            index += 1
        if self.plan.text:
            frames += self._block(index, {"type": "text", "text": ""},
                                  [{"type": "text_delta", "text": piece} for piece in self.plan.pieces])
            index += 1
        for i, (name, args) in enumerate(self.plan.calls):
            frames += self._block(index, {"type": "tool_use", "id": f"toolu_fake{i}", "name": name, "input": {}},
                                  [{"type": "input_json_delta", "partial_json": fragment} for fragment in split(args)])
            index += 1
        delta = {"delta": {"stop_reason": self._stop(), "stop_sequence": self.plan.stop_sequence}}
        if not b.omit_usage:
            delta["usage"] = {"output_tokens": b.completion_count()}
        return frames + [_event("message_delta", delta, "tail"), _event("message_stop", {}, "tail")]

    @staticmethod
    def _block(index: int, start: dict, deltas: list[dict]) -> list[Frame]:
        return ([_event("content_block_start", {"index": index, "content_block": start}, "head")]
                + [_event("content_block_delta", {"index": index, "delta": d}, "content") for d in deltas]
                + [_event("content_block_stop", {"index": index}, "tail")])


class TokenCountDialect(AnthropicDialect):
    """POST /v1/messages/count_tokens: {"input_tokens"}, the prompt as the fake counts it (prompt_count)."""

    def response(self) -> dict:
        return {"input_tokens": self.behavior.prompt_count(self.body)}


DIALECTS = {OPENAI_PATH: RichOpenAIDialect, ANTHROPIC_PATH: RichAnthropicDialect,
            COUNT_TOKENS_PATH: TokenCountDialect}
