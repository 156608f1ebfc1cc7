"""Per-request plumbing: request ids, response headers common to every answer."""

from __future__ import annotations

import re
import time
import uuid

from flask import Flask

from gateway.context import request_globals, this_request

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    # Browsers only honour it over HTTPS (nginx terminates TLS in front); other origins may not embed answers.
    "Strict-Transport-Security": "max-age=31536000",
    "Cross-Origin-Resource-Policy": "same-origin",
}


# (name, lower-cased name, value): one scan of a response's headers decides which are missing.
_SECURITY_HEADER_ITEMS = tuple((name, name.lower(), value) for name, value in SECURITY_HEADERS.items())

# The offline pages (/docs, /console): their own scripts, styles and images only, nothing inline, never framed.
OWN_ASSETS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def allow_own_assets(response):
    """after_request of a blueprint serving a page: its own assets only (the API keeps 'none')."""
    response.headers["Content-Security-Policy"] = OWN_ASSETS_CSP
    return response


def new_request_id() -> str:
    """A fresh, unguessable request id."""
    return f"req_{uuid.uuid4().hex}"


def register_request_context(app: Flask) -> None:
    """Give every request an id (the caller's, if well-formed) and echo it with security headers."""

    @app.before_request
    def _assign_request_id():
        here = request_globals()
        here.started_at = time.perf_counter()
        supplied = this_request().headers.get("X-Request-ID", "")
        # fullmatch: `$` alone would let a trailing newline through into a response header.
        here.request_id = supplied if REQUEST_ID_PATTERN.fullmatch(supplied) else new_request_id()

    @app.after_request
    def _common_headers(response):
        # Headers.setdefault and item assignment each scan every header (lower-casing both sides); the
        # names present are read once instead, and absent headers appended, as those calls would do.
        headers = response.headers
        present = {name.lower() for name in headers.keys()}
        request_id = request_globals().get("request_id") or new_request_id()
        if "x-request-id" in present:
            headers["X-Request-ID"] = request_id
        else:
            headers.add("X-Request-ID", request_id)
        for name, lowered, value in _SECURITY_HEADER_ITEMS:
            if lowered not in present:
                headers.add(name, value)
        return response
