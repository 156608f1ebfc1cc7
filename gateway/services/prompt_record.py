"""What the audit log keeps of a prompt, per PROMPT_LOGGING: nothing, a redacted shape, or masked text."""

from __future__ import annotations

import hashlib
import json

from gateway.providers.base import Message
from gateway.redaction import mask_secrets


def prompt_record(messages: tuple[Message, ...], mode: str) -> dict | None:
    """off -> None; redacted -> roles, lengths and a SHA-256 (no text); full -> text with secrets masked."""
    if mode == "off":
        return None
    canonical = json.dumps([[m.role, m.content] for m in messages], ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    if mode == "redacted":
        return {"mode": "redacted", "sha256": digest,
                "messages": [{"role": m.role, "chars": len(m.content)} for m in messages]}
    return {"mode": "full", "sha256": digest,
            "messages": [{"role": m.role, "content": mask_secrets(m.content)} for m in messages]}
