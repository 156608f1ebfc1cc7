"""Each deployment's recent health: consecutive failures, and a cooldown once they reach a threshold.

Kept per process: every gunicorn worker cools a deployment down on its own failures, so another worker may
still try it until it fails there too. That routes around an outage within seconds without shared state;
it is not a cluster-wide circuit breaker. After a cooldown the next request tries the deployment again
(half open): one more failure starts a new cooldown at once, a success clears the count.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from time import monotonic


@dataclass(frozen=True)
class CooldownPolicy:
    """failures in a row that start a cooldown, and its length in seconds (0 = never cool down)."""

    failures: int
    seconds: float


class DeploymentHealth:
    """Counters and cooldown of one deployment, safe to update from many threads."""

    def __init__(self, policy: CooldownPolicy) -> None:
        self._policy = policy
        self._lock = threading.Lock()
        self._in_a_row = 0
        self._cooling_until: float | None = None
        self.requests = 0
        self.failures = 0
        self.cooldowns = 0
        self.last_error: dict | None = None

    def cooling(self) -> bool:
        """Whether the deployment should be skipped right now."""
        until = self._cooling_until
        return until is not None and monotonic() < until

    def attempted(self) -> None:
        """A request is being sent to the deployment."""
        with self._lock:
            self.requests += 1

    def succeeded(self) -> None:
        """The deployment answered: the failure count starts again from zero."""
        with self._lock:
            self._in_a_row = 0

    def failed(self, error_type: str, message: str, upstream_status: int | None) -> bool:
        """The deployment failed on its side; True when this failure started a cooldown."""
        with self._lock:
            self.failures += 1
            self._in_a_row += 1
            self.last_error = {"type": error_type, "message": message, "upstream_status": upstream_status,
                               "at": _iso(time.time())}
            if self._policy.seconds <= 0 or self._in_a_row < self._policy.failures or self.cooling():
                return False
            self._cooling_until = monotonic() + self._policy.seconds
            self.cooldowns += 1
            return True

    def snapshot(self) -> dict:
        """state (ok | cooling_down), cooldown_until, failures_in_a_row, requests, failures, cooldowns, last_error."""
        with self._lock:
            remaining = (self._cooling_until - monotonic()) if self._cooling_until is not None else 0.0
            cooling = remaining > 0
            return {"state": "cooling_down" if cooling else "ok",
                    "cooldown_until": _iso(time.time() + remaining) if cooling else None,
                    "failures_in_a_row": self._in_a_row, "requests": self.requests, "failures": self.failures,
                    "cooldowns": self.cooldowns, "last_error": dict(self.last_error) if self.last_error else None}


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
