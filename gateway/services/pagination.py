"""Opaque keyset cursors: the last row's id, base64url-encoded, so clients cannot depend on its shape."""

from __future__ import annotations

import base64
import json

from gateway.errors import InvalidRequest

MAX_CURSOR_ID = 2**63 - 1


def encode_cursor(last_id: int) -> str:
    """The cursor that continues after the row with this id."""
    raw = json.dumps({"after": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id to continue after, or None for the first page; a cursor we did not issue is a 400."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))["after"]
    except (ValueError, TypeError, KeyError, UnicodeError):
        after = None
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_CURSOR_ID:
        raise InvalidRequest("cursor: not a cursor this API issued; pass next_cursor from the previous page.",
                             code="invalid_cursor", param="cursor")
    return after


def page(rows: list, limit: int) -> tuple[list, str | None]:
    """Split limit + 1 fetched rows into the page and the cursor of the next one (None at the end)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id)
