"""Exact money for tokens: integer nano-USD (1 USD = 10^9) computed with Decimal, rounded once."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

from gateway.money import NANOUSD_PER_USD
from gateway.providers.base import ChatRequest, Message, Usage
from gateway.services.catalog import ModelEntry

TOKENS_PER_PRICE_UNIT = 10**6
NANO_PER_TOKEN_AT_ONE_USD = Decimal(NANOUSD_PER_USD) / TOKENS_PER_PRICE_UNIT  # $1 per 1M tokens = 1000 n$/token
PRECISION = 60


def cost_nanousd(usage: Usage, entry: ModelEntry) -> int:
    """What usage costs at entry's prices, in whole nano-USD (half-up, rounded only at the end).

    Uncached prompt tokens (prompt - cached - cache writes, never below 0) pay the input price,
    cached tokens the cached price, cache writes the cache-write price (input when the model has
    none), completion tokens the output price.
    """
    write_price = entry.cache_write_price if entry.cache_write_price is not None else entry.input_price
    uncached = max(usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens, 0)
    with localcontext() as context:
        context.prec = PRECISION
        usd_per_1m = (uncached * entry.input_price + usage.cached_tokens * entry.cached_input_price
                      + usage.cache_write_tokens * write_price + usage.completion_tokens * entry.output_price)
        return _to_nanousd(usd_per_1m)


# The worst case an upstream may bill for a prompt. OpenAI's and Anthropic's tokenizers are byte-level
# BPEs: every token stands for at least one byte of UTF-8 text, so a text of n bytes is at most n tokens
# (long runs of single letters, emoji and rare scripts come close). Each message adds a few tokens of
# framing (OpenAI documents 3 plus 1 for the role; Anthropic's is of the same size), and the prompt
# ends with a short primer for the reply. The constants are generous on purpose: they cost a few tokens
# of headroom, and a bound that is too small lets caps overshoot.
BOUND_TOKENS_PER_BYTE = 1
MESSAGE_OVERHEAD_TOKENS = 8
REPLY_PRIMER_TOKENS = 8
# The typical-text estimate, used to bill a prompt whose real count the upstream never reported (a read
# timeout, a client gone before the usage arrived): English averages ~4 bytes a token, so bytes/3 is
# above it for ordinary text, and never above the worst case.
ESTIMATE_BYTES_PER_TOKEN = 3
ESTIMATE_MESSAGE_TOKENS = 4
ESTIMATE_PRIMER_TOKENS = 3


def prompt_token_bound(request: ChatRequest) -> int:
    """The most prompt tokens an upstream can bill for this request's text: the reservation's basis.

    One token per UTF-8 byte of each message's text, plus MESSAGE_OVERHEAD_TOKENS per message and
    REPLY_PRIMER_TOKENS once. Parts that are not text (images, tool definitions) need their own bound
    added here when the request model carries them.
    """
    text_bytes = sum(len(m.content.encode("utf-8")) for m in request.messages)
    return (text_bytes * BOUND_TOKENS_PER_BYTE + MESSAGE_OVERHEAD_TOKENS * len(request.messages)
            + REPLY_PRIMER_TOKENS)


def reserved_prompt_tokens(request: ChatRequest, entry: ModelEntry) -> int:
    """The prompt part of a reservation: the bound, but never above the model's context window (a longer
    prompt is refused by the upstream, and refusals cost nothing)."""
    bound = prompt_token_bound(request)
    return min(bound, entry.context_window) if entry.context_window > 0 else bound


def estimate_prompt_tokens(messages: tuple[Message, ...] | list[Message]) -> int:
    """Prompt tokens of ordinary text, to bill a prompt whose real count is unknown: ceil(utf-8 bytes / 3)
    + 4 per message + 3 for the reply primer (never above prompt_token_bound)."""
    return sum(-(-len(m.content.encode("utf-8")) // ESTIMATE_BYTES_PER_TOKEN) + ESTIMATE_MESSAGE_TOKENS
               for m in messages) + ESTIMATE_PRIMER_TOKENS


def reservation_cost_nanousd(prompt_tokens: int, max_tokens: int, entry: ModelEntry) -> int:
    """The most a request may cost: every prompt token at the dearest prompt price (input, cached or
    cache write), plus max_tokens of output."""
    prompt_price = max(entry.input_price, entry.cached_input_price,
                       entry.cache_write_price if entry.cache_write_price is not None else entry.input_price)
    with localcontext() as context:
        context.prec = PRECISION
        return _to_nanousd(prompt_tokens * prompt_price + max_tokens * entry.output_price)


def _to_nanousd(usd_per_1m_tokens: Decimal) -> int:
    """Sum of tokens x (USD per 1M tokens) -> nano-USD, rounded half-up to an integer."""
    return int((usd_per_1m_tokens * NANO_PER_TOKEN_AT_ONE_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))
