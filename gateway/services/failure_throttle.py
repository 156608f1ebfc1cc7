"""Throttle of failed credential attempts, per address and per presented key id.

It is consulted only once an attempt has failed: a request with a valid credential is never refused by
it, whatever its address or key id did before. A failure inside the budget is a 401; past it, a 429
with Retry-After tells the client to stop. It guards no CPU: a wrong key costs no argon2 whether
throttled or not (services/auth.py checks unknown ids and wrong secrets without it).

Counted in the limiter's storage (Redis when shared), so the budget holds across processes. IPv6
addresses are counted per /64, the block one client usually owns.
"""

from __future__ import annotations

import ipaddress
import logging
import time

from limits import RateLimitItemPerSecond
from limits.strategies import RateLimiter

from gateway.errors import RateLimited

log = logging.getLogger("gateway.auth")
IPV6_PREFIX = 64


class FailureThrottle:
    """At most `limit` failures per `window_s` per (kind, address) and per (kind, key id); then 429."""

    def __init__(self, strategy: RateLimiter, limit: int, window_s: int, kind: str) -> None:
        self._strategy = strategy
        self._item = RateLimitItemPerSecond(limit, window_s)
        self._kind = kind

    def failed(self, ip: str, key_id: str | None = None) -> RateLimited | None:
        """Count one failed attempt; the 429 to answer instead of a 401 when a budget is spent."""
        buckets = [("address", address_bucket(ip))] + ([("key", key_id)] if key_id else [])
        spent = []
        for scope, value in buckets:
            try:
                if not self._strategy.hit(self._item, "dominion", self._kind, scope, value):
                    spent.append((scope, value))
            except Exception:  # storage down: count nothing, answer 401 (the IP limit still applies)
                log.warning("failure throttle storage unavailable", extra={"kind": self._kind})
        if not spent:
            return None
        return self._refusal(spent)

    def _refusal(self, spent: list[tuple[str, str]]) -> RateLimited:
        try:
            reset_at = max(self._strategy.get_window_stats(self._item, "dominion", self._kind, *bucket).reset_time
                           for bucket in spent)
        except Exception:
            reset_at = time.time() + self._item.get_expiry()
        retry_after = max(1, int(reset_at - time.time()))
        where = " and ".join("this address" if scope == "address" else "this key id" for scope, _ in spent)
        return RateLimited(
            f"Too many failed {self._kind} attempts for {where}; retry in {retry_after}s.",
            code=f"too_many_{self._kind}_failures", headers={"Retry-After": str(retry_after)},
            details={"limit_scope": "auth"})


def address_bucket(ip: str) -> str:
    """The address a failure is counted against: IPv4 as is, IPv6 by its /64."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
