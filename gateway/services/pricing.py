"""Exact money for tokens: integer nano-USD (1 USD = 10^9) computed with Decimal, rounded once."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

from gateway.money import NANOUSD_PER_USD
from gateway.providers.base import Message, Usage
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


def estimate_prompt_tokens(messages: tuple[Message, ...] | list[Message]) -> int:
    """A deliberate over-estimate of prompt tokens for quota reservations: ceil(utf-8 bytes / 3) + 4 per
    message, + 3 for the reply primer (real tokenizers average ~4 bytes a token on English text)."""
    return sum(-(-len(m.content.encode("utf-8")) // 3) + 4 for m in messages) + 3


def reservation_cost_nanousd(prompt_estimate: int, max_tokens: int, entry: ModelEntry) -> int:
    """The most a request may cost: the estimated prompt at the full input price plus max_tokens of output."""
    with localcontext() as context:
        context.prec = PRECISION
        return _to_nanousd(prompt_estimate * entry.input_price + max_tokens * entry.output_price)


def _to_nanousd(usd_per_1m_tokens: Decimal) -> int:
    """Sum of tokens x (USD per 1M tokens) -> nano-USD, rounded half-up to an integer."""
    return int((usd_per_1m_tokens * NANO_PER_TOKEN_AT_ONE_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))
