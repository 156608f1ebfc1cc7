"""What the HTTP adapters share: one pooled session, bounded retries, error mapping, closing streams.

A subclass says only what differs: its path, its auth headers, and its wire format.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator

import requests

from gateway.providers.base import ChatChunk, ChatRequest, ChatResult, Provider, ProviderSettings
from gateway.providers.transport import (
    Endpoint,
    RequestTemplate,
    SSEEvent,
    error_for_status,
    iter_sse,
    make_session,
    read_json,
    release,
    send_with_retries,
)


class HttpProvider(Provider):
    """A Provider that POSTs JSON to {base_url}{path} and reads JSON or SSE back."""

    path: str

    def __init__(self, settings: ProviderSettings, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._settings = settings
        self._session = session or make_session()
        self._sleep = sleep
        self._endpoint = Endpoint(
            provider=self.name,
            url=settings.base_url.rstrip("/") + self.path,
            headers={**settings.extra_headers, **self.auth_headers(settings.api_key)},
            timeout=(settings.connect_timeout_s, settings.read_timeout_s),
            max_retries=settings.max_retries,
        )
        self._template = RequestTemplate(self._session, self._endpoint)

    @abstractmethod
    def auth_headers(self, api_key: str) -> dict[str, str]:
        """Headers that carry the provider key."""

    def request_headers(self, request: ChatRequest) -> dict[str, str]:
        """Headers of this one request that the caller asked to pass on (none by default)."""
        return {}

    @abstractmethod
    def request_body(self, request: ChatRequest, stream: bool) -> dict:
        """The wire JSON for a request."""

    @abstractmethod
    def parse_result(self, body: dict, request: ChatRequest) -> ChatResult:
        """A non-streamed reply body to request -> ChatResult."""

    @abstractmethod
    def parse_events(self, events: Iterable[SSEEvent], secrets: tuple[str, ...],
                     request: ChatRequest) -> Iterator[ChatChunk]:
        """SSE events of the answer to request -> ChatChunks."""

    def complete(self, request: ChatRequest) -> ChatResult:
        """One non-streamed completion."""
        response = self._send(request, self.request_body(request, stream=False), stream=False)
        return self.parse_result(read_json(response, self.name), request)

    def stream(self, request: ChatRequest) -> Iterator[ChatChunk]:
        """Content deltas, then one final chunk with finish_reason and usage."""
        response = self._send(request, self.request_body(request, stream=True), stream=True)
        try:
            yield from self.parse_events(iter_sse(response, self.name), (self._settings.api_key,), request)
            release(response)  # read to its end: the connection serves the next call
        finally:
            response.close()

    def _send(self, request: ChatRequest, body: dict, stream: bool,
              endpoint: tuple[Endpoint, RequestTemplate] | None = None) -> requests.Response:
        """POST body to this provider's endpoint (or another of its endpoints); error statuses raise."""
        target, template = endpoint or (self._endpoint, self._template)
        response = send_with_retries(self._session, target, template, body, stream=stream,
                                     sleep=self._sleep, headers=self.request_headers(request))
        if response.status_code >= 400:
            response.close()
            raise error_for_status(self.name, response, secrets=(self._settings.api_key,))
        return response
