"""Who is calling: the client address as seen after trusted proxies (ProxyFix sets remote_addr)."""

from flask import request


def client_ip() -> str:
    """The caller's IP; ProxyFix has already applied TRUSTED_PROXY_COUNT to remote_addr."""
    return request.remote_addr or "unknown"
