"""Exact money for tokens: integer nano-USD (1 USD = 10^9) computed with Decimal, rounded once."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal, localcontext

from gateway.money import NANOUSD_PER_USD
from gateway.providers.base import (ChatRequest, ImagePart, NativePart, Part, RedactedThinkingPart, RefusalPart,
                                    TextPart, ThinkingPart, ToolCallPart, ToolResultPart, Usage)
from gateway.services.catalog import ModelEntry

TOKENS_PER_PRICE_UNIT = 10**6
NANO_PER_TOKEN_AT_ONE_USD = Decimal(NANOUSD_PER_USD) / TOKENS_PER_PRICE_UNIT  # $1 per 1M tokens = 1000 n$/token
PRECISION = 60
MESSAGE_OVERHEAD_TOKENS = 4
REPLY_PRIMER_TOKENS = 3
# Per-image token bound when the catalog gives none: the larger of Anthropic's (~1,600 tokens for an image
# scaled to 1.15 megapixels) and OpenAI gpt-4o-class high detail (85 + 170 x 8 tiles = 1,445).
DEFAULT_IMAGE_TOKENS_BOUND = 1600


def cost_nanousd(usage: Usage, entry: ModelEntry) -> int:
    """What usage costs at entry's prices, in whole nano-USD (half-up, rounded only at the end).

    Uncached prompt tokens (prompt - cached - cache writes, never below 0) pay the input price,
    cached tokens the cached price, cache writes the cache-write price (input when the model has
    none; one-hour writes the cache_write_1h price, 2 x input when the model has none), completion
    tokens (reasoning included) the output price.
    """
    write_price = entry.cache_write_price if entry.cache_write_price is not None else entry.input_price
    hour_price = entry.cache_write_1h_price if entry.cache_write_1h_price is not None else 2 * entry.input_price
    uncached = max(usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens, 0)
    hour_writes = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    with localcontext() as context:
        context.prec = PRECISION
        usd_per_1m = (uncached * entry.input_price + usage.cached_tokens * entry.cached_input_price
                      + (usage.cache_write_tokens - hour_writes) * write_price + hour_writes * hour_price
                      + usage.completion_tokens * entry.output_price)
        return _to_nanousd(usd_per_1m)


def estimate_prompt_tokens(request: ChatRequest, image_tokens: int = DEFAULT_IMAGE_TOKENS_BOUND) -> int:
    """A deliberate over-estimate of prompt tokens for quota reservations.

    ceil(utf-8 bytes / 3) of every text, tool call, tool result, native block and tool definition
    (serialised JSON), plus the response_format schema; image_tokens (the model's documented per-image
    maximum, from the catalog) per image; MESSAGE_OVERHEAD_TOKENS per message and per tool definition;
    REPLY_PRIMER_TOKENS once. Real tokenizers average ~4 bytes a token on English text.
    """
    texts: list[str] = []
    images = 0
    for message in request.messages:
        for part in _flat_parts(message.content):
            if isinstance(part, ImagePart):
                images += 1
            else:
                texts.append(_part_text(part))
    definitions = [json.dumps(_tool_json(tool), ensure_ascii=False) for tool in request.tools]
    if request.response_format is not None and request.response_format.schema is not None:
        definitions.append(json.dumps(request.response_format.schema, ensure_ascii=False))
    text_tokens = sum(-(-len(text.encode("utf-8")) // 3) for text in texts + definitions)
    overhead = MESSAGE_OVERHEAD_TOKENS * (len(request.messages) + len(request.tools))
    return text_tokens + overhead + images * image_tokens + REPLY_PRIMER_TOKENS


def _flat_parts(parts) -> list[Part]:
    """Parts with tool results opened up (their text and images count like any other)."""
    flat: list[Part] = []
    for part in parts:
        if isinstance(part, ToolResultPart):
            flat.append(TextPart(part.tool_call_id))
            flat.extend(part.content)
        else:
            flat.append(part)
    return flat


def _part_text(part) -> str:
    if isinstance(part, TextPart):
        return part.text
    if isinstance(part, ToolCallPart):
        return part.id + part.name + part.arguments
    if isinstance(part, ThinkingPart):
        return part.thinking + (part.signature or "")
    if isinstance(part, RedactedThinkingPart):
        return part.data
    if isinstance(part, RefusalPart):
        return part.refusal
    if isinstance(part, NativePart):
        return json.dumps(part.block, ensure_ascii=False)
    return ""


def _tool_json(tool) -> dict:
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters,
            **tool.extras}


def reservation_cost_nanousd(prompt_estimate: int, max_tokens: int, entry: ModelEntry) -> int:
    """The most a request may cost: the estimated prompt at the full input price plus max_tokens of output."""
    with localcontext() as context:
        context.prec = PRECISION
        return _to_nanousd(prompt_estimate * entry.input_price + max_tokens * entry.output_price)


def _to_nanousd(usd_per_1m_tokens: Decimal) -> int:
    """Sum of tokens x (USD per 1M tokens) -> nano-USD, rounded half-up to an integer."""
    return int((usd_per_1m_tokens * NANO_PER_TOKEN_AT_ONE_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))
