"""What the audit log keeps of a prompt, per PROMPT_LOGGING: nothing, a redacted shape, or masked text."""

from __future__ import annotations

import hashlib
import json
import re

from gateway.providers.base import Message

SECRET_PATTERNS = re.compile(
    r"(dom_[A-Za-z0-9]{6,}_[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,}"
    r"|Bearer\s+[A-Za-z0-9._\-]{8,}|AKIA[0-9A-Z]{16})")


def mask_secrets(text: str) -> str:
    """Replace anything shaped like an API key or bearer token with [REDACTED]."""
    return SECRET_PATTERNS.sub("[REDACTED]", text)


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
