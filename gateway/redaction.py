"""Secret masking, one set of patterns for every place text leaves the gateway's hands (errors, audit rows)."""

from __future__ import annotations

import re

# Each pattern keeps the secret's kind visible ("sk-***") and hides the rest.
SECRET_PATTERNS = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-*.]{3,}"), "sk-***"),          # OpenAI and Anthropic keys (sk-ant-, sk-proj-)
    (re.compile(r"\bdom_[A-Za-z0-9_\-*.]{3,}"), "dom_***"),        # gateway keys
    (re.compile(r"(?i)\bbearer\s+\S+"), "Bearer ***"),
    (re.compile(r"\borg-[A-Za-z0-9]{4,}"), "org-***"),             # OpenAI organisation ids
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "AKIA***"),              # AWS access key ids
)


def mask_secrets(text: str, known: tuple[str, ...] | list[str] = ()) -> str:
    """text with every known secret and anything shaped like a key or bearer token masked."""
    for secret in known:
        if secret:
            text = text.replace(secret, "***")
    for pattern, replacement in SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text
