"""An offline, deterministic provider for local runs and demos: echoes the last user message.

Token counts are honest for its own tokenizer (count_tokens): words and punctuation marks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from gateway.providers.base import (ChatChunk, ChatRequest, ChatResult, Choice, Message, Provider, TextPart, Usage,
                                   unsupported)

NAME = "mock"
ECHO_CHARS = 200
TOKEN = re.compile(r"\w+|[^\w\s]")
WORD = re.compile(r"\S+\s*")


def count_tokens(text: str) -> int:
    """The mock's one tokenizer: each run of word characters and each punctuation mark is a token."""
    return len(TOKEN.findall(text))


def reply_text(messages: tuple[Message, ...]) -> str:
    """'Mock reply to: "<first 200 chars of the last user message>"'."""
    last_user = next((m.text for m in reversed(messages) if m.role == "user"), "")
    excerpt = " ".join(last_user.split())[:ECHO_CHARS]
    return f'Mock reply to: "{excerpt}"'


def truncate_tokens(text: str, max_tokens: int) -> tuple[str, int, bool]:
    """(text cut after max_tokens tokens, its token count, whether it was cut)."""
    tokens = list(TOKEN.finditer(text))
    if len(tokens) <= max_tokens:
        return text, len(tokens), False
    end = tokens[max_tokens - 1].end() if max_tokens > 0 else 0
    return text[:end], max_tokens, True


class MockProvider(Provider):
    """Answers every request locally; no network, no sleeping."""

    name = NAME

    def validate(self, request: ChatRequest) -> None:
        """The mock only echoes text: anything that asks for more is refused by name, never ignored."""
        asked = {"tools": request.tools, "response_format": request.response_format,
                 "reasoning_effort": request.reasoning_effort, "thinking": request.thinking,
                 "n": request.n != 1, **dict.fromkeys(request.options.fields, True)}
        for name, value in asked.items():
            if value:
                raise unsupported(name, "the mock", "it only echoes text")
        for index, message in enumerate(request.messages):
            if any(not isinstance(part, TextPart) for part in message.content):
                raise unsupported(f"messages.{index}.content", "the mock", "it takes text only")

    def complete(self, request: ChatRequest) -> ChatResult:
        """The echo reply, truncated to max_tokens (finish_reason "length" when cut)."""
        text, usage, finish_reason = self._answer(request)
        choice = Choice(content=(TextPart(text),), finish_reason=finish_reason)
        return ChatResult(id=_reply_id(request), model=request.model, choices=(choice,), usage=usage)

    def stream(self, request: ChatRequest) -> Iterator[ChatChunk]:
        """The same reply word by word (trailing spaces kept), then finish_reason and usage."""
        text, usage, finish_reason = self._answer(request)
        reply_id = _reply_id(request)
        for word in WORD.findall(text):
            yield ChatChunk(delta=word, id=reply_id)
        yield ChatChunk(finish_reason=finish_reason, finish_reasons=(finish_reason,), usage=usage, id=reply_id)

    @staticmethod
    def _answer(request: ChatRequest) -> tuple[str, Usage, str]:
        text, completion_tokens, cut = truncate_tokens(reply_text(request.messages), request.max_tokens)
        prompt_tokens = sum(count_tokens(m.text) for m in request.messages)
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        return text, usage, "length" if cut else "stop"


def _reply_id(request: ChatRequest) -> str:
    """A stable id derived from the conversation, so equal requests get equal replies."""
    digest = hashlib.sha256()
    for message in request.messages:
        digest.update(f"{message.role}\0{message.text}\0".encode())
    return f"mock-{digest.hexdigest()[:16]}"
