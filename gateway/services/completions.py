"""The request pipeline, written once for every endpoint that completes.

resolve model -> check with the provider -> reserve quota -> call upstream (no DB connection held)
-> settle. Endpoints differ only in how they parse the body and format the answer.

Every admitted request is settled exactly once (a _Ticket), whatever happens after the reservation:
an answer, an upstream failure, any other exception (settled before it propagates), or a stream the
client abandons before or after its first byte (StreamRelay.close(), which the response calls
whether or not anyone iterated it). A database failure at settlement never costs the caller the answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace

from gateway import metrics
from gateway.errors import InvalidRequest
from gateway.providers.base import ChatChunk, ChatRequest, ProviderError, Usage
from gateway.services.auth import Caller
from gateway.services.catalog import ModelEntry, price_snapshot
from gateway.services.completion_io import (Completion, CompletionInput, RequestMeta, StreamDelta, StreamEnd,
                                           StreamFailure, StreamStart)
from gateway.services.pricing import cost_nanousd, estimate_prompt_tokens
from gateway.services.prompt_record import prompt_record
from gateway.services.quotas import ReservationFacts, Reservation, reserve
from gateway.services.route import Route
from gateway.services.route_record import record_route
from gateway.services.settlement import Outcome, settle, settle_bounds
from gateway.state import GatewayState

log = logging.getLogger("gateway.completions")
REASONING_MAX_TOKENS = 16384  # default output budget of a request that asks for reasoning without a max


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

    @property
    def request(self) -> ChatRequest:
        return self.route.request


class CompletionPipeline:
    """Runs completions for one app's catalog, providers and settings."""

    def __init__(self, state: GatewayState) -> None:
        self._state = state
        self._settings = state.settings

    def complete(self, caller: Caller, given: CompletionInput, meta: RequestMeta) -> Completion:
        """Run to the end; quota and upstream errors are raised after the audit row is settled."""
        prepared = self._prepare(caller, given, meta, stream=False)
        ticket = _Ticket(self._state, prepared)
        upstream_started = time.perf_counter()
        try:
            result = self._state.router.complete(prepared.route)
            upstream_ms = _ms_since(upstream_started)
            outcome = ticket.settle(_charged("ok", 200, result.usage, "usage", prepared, upstream_ms))
        except ProviderError as error:
            ticket.settle(self._failure(prepared, error, upstream_started))
            raise
        except BaseException:
            ticket.settle(self._internal_failure(prepared, upstream_started))
            raise
        return Completion(meta.request_id, prepared.entry, result, outcome.cost_nanousd, outcome.latency_ms,
                          upstream_ms)

    def stream(self, caller: Caller, given: CompletionInput, meta: RequestMeta) -> tuple[ModelEntry, StreamRelay]:
        """Open the upstream stream and wait for its first chunk, so early failures are plain HTTP errors.

        Returns the model entry and a StreamRelay: an iterator of StreamDelta ... StreamEnd | StreamFailure
        whose close() settles the request as client_disconnected if it has not ended (also when nobody
        ever iterated it). The caller must arrange for close() to be called when the response is done.
        """
        prepared = self._prepare(caller, given, meta, stream=True)
        ticket = _Ticket(self._state, prepared)
        upstream_started = time.perf_counter()
        chunks = iter(())
        try:
            first, chunks = self._state.router.open_stream(prepared.route)
        except ProviderError as error:
            ticket.settle(self._failure(prepared, error, upstream_started))
            raise
        except BaseException:
            _close(chunks)
            ticket.settle(self._internal_failure(prepared, upstream_started))
            raise
        return prepared.entry, StreamRelay(self, ticket, first, chunks, upstream_started)

    def count_tokens(self, given: CompletionInput) -> int:
        """The prompt's input tokens as the model's upstream counts them; nothing is reserved, sent to a
        model or billed (Anthropic's counting endpoint is free)."""
        route = self._state.router.plan(self._resolve(given), lambda entry: self._chat_request(entry, given),
                                        given.provider)
        return self._state.router.count_tokens(route)

    def _prepare(self, caller: Caller, given: CompletionInput, meta: RequestMeta, stream: bool) -> Prepared:
        # The candidates (deployments, then fallbacks) in trial order; the reservation covers the worst of them.
        route = self._state.router.plan(self._resolve(given), lambda entry: self._chat_request(entry, given),
                                        given.provider)
        bound = route.worst_case(bill_failed_prompts=self._bills_failed_prompts)
        entry, request = route.entry, route.request
        facts = ReservationFacts(
            request_id=meta.request_id, user_id=caller.user_id, key_id=caller.key_id,
            endpoint=meta.endpoint, provider=entry.provider, model=entry.id, stream=stream,
            client_ip=meta.client_ip, prompt_tokens=bound.prompt_tokens, completion_tokens=bound.completion_tokens,
            cost_nanousd=bound.cost_nanousd, price_snapshot=price_snapshot(entry),
            prompt_record=prompt_record(request.messages, self._settings.prompt_logging),
        )
        prompt_estimate = min(estimate_prompt_tokens(request, entry.max_image_tokens), bound.prompt_tokens)
        reservation = reserve(facts, caller.limits)  # the last step: from here on a _Ticket must settle it
        return Prepared(route, reservation, prompt_estimate, meta)

    @property
    def _bills_failed_prompts(self) -> bool:
        return self._settings.bill_failed_upstream == "prompt"

    def _resolve(self, given: CompletionInput) -> ModelEntry:
        name = given.model or self._settings.default_model
        entry = self._state.catalog.resolve(name)
        if entry is None:
            raise InvalidRequest(f"Unknown model {name!r}. Available models: "
                                 f"{self._state.router.available_text()}.", code="model_not_found", param="model")
        return entry

    def _chat_request(self, entry: ModelEntry, given: CompletionInput) -> ChatRequest:
        """The caller's neutral request for entry's upstream: model id, max_tokens and catalog flags filled in."""
        request = given.request
        max_tokens = given.max_tokens or min(self._default_max_tokens(entry, request), entry.max_output_tokens)
        if max_tokens > entry.max_output_tokens:
            raise InvalidRequest(f"max_tokens {max_tokens} is above {entry.id}'s maximum output of "
                                 f"{entry.max_output_tokens} tokens.", code="max_tokens_too_large",
                                 param="max_tokens")
        _refuse_unsupported_sampling(entry, request)
        return replace(request, model=entry.upstream_id, max_tokens=max_tokens, reasoning=entry.reasoning,
                       supports_structured_output=entry.supports_structured_output)

    def _default_max_tokens(self, entry: ModelEntry, request: ChatRequest) -> int:
        """The model's own default (reasoning models: room to think), else DEFAULT_MAX_TOKENS; a request that
        asks for reasoning gets at least REASONING_MAX_TOKENS."""
        default = entry.default_max_tokens or self._settings.default_max_tokens
        thinking = request.thinking is not None and request.thinking.type != "disabled"
        if thinking or request.reasoning_effort not in (None, "none"):
            default = max(default, REASONING_MAX_TOKENS)
        return default

    def _failure(self, prepared: Prepared, error: ProviderError, upstream_started: float,
                 tally: _StreamTally | None = None) -> Outcome:
        """What an upstream failure costs: nothing if the upstream never had the request or refused it."""
        log.warning("upstream failed", extra={"request_id": prepared.meta.request_id,
                                              "error_type": error.error_type,
                                              "upstream_status": error.upstream_status})
        free = None if error.billable else ("refused" if error.upstream_status else "not_sent")
        return self._failed("upstream_error", error.http_status, error.error_type, free, prepared,
                            upstream_started, tally)

    def _internal_failure(self, prepared: Prepared, upstream_started: float,
                          tally: _StreamTally | None = None) -> Outcome:
        """A bug between reservation and settlement: settled before the exception propagates, and billed
        like a failure after sending (the upstream may well have answered)."""
        log.error("completion failed inside the gateway", exc_info=True,
                  extra={"request_id": prepared.meta.request_id})
        return self._failed("internal_error", 500, "internal_error", None, prepared, upstream_started, tally)

    def _failed(self, status: str, http_status: int, error_type: str, free_rule: str | None, prepared: Prepared,
                upstream_started: float, tally: _StreamTally | None) -> Outcome:
        """Output delivered is always billed with its prompt; otherwise a billable failure costs the prompt
        estimate under BILL_FAILED_UPSTREAM=prompt and nothing under none (settlement.py names the rules)."""
        delivered = tally is not None and tally.delivered_any
        bill_prompt = self._settings.bill_failed_upstream == "prompt"
        if delivered or (free_rule is None and bill_prompt):
            usage = tally.usage() if tally is not None else Usage(prompt_tokens=prepared.prompt_estimate)
            return _charged(status, http_status, usage, "failed_prompt" if bill_prompt else "failed_none",
                            prepared, _ms_since(upstream_started), error_type)
        return Outcome(status=status, http_status=http_status, charged=False, error_type=error_type,
                       latency_ms=_ms_since(prepared.meta.started_at),
                       upstream_latency_ms=_ms_since(upstream_started), billing_rule=free_rule or "failed_none")

    def _disconnected(self, prepared: Prepared, tally: _StreamTally, upstream_started: float) -> Outcome:
        """The client went away: bill the prompt and the output delivered so far."""
        return _charged("client_disconnected", 499, tally.usage(), tally.rule(), prepared,
                        _ms_since(upstream_started), "client_disconnected")


def _refuse_unsupported_sampling(entry: ModelEntry, request: ChatRequest) -> None:
    """Reasoning models take no sampling parameters or stop sequences: a 400, as OpenAI answers, never a drop."""
    refused = []
    if not entry.supports_sampling:
        if request.temperature is not None and request.temperature != 1:
            refused.append(("temperature", "Only the default (1) value is supported."))
        if request.top_p is not None:
            refused.append(("top_p", "It is not supported with this model."))
    if not entry.supports_stop and request.stop:
        refused.append(("stop", "It is not supported with this model."))
    if refused:
        name, why = refused[0]
        raise InvalidRequest(f"Unsupported parameter: {name!r} for {entry.id}. {why}",
                             code="unsupported_parameter", param=name)


class _Ticket:
    """One admitted request's claim on the ledger: heartbeated while in flight, settled exactly once."""

    def __init__(self, state: GatewayState, prepared: Prepared) -> None:
        self._live = state.live
        self._bills_failed_prompts = state.settings.bill_failed_upstream == "prompt"
        self.prepared = prepared
        self._lock = threading.Lock()
        self.settled: Outcome | None = None
        self._live.add(prepared.reservation.record_id)

    def settle(self, outcome: Outcome) -> Outcome:
        """Write the outcome (capped at the reservation) once; later calls return the first one. Never raises
        for a database failure: settle() retries, then leaves the row for the reconciler."""
        with self._lock:
            if self.settled is not None:
                return self.settled
            prepared = self.prepared
            outcome = _with_failed_attempts(outcome, prepared, self._bills_failed_prompts)
            self.settled = outcome = settle_bounds(prepared.reservation, outcome)
        record_route(prepared.reservation.record_id, prepared.route)
        try:
            settle(prepared.reservation, outcome)
        finally:
            self._live.discard(prepared.reservation.record_id)
        metrics.completion_settled(prepared.entry.provider, prepared.entry.id, outcome.status,
                                   outcome.prompt_tokens, outcome.completion_tokens,
                                   outcome.cost_nanousd if outcome.charged else 0, outcome.upstream_latency_ms)
        return outcome


class StreamRelay:
    """The events of one admitted stream: StreamDelta ... then StreamEnd or StreamFailure.

    It settles exactly once: when the upstream ends (before StreamEnd is handed out, so its cost is the
    one charged), when the upstream fails, or in close() if neither happened (the client left, before or
    after the first byte). close() is idempotent and must be called when the response is done.
    """

    def __init__(self, pipeline: CompletionPipeline, ticket: _Ticket, first: ChatChunk,
                 chunks: Iterator[ChatChunk], upstream_started: float) -> None:
        self._pipeline = pipeline
        self._ticket = ticket
        self._prepared = ticket.prepared
        self._next: ChatChunk | None = first
        self._chunks = chunks
        self._upstream_started = upstream_started
        self._tally = _StreamTally(self._prepared.prompt_estimate)
        self._events: deque = deque([StreamStart(
            first.input_tokens if first.input_tokens is not None else self._prepared.prompt_estimate, first.model)])
        self._ended = False
        self._closed = False
        metrics.stream_opened()

    def __iter__(self) -> StreamRelay:
        return self

    def __next__(self):
        while not self._events:
            if self._ended:
                raise StopIteration
            self._advance()
        return self._events.popleft()

    def _advance(self) -> None:
        """Take one upstream chunk and turn it into events (settling when the upstream ends or fails)."""
        try:
            chunk, self._next = self._next or next(self._chunks, None), None
        except ProviderError as error:
            self._end(self._pipeline._failure(self._prepared, error, self._upstream_started, self._tally))
            self._events.append(StreamFailure(error))
            return
        except BaseException:
            self._end(self._pipeline._internal_failure(self._prepared, self._upstream_started, self._tally))
            raise
        if chunk is None:
            outcome = self._end(_charged("ok", 200, self._tally.usage(), self._tally.rule(), self._prepared,
                                         _ms_since(self._upstream_started)))
            end = self._tally.end or ChatChunk()
            self._events.append(StreamEnd(self._tally.finish_reason or "stop", self._tally.usage(),
                                          outcome.cost_nanousd, outcome.latency_ms, end.finish_reasons,
                                          end.native_stop_reason, end.stop_sequence))
            return
        self._tally.add(chunk)
        if chunk.carries_output:
            self._events.append(StreamDelta(chunk))
        if chunk.finish_reason is not None or chunk.usage is not None:
            self._tally.note_end(chunk)

    def _end(self, outcome: Outcome) -> Outcome:
        self._ended = True
        _close(self._chunks)
        return self._ticket.settle(outcome)

    def close(self) -> None:
        """The response is done: settle as client_disconnected unless the stream already ended."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self._ended:
                self._end(self._pipeline._disconnected(self._prepared, self._tally, self._upstream_started))
        finally:
            metrics.stream_closed()


class _StreamTally:
    """Counts what a stream delivered, to bill exactly (upstream usage) or by estimate (cut short)."""

    def __init__(self, prompt_estimate: int) -> None:
        self.prompt_estimate = prompt_estimate
        self.delivered: list[str] = []
        self.finish_reason: str | None = None
        self.reported: Usage | None = None
        self.end: ChatChunk | None = None

    @property
    def delivered_any(self) -> bool:
        return bool(self.delivered)

    def add(self, chunk: ChatChunk) -> None:
        text = chunk.delivered_text
        if text:
            self.delivered.append(text)

    def note_end(self, chunk: ChatChunk) -> None:
        """Keep the finish reason and usage a closing chunk reports."""
        self.finish_reason = chunk.finish_reason or self.finish_reason
        self.reported = chunk.usage or self.reported
        self.end = chunk

    def usage(self) -> Usage:
        if self.reported is not None:
            return self.reported
        text = "".join(self.delivered)
        return Usage(prompt_tokens=self.prompt_estimate, completion_tokens=estimate_text_tokens(text))

    def rule(self) -> str:
        """usage when the upstream reported it, estimate otherwise."""
        return "usage" if self.reported is not None else "estimate"


def estimate_text_tokens(text: str) -> int:
    """Completion tokens of delivered text when the upstream never said (about 4 bytes a token)."""
    size = len(text.encode())
    return (size + 3) // 4 if size else 0


def _charged(status, http_status, usage: Usage, rule: str, prepared: Prepared, upstream_ms: int,
             error_type=None) -> Outcome:
    return Outcome(status=status, http_status=http_status, charged=True, prompt_tokens=usage.prompt_tokens,
                   completion_tokens=usage.completion_tokens, cached_tokens=usage.cached_tokens,
                   cost_nanousd=cost_nanousd(usage, prepared.entry), error_type=error_type,
                   latency_ms=_ms_since(prepared.meta.started_at), upstream_latency_ms=upstream_ms,
                   billing_rule=rule)


def _with_failed_attempts(outcome: Outcome, prepared: Prepared, bill_failed_prompts: bool) -> Outcome:
    """Add the prompt of every earlier attempt that failed after its upstream had the request (a fallback
    followed), at that model's prices, under BILL_FAILED_UPSTREAM=prompt; the reservation covers them."""
    earlier = [a for a in prepared.route.attempts[:-1] if a.billable] if bill_failed_prompts else []
    if not earlier:
        return outcome
    prompt = Usage(prompt_tokens=prepared.prompt_estimate)
    extra_cost = sum(cost_nanousd(prompt, attempt.entry) for attempt in earlier)
    return replace(outcome, charged=True, prompt_tokens=outcome.prompt_tokens + prompt.prompt_tokens * len(earlier),
                   cost_nanousd=(outcome.cost_nanousd if outcome.charged else 0) + extra_cost,
                   billing_rule=outcome.billing_rule if outcome.charged else "failed_prompt")


def _close(chunks) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
