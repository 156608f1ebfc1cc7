"""The objects behind Flask's `request`, `g` and `current_app`, for code that reads them on every request.

Each attribute read through one of Flask's proxies (werkzeug's LocalProxy) first fails on the proxy itself:
Python 3.11 builds, formats and clears an AttributeError before the proxy's __getattr__ forwards the read,
~6,000 instructions in all. Reading the object behind the proxy instead (werkzeug's documented
`_get_current_object()`) cut a completion's instructions by 3.8% (docs/performance.md, tenth pass).
"""

from __future__ import annotations

from flask import Flask, Request, current_app, g, request
from flask.ctx import _AppCtxGlobals


def this_app() -> Flask:
    """The app of the current app context."""
    return current_app._get_current_object()


def this_request() -> Request:
    """The request being served."""
    return request._get_current_object()


def request_globals() -> _AppCtxGlobals:
    """Flask's `g` of the current app context."""
    return g._get_current_object()
