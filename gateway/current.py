"""The current Flask app's GatewayState, for the code that runs inside an app context (views, CLI)."""

from __future__ import annotations

from gateway.context import this_app
from gateway.state import GatewayState

STATE_EXTENSION = "gateway"


def gateway_state() -> GatewayState:
    """The GatewayState of the current app."""
    return this_app().extensions[STATE_EXTENSION]
