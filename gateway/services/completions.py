"""The request pipeline, written once for every endpoint that completes.

resolve model -> check with the provider -> reserve quota -> call upstream (no DB connection held)
-> settle. Endpoints differ only in how they parse the body and format the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from gateway import metrics
from gateway.errors import InvalidRequest
from gateway.providers.base import ChatChunk, ChatRequest, ProviderError, Usage
from gateway.services.auth import Caller
from gateway.services.catalog import ModelEntry, price_snapshot
from gateway.services.completion_io import (Completion, CompletionInput, RequestMeta, StreamDelta, StreamEnd,
                                           StreamFailure)
from gateway.services.pricing import cost_nanousd, estimate_prompt_tokens
from gateway.services.prompt_record import prompt_record
from gateway.services.quotas import ReservationFacts, Reservation, reserve
from gateway.services.route_record import record_route
from gateway.services.route import Route
from gateway.services.settlement import Outcome, settle
from gateway.state import GatewayState

log = logging.getLogger("gateway.completions")


@dataclass
class Prepared:
    """A request that passed every check and holds its quota reservation."""

    route: Route
    reservation: Reservation
    prompt_estimate: int
    meta: RequestMeta

    @property
    def entry(self) -> ModelEntry:
        """The model tried last, as served by its upstream: the one that answered, once one has."""
        return self.route.entry


class CompletionPipeline:
    """Runs completions for one app's catalog, providers and settings."""

    def __init__(self, state: GatewayState) -> None:
        self._state = state
        self._settings = state.settings

    def complete(self, caller: Caller, given: CompletionInput, meta: RequestMeta) -> Completion:
        """Run to the end; quota and upstream errors are raised after the audit row is settled."""
        prepared = self._prepare(caller, given, meta, stream=False)
        upstream_started = time.perf_counter()
        try:
            result = self._state.router.complete(prepared.route)
        except ProviderError as error:
            self._fail(prepared, error, upstream_started)
            raise
        upstream_ms = _ms_since(upstream_started)
        cost = cost_nanousd(result.usage, prepared.entry)
        latency = _ms_since(meta.started_at)
        _finish(prepared, _charged("ok", 200, result.usage, cost, latency, upstream_ms))
        return Completion(meta.request_id, prepared.entry, result, cost, latency, upstream_ms)

    def stream(self, caller: Caller, given: CompletionInput, meta: RequestMeta) -> tuple[ModelEntry, Iterator]:
        """Open the upstream stream and wait for its first chunk, so early failures are plain HTTP errors.

        Returns the model entry and an iterator of StreamDelta ... StreamEnd | StreamFailure; closing
        the iterator early (client gone) settles the request as client_disconnected.
        """
        prepared = self._prepare(caller, given, meta, stream=True)
        upstream_started = time.perf_counter()
        try:
            first, chunks = self._state.router.open_stream(prepared.route)
        except ProviderError as error:
            self._fail(prepared, error, upstream_started)
            raise
        return prepared.entry, self._relay(prepared, first, chunks, upstream_started)

    def _relay(self, prepared: Prepared, first: ChatChunk, chunks: Iterator[ChatChunk],
               upstream_started: float) -> Iterator:
        tally = _StreamTally(prepared.prompt_estimate)
        outcome = None
        metrics.stream_opened()
        try:
            chunk = first
            while True:
                tally.add(chunk)
                if chunk.delta:
                    yield StreamDelta(chunk.delta)
                if chunk.finish_reason is not None or chunk.usage is not None:
                    tally.note_end(chunk)
                chunk = next(chunks, None)
                if chunk is None:
                    break
            usage = tally.usage()
            cost = cost_nanousd(usage, prepared.entry)
            latency = _ms_since(prepared.meta.started_at)
            outcome = _charged("ok", 200, usage, cost, latency, _ms_since(upstream_started))
            yield StreamEnd(tally.finish_reason or "stop", usage, cost, latency)
        except ProviderError as error:
            outcome = self._midstream_failure(prepared, tally, error, upstream_started)
            yield StreamFailure(error)
        except GeneratorExit:
            outcome = self._disconnected(prepared, tally, upstream_started)
            raise
        finally:
            chunks.close()
            metrics.stream_closed()
            if outcome is None:
                outcome = self._disconnected(prepared, tally, upstream_started)
            _finish(prepared, outcome, quietly=True)

    def _prepare(self, caller: Caller, given: CompletionInput, meta: RequestMeta, stream: bool) -> Prepared:
        # Routing (issue #14): the candidates, in trial order; the reservation covers the costliest.
        route = self._state.router.plan(self._resolve(given), lambda entry: self._chat_request(entry, given),
                                        given.provider)
        prompt_estimate = estimate_prompt_tokens(route.request.messages)
        completion_tokens, cost = route.worst_case(prompt_estimate)
        facts = ReservationFacts(
            request_id=meta.request_id, user_id=caller.user_id, key_id=caller.key_id,
            endpoint=meta.endpoint, provider=route.entry.provider, model=route.entry.id, stream=stream,
            client_ip=meta.client_ip, prompt_tokens=prompt_estimate, completion_tokens=completion_tokens,
            cost_nanousd=cost, price_snapshot=price_snapshot(route.entry),
            prompt_record=prompt_record(route.request.messages, self._settings.prompt_logging),
        )
        reservation = reserve(facts, caller.limits)
        return Prepared(route, reservation, prompt_estimate, meta)

    def _resolve(self, given: CompletionInput) -> ModelEntry:
        name = given.model or self._settings.default_model
        entry = self._state.catalog.resolve(name)
        if entry is None:
            raise InvalidRequest(f"Unknown model {name!r}. Available models: "
                                 f"{self._state.router.available_text()}.", code="model_not_found", param="model")
        return entry

    def _chat_request(self, entry: ModelEntry, given: CompletionInput) -> ChatRequest:
        max_tokens = given.max_tokens or min(self._settings.default_max_tokens, entry.max_output_tokens)
        if max_tokens > entry.max_output_tokens:
            raise InvalidRequest(f"max_tokens {max_tokens} is above {entry.id}'s maximum output of "
                                 f"{entry.max_output_tokens} tokens.", code="max_tokens_too_large",
                                 param="max_tokens")
        return ChatRequest(model=entry.upstream_id, messages=given.messages, max_tokens=max_tokens,
                           temperature=given.temperature, top_p=given.top_p, stop=given.stop,
                           supports_sampling=entry.supports_sampling, supports_stop=entry.supports_stop)

    def _fail(self, prepared: Prepared, error: ProviderError, upstream_started: float) -> None:
        """An upstream failure before any output: give the whole reservation back."""
        _finish(prepared, Outcome(
            status="upstream_error", http_status=error.http_status, charged=False, error_type=error.error_type,
            latency_ms=_ms_since(prepared.meta.started_at), upstream_latency_ms=_ms_since(upstream_started)))
        log.warning("upstream failed", extra={"request_id": prepared.meta.request_id,
                                              "error_type": error.error_type,
                                              "upstream_status": error.upstream_status})

    def _midstream_failure(self, prepared, tally, error, upstream_started) -> Outcome:
        """Bill what was delivered before the upstream broke; release if nothing was."""
        if not tally.delivered_any:
            return Outcome(status="upstream_error", http_status=error.http_status, charged=False,
                           error_type=error.error_type, latency_ms=_ms_since(prepared.meta.started_at),
                           upstream_latency_ms=_ms_since(upstream_started))
        usage = tally.usage()
        return _charged("upstream_error", error.http_status, usage, cost_nanousd(usage, prepared.entry),
                        _ms_since(prepared.meta.started_at), _ms_since(upstream_started), error.error_type)

    def _disconnected(self, prepared, tally, upstream_started) -> Outcome:
        """The client went away: bill the prompt and the output delivered so far."""
        usage = tally.usage()
        return _charged("client_disconnected", 499, usage, cost_nanousd(usage, prepared.entry),
                        _ms_since(prepared.meta.started_at), _ms_since(upstream_started), "client_disconnected")


class _StreamTally:
    """Counts what a stream delivered, to bill exactly (upstream usage) or by estimate (cut short)."""

    def __init__(self, prompt_estimate: int) -> None:
        self.prompt_estimate = prompt_estimate
        self.delivered: list[str] = []
        self.finish_reason: str | None = None
        self.reported: Usage | None = None

    @property
    def delivered_any(self) -> bool:
        return bool(self.delivered)

    def add(self, chunk: ChatChunk) -> None:
        if chunk.delta:
            self.delivered.append(chunk.delta)

    def note_end(self, chunk: ChatChunk) -> None:
        """Keep the finish reason and usage a closing chunk reports."""
        self.finish_reason = chunk.finish_reason or self.finish_reason
        self.reported = chunk.usage or self.reported

    def usage(self) -> Usage:
        if self.reported is not None:
            return self.reported
        text = "".join(self.delivered)
        return Usage(prompt_tokens=self.prompt_estimate, completion_tokens=estimate_text_tokens(text))


def estimate_text_tokens(text: str) -> int:
    """Completion tokens of delivered text when the upstream never said (about 4 bytes a token)."""
    size = len(text.encode())
    return (size + 3) // 4 if size else 0


def _charged(status, http_status, usage: Usage, cost, latency, upstream_ms, error_type=None) -> Outcome:
    return Outcome(status=status, http_status=http_status, charged=True, prompt_tokens=usage.prompt_tokens,
                   completion_tokens=usage.completion_tokens, cached_tokens=usage.cached_tokens,
                   cost_nanousd=cost, error_type=error_type, latency_ms=latency, upstream_latency_ms=upstream_ms)


def _finish(prepared: Prepared, outcome: Outcome, quietly: bool = False) -> None:
    """Settle the audit row and report it; a closing stream settles quietly (settle() logs failures)."""
    record_route(prepared.reservation.record_id, prepared.route)
    try:
        settle(prepared.reservation, outcome)
    except Exception:  # logged by settle(); the sweeper releases the reservation
        if not quietly:
            raise
    metrics.completion_settled(prepared.entry.provider, prepared.entry.id, outcome.status,
                               outcome.prompt_tokens, outcome.completion_tokens,
                               outcome.cost_nanousd if outcome.charged else 0, outcome.upstream_latency_ms)


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
