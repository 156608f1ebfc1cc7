"""Per-IP throttle of failed credential attempts, so wrong keys cannot burn argon2 CPU.

Counted in the limiter's storage (Redis when shared), so the budget holds across processes.
"""

from __future__ import annotations

import logging
import time

from limits import RateLimitItemPerSecond
from limits.strategies import RateLimiter

from gateway.errors import RateLimited

log = logging.getLogger("gateway.auth")


class FailureThrottle:
    """At most `limit` failures per `window_s` per (kind, ip); then 429 before any verification."""

    def __init__(self, strategy: RateLimiter, limit: int, window_s: int, kind: str) -> None:
        self._strategy = strategy
        self._item = RateLimitItemPerSecond(limit, window_s)
        self._kind = kind

    def check(self, ip: str) -> None:
        """Raise RateLimited when this IP used up its failures."""
        try:
            if self._strategy.test(self._item, "dominion", self._kind, ip):
                return  # the common case: one storage round trip; the reset time only matters when refused
            reset_at = self._strategy.get_window_stats(self._item, "dominion", self._kind, ip).reset_time
        except Exception:  # storage down: fail open for this check, the IP limit still applies
            log.warning("failure throttle storage unavailable", extra={"kind": self._kind})
            return
        retry_after = max(1, int(reset_at - time.time()))
        raise RateLimited(
            f"Too many failed {self._kind} attempts from this address; retry in {retry_after}s.",
            code=f"too_many_{self._kind}_failures", headers={"Retry-After": str(retry_after)},
            details={"limit_scope": "auth"})

    def record_failure(self, ip: str) -> None:
        """Count one failed attempt."""
        try:
            self._strategy.hit(self._item, "dominion", self._kind, ip)
        except Exception:
            log.warning("failure throttle storage unavailable", extra={"kind": self._kind})
