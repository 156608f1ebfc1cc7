"""Who is calling: the client address as seen after trusted proxies (ProxyFix sets remote_addr)."""

from flask import request


def client_ip() -> str:
    """The caller's IP; ProxyFix has already applied TRUSTED_PROXY_COUNT to remote_addr."""
    # The request itself, not its proxy: read on every request (gateway/current.py says why).
    return request._get_current_object().remote_addr or "unknown"
