"""dominion-pm: the Dominion Gateway's client; `DominionClient` is the Python API the CLI is built on."""

__version__ = "0.1.0"

from dominion_pm.api import Delta, DominionClient, Done  # noqa: E402 - the version comes first, api reads it
from dominion_pm.errors import (  # noqa: E402
    AuthenticationError, ConnectionFailed, DominionError, GatewayFailure, LimitExceeded, UsageError)

__all__ = ["AuthenticationError", "ConnectionFailed", "Delta", "DominionClient", "DominionError", "Done",
           "GatewayFailure", "LimitExceeded", "UsageError", "__version__"]
