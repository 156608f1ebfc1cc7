"""DominionClient: the gateway's native API (/v1/llm) as a few Python calls; the CLI is built on it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import httpx

from dominion_pm import __version__, sse
from dominion_pm.errors import ConnectionFailed, DominionError, GatewayFailure, UsageError, error_from_event, \
    error_from_reply

# Connecting is quick or never; an answer may legitimately pause for as long as the upstream thinks.
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
Message = dict  # {"role": "system" | "user" | "assistant", "content": str}


@dataclass(frozen=True)
class Delta:
    """A piece of the answer's text, as the gateway streamed it."""

    text: str


@dataclass(frozen=True)
class Done:
    """The stream's last event: what answered, why it stopped, the usage and its exact cost."""

    id: str
    provider: str | None
    model: str | None
    finish_reason: str | None
    usage: dict
    cost_usd: float
    latency_ms: int | None


class DominionClient:
    """One gateway key's view of one gateway: its quota, its models, and completions whole or streamed."""

    def __init__(self, url: str, token: str, *, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = check_url(url)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {token}",
                                           "User-Agent": f"dominion-pm/{__version__}"})

    def __enter__(self) -> DominionClient:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def quota(self) -> dict:
        """GET /v1/llm/quota: each quota's limit, used, reserved, remaining, resets_at, and the rate limit."""
        return self._json(self._send(self._http.build_request("GET", "/v1/llm/quota")))

    def models(self) -> list[dict]:
        """GET /v1/llm/models: every catalog model with availability, limits and prices."""
        return self._json(self._send(self._http.build_request("GET", "/v1/llm/models"))).get("data", [])

    def complete(self, messages: Sequence[Message], *, model: str | None = None, max_tokens: int | None = None,
                 temperature: float | None = None) -> dict:
        """One whole answer: {id, provider, model, content, finish_reason, usage, cost_usd, latency_ms}."""
        body = completion_body(messages, model, max_tokens, temperature, stream=False)
        return self._json(self._send(self._http.build_request("POST", "/v1/llm/complete", json=body)))

    def stream(self, messages: Sequence[Message], *, model: str | None = None, max_tokens: int | None = None,
               temperature: float | None = None) -> Iterator[Delta | Done]:
        """The answer as it arrives: Delta pieces, then one Done; closing the iterator hangs up."""
        body = completion_body(messages, model, max_tokens, temperature, stream=True)
        response = self._send(self._http.build_request("POST", "/v1/llm/complete", json=body), stream=True)
        try:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raise GatewayFailure(f"{self.url} did not answer with an event stream; is it a Dominion Gateway?")
            yield from _stream_events(response)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.url) from None
        finally:
            response.close()

    def _send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        try:
            response = self._http.send(request, stream=stream)
            if response.status_code >= 400:
                body = response.read()
                response.close()
                raise error_from_reply(response.status_code, body, response.headers)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.url) from None
        return response

    def _json(self, response: httpx.Response):
        try:
            return response.json()
        except ValueError:
            raise GatewayFailure(f"{self.url} answered with something that is not JSON; "
                                 "is it a Dominion Gateway?") from None


def _stream_events(response: httpx.Response) -> Iterator[Delta | Done]:
    """Native SSE (start, delta..., done | error) into Delta and Done; an early end is a failure."""
    start: dict = {}
    for event in sse.events(response.iter_lines()):
        data = _event_data(event)
        if event.name == "start":
            start = data
        elif event.name == "delta":
            yield Delta(str(data.get("content", "")))
        elif event.name == "error":
            raise error_from_event(data)
        elif event.name == "done":
            yield Done(id=data.get("id") or start.get("id"), provider=start.get("provider"),
                       model=start.get("model"), finish_reason=data.get("finish_reason"),
                       usage=data.get("usage") or {}, cost_usd=data.get("cost_usd", 0.0),
                       latency_ms=data.get("latency_ms"))
            return
    raise GatewayFailure("The gateway closed the stream before the answer was complete.",
                         request_id=start.get("id"))


def _event_data(event: sse.Event) -> dict:
    try:
        data = json.loads(event.data)
    except ValueError:
        raise GatewayFailure(f"The gateway sent an unreadable {event.name!r} event.") from None
    return data if isinstance(data, dict) else {}


def completion_body(messages: Sequence[Message], model: str | None, max_tokens: int | None,
                    temperature: float | None, *, stream: bool) -> dict:
    """The POST /v1/llm/complete body; options left as None take the gateway's defaults."""
    body = {"messages": [dict(m) for m in messages], "stream": stream}
    options = {"model": model, "max_tokens": max_tokens, "temperature": temperature}
    body.update({name: value for name, value in options.items() if value is not None})
    return body


def check_url(url: str) -> str:
    """An absolute http(s) URL without a trailing slash, or a UsageError saying what is wrong."""
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f"The gateway URL {url!r} is not an http:// or https:// URL.")
    return str(parsed).rstrip("/")


def transport_error(exc: httpx.TransportError, url: str) -> DominionError:
    """The one place a network failure becomes a client error: unreachable (6) or broken mid-way (5)."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError)):
        return ConnectionFailed(f"Cannot reach the gateway at {url}: {reason}.")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return UsageError(f"The gateway URL {url!r} is not an http:// or https:// URL.")
    if isinstance(exc, httpx.TimeoutException):
        return GatewayFailure(f"The gateway at {url} stopped answering (timed out: {reason}).")
    return GatewayFailure(f"The connection to the gateway at {url} broke: {reason}.")
