"""Exact money for tokens: integer nano-USD (1 USD = 10^9) computed with Decimal, rounded once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from gateway.money import NANOUSD_PER_USD
from gateway.providers.base import (ChatRequest, ImagePart, NativePart, Part, RedactedThinkingPart, RefusalPart,
                                    TextPart, ThinkingPart, ToolCallPart, ToolResultPart, Usage)
from gateway.services.catalog import ModelEntry

TOKENS_PER_PRICE_UNIT = 10**6
NANO_PER_TOKEN_AT_ONE_USD = Decimal(NANOUSD_PER_USD) / TOKENS_PER_PRICE_UNIT  # $1 per 1M tokens = 1000 n$/token
PRECISION = 60


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


# The worst case an upstream may bill for a prompt. OpenAI's and Anthropic's tokenizers are byte-level
# BPEs: every token stands for at least one byte of UTF-8 text, so a text of n bytes is at most n tokens
# (long runs of single letters, emoji and rare scripts come close). Each message and each tool definition
# adds a few tokens of framing (OpenAI documents 3 plus 1 for the role; Anthropic's is of the same size),
# the prompt ends with a short primer for the reply, and an image costs at most the model's documented
# per-image maximum (catalog max_image_tokens). The constants are generous on purpose: they cost a few
# tokens of headroom, and a bound that is too small lets caps overshoot.
BOUND_TOKENS_PER_BYTE = 1
MESSAGE_OVERHEAD_TOKENS = 8
REPLY_PRIMER_TOKENS = 8
# Per-image token bound when the catalog gives none: the larger of Anthropic's (~1,600 tokens for an image
# scaled to 1.15 megapixels) and OpenAI gpt-4o-class high detail (85 + 170 x 8 tiles = 1,445).
DEFAULT_IMAGE_TOKENS_BOUND = 1600
# The typical-text estimate, used to bill a prompt whose real count the upstream never reported (a read
# timeout, a client gone before the usage arrived): English averages ~4 bytes a token, so bytes/3 is
# above it for ordinary text, and never above the worst case.
ESTIMATE_BYTES_PER_TOKEN = 3
ESTIMATE_MESSAGE_TOKENS = 4
ESTIMATE_PRIMER_TOKENS = 3


def prompt_token_bound(request: ChatRequest, image_tokens: int = DEFAULT_IMAGE_TOKENS_BOUND) -> int:
    """The most prompt tokens an upstream can bill for this request: the reservation's basis.

    One token per UTF-8 byte of every text, tool call, tool result, native block, tool definition and
    response schema; image_tokens per image; MESSAGE_OVERHEAD_TOKENS per message and per tool definition;
    REPLY_PRIMER_TOKENS once.
    """
    shape = _prompt_shape(request)
    return (shape.text_bytes * BOUND_TOKENS_PER_BYTE + MESSAGE_OVERHEAD_TOKENS * shape.framed
            + shape.images * image_tokens + REPLY_PRIMER_TOKENS)


def reserved_prompt_tokens(request: ChatRequest, entry: ModelEntry) -> int:
    """The prompt part of a reservation: the bound, but never above the model's context window (a longer
    prompt is refused by the upstream, and refusals cost nothing)."""
    bound = prompt_token_bound(request, entry.max_image_tokens)
    return min(bound, entry.context_window) if entry.context_window > 0 else bound


def estimate_prompt_tokens(request: ChatRequest, image_tokens: int = DEFAULT_IMAGE_TOKENS_BOUND) -> int:
    """Prompt tokens of ordinary content, to bill a prompt whose real count is unknown: ceil(utf-8 bytes / 3)
    of each text, ESTIMATE_MESSAGE_TOKENS per message and tool definition, image_tokens per image,
    ESTIMATE_PRIMER_TOKENS once (never above prompt_token_bound)."""
    shape = _prompt_shape(request)
    text_tokens = sum(-(-size // ESTIMATE_BYTES_PER_TOKEN) for size in shape.sizes)
    return text_tokens + ESTIMATE_MESSAGE_TOKENS * shape.framed + shape.images * image_tokens + ESTIMATE_PRIMER_TOKENS


@dataclass(frozen=True)
class _PromptShape:
    """What a prompt is made of, for the bound and the estimate: text sizes in bytes, framed items, images."""

    sizes: tuple[int, ...]
    framed: int
    images: int

    @property
    def text_bytes(self) -> int:
        return sum(self.sizes)


def _prompt_shape(request: ChatRequest) -> _PromptShape:
    texts: list[str] = []
    images = 0
    for message in request.messages:
        for part in _flat_parts(message.content):
            if isinstance(part, ImagePart):
                images += 1
            else:
                texts.append(_part_text(part))
    texts += [json.dumps(_tool_json(tool), ensure_ascii=False) for tool in request.tools]
    if request.response_format is not None and request.response_format.schema is not None:
        texts.append(json.dumps(request.response_format.schema, ensure_ascii=False))
    return _PromptShape(tuple(len(text.encode("utf-8")) for text in texts),
                        len(request.messages) + len(request.tools), images)


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


def reservation_cost_nanousd(prompt_tokens: int, max_tokens: int, entry: ModelEntry) -> int:
    """The most a request may cost: every prompt token at the dearest prompt price (input, cached, or a
    cache write of either duration where the model has cache writes), plus max_tokens of output."""
    writes = () if entry.cache_write_price is None else (
        entry.cache_write_price, entry.cache_write_1h_price if entry.cache_write_1h_price is not None
        else 2 * entry.input_price)
    prompt_price = max(entry.input_price, entry.cached_input_price, *writes)
    with localcontext() as context:
        context.prec = PRECISION
        return _to_nanousd(prompt_tokens * prompt_price + max_tokens * entry.output_price)


def _to_nanousd(usd_per_1m_tokens: Decimal) -> int:
    """Sum of tokens x (USD per 1M tokens) -> nano-USD, rounded half-up to an integer."""
    return int((usd_per_1m_tokens * NANO_PER_TOKEN_AT_ONE_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))
