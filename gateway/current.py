"""The current Flask app's GatewayState, for the code that runs inside an app context (views, CLI).

Hot paths read Flask's request, g and current_app through the object behind the proxy
(`proxy._get_current_object()`, werkzeug's documented accessor) when they read it more than once or on
every request: each attribute read through a werkzeug LocalProxy first fails on the proxy itself, and
Python 3.11 builds, formats and clears an AttributeError before the proxy's __getattr__ forwards the read
(~6,000 instructions in all; reading 36 of them this way cut a completion's instructions by 3.8%).
"""

from __future__ import annotations

from flask import current_app

from gateway.state import GatewayState

STATE_EXTENSION = "gateway"


def gateway_state() -> GatewayState:
    """The GatewayState of the current app."""
    return current_app._get_current_object().extensions[STATE_EXTENSION]
