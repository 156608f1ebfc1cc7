"""What the audit log keeps of a prompt, per PROMPT_LOGGING: nothing, a redacted shape, or masked text."""

from __future__ import annotations

import hashlib
import json

from gateway.providers.base import ImagePart, Message, TextPart, ToolCallPart, ToolResultPart
from gateway.redaction import mask_secrets


def prompt_record(messages: tuple[Message, ...], mode: str) -> dict | None:
    """off -> None; redacted -> roles, lengths and a SHA-256 (no text); full -> text with secrets masked."""
    if mode == "off":
        return None
    canonical = json.dumps([[m.role, message_text(m)] for m in messages], ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    if mode == "redacted":
        return {"mode": "redacted", "sha256": digest,
                "messages": [{"role": m.role, "chars": len(message_text(m))} for m in messages]}
    return {"mode": "full", "sha256": digest,
            "messages": [{"role": m.role, "content": mask_secrets(message_text(m))} for m in messages]}


def message_text(message: Message) -> str:
    """A turn as text: its text, tool calls as name(arguments), tool results' text, images as [image]."""
    return "".join(_part_text(part) for part in message.content)


def _part_text(part) -> str:
    if isinstance(part, TextPart):
        return part.text
    if isinstance(part, ToolCallPart):
        return f"{part.name}({part.arguments})"
    if isinstance(part, ToolResultPart):
        return "".join(_part_text(p) for p in part.content)
    if isinstance(part, ImagePart):
        return "[image]"
    return ""
