"""Who is calling: the client address as seen after trusted proxies (ProxyFix sets remote_addr)."""

from gateway.context import this_request


def client_ip() -> str:
    """The caller's IP; ProxyFix has already applied TRUSTED_PROXY_COUNT to remote_addr."""
    return this_request().remote_addr or "unknown"
