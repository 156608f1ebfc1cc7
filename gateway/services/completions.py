"""The request pipeline, written once for every endpoint that completes.

resolve model -> check with the provider -> reserve quota -> call upstream (no DB connection held)
-> settle. Endpoints differ only in how they parse the body and format the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from gateway import metrics
from gateway.errors import InvalidRequest
from gateway.providers.base import ChatChunk, ChatRequest, ProviderError, Usage
from gateway.services.auth import Caller
from gateway.services.catalog import ModelEntry, price_snapshot
from gateway.services.completion_io import (Completion, CompletionInput, RequestMeta, StreamDelta, StreamEnd,
                                           StreamFailure, StreamStart)
from gateway.services.pricing import cost_nanousd, estimate_prompt_tokens, reservation_cost_nanousd
from gateway.services.prompt_record import prompt_record
from gateway.services.quotas import ReservationFacts, Reservation, reserve
from gateway.services.settlement import Outcome, settle
from gateway.state import GatewayState

log = logging.getLogger("gateway.completions")
REASONING_MAX_TOKENS = 16384  # default output budget of a request that asks for reasoning without a max


@dataclass
class Prepared:
    """A request that passed every check and holds its quota reservation."""

    entry: ModelEntry
    request: ChatRequest
    reservation: Reservation
    prompt_estimate: int
    meta: RequestMeta


class CompletionPipeline:
    """Runs completions for one app's catalog, providers and settings."""

    def __init__(self, state: GatewayState) -> None:
        self._state = state
        self._settings = state.settings

    def complete(self, caller: Caller, given: CompletionInput, meta: RequestMeta) -> Completion:
        """Run to the end; quota and upstream errors are raised after the audit row is settled."""
        prepared = self._prepare(caller, given, meta, stream=False)
        provider = self._state.providers.get(prepared.entry.provider)
        upstream_started = time.perf_counter()
        try:
            result = provider.complete(prepared.request)
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
        provider = self._state.providers.get(prepared.entry.provider)
        upstream_started = time.perf_counter()
        chunks = provider.stream(prepared.request)
        try:
            first = next(chunks)
        except StopIteration:
            first = ChatChunk(finish_reason="stop")
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
            yield StreamStart(first.input_tokens if first.input_tokens is not None else prepared.prompt_estimate,
                              first.model)
            chunk = first
            while True:
                tally.add(chunk)
                if chunk.carries_output:
                    yield StreamDelta(chunk)
                if chunk.finish_reason is not None or chunk.usage is not None:
                    tally.note_end(chunk)
                chunk = next(chunks, None)
                if chunk is None:
                    break
            usage = tally.usage()
            cost = cost_nanousd(usage, prepared.entry)
            latency = _ms_since(prepared.meta.started_at)
            outcome = _charged("ok", 200, usage, cost, latency, _ms_since(upstream_started))
            end = tally.end or ChatChunk()
            yield StreamEnd(tally.finish_reason or "stop", usage, cost, latency, end.finish_reasons,
                            end.native_stop_reason, end.stop_sequence)
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
        entry = self._resolve(given)
        request = self._chat_request(entry, given)
        self._state.providers.get(entry.provider).validate(request)
        prompt_estimate = estimate_prompt_tokens(request, entry.max_image_tokens)
        completion_bound = request.max_tokens * request.n  # every choice is billed
        facts = ReservationFacts(
            request_id=meta.request_id, user_id=caller.user_id, key_id=caller.key_id,
            endpoint=meta.endpoint, provider=entry.provider, model=entry.id, stream=stream,
            client_ip=meta.client_ip, prompt_tokens=prompt_estimate, completion_tokens=completion_bound,
            cost_nanousd=reservation_cost_nanousd(prompt_estimate, completion_bound, entry),
            price_snapshot=price_snapshot(entry),
            prompt_record=prompt_record(request.messages, self._settings.prompt_logging),
        )
        reservation = reserve(facts, caller.limits)
        return Prepared(entry, request, reservation, prompt_estimate, meta)

    def _resolve(self, given: CompletionInput) -> ModelEntry:
        name = given.model or self._settings.default_model
        entry = self._state.catalog.resolve(name)
        if entry is None:
            raise InvalidRequest(f"Unknown model {name!r}. Available models: {self._available()}.",
                                 code="model_not_found", param="model")
        if given.provider not in ("auto", entry.provider):
            raise InvalidRequest(f"Model {entry.id!r} is served by {entry.provider!r}, not {given.provider!r}. "
                                 "Use provider 'auto' or the right provider.", code="provider_mismatch",
                                 param="provider")
        if not self._state.providers.available(entry.provider):
            raise InvalidRequest(f"Provider {entry.provider!r} of model {entry.id!r} is not configured on this "
                                 f"gateway. Available models: {self._available()}.",
                                 code="provider_unavailable", param="model")
        return entry

    def _available(self) -> str:
        names = [e.id for e in self._state.catalog.entries() if self._state.providers.available(e.provider)]
        return ", ".join(names) or "none (configure OPENAI_API_KEY, ANTHROPIC_API_KEY or MOCK_PROVIDER)"

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
