"""The model catalog: which upstreams serve a model, under which upstream ids, at which prices, and which
models to fall back to.

The packaged gateway/data/models.json is the base; an operator file in the same format (JSON, or YAML
when its name ends in .yaml/.yml) overrides existing ids field by field (pricing key by key) and adds
new ids. An entry names one upstream (`upstream`, or its older spelling `provider`) or lists several
weighted `deployments`; `fallbacks` names other models tried in order when an attempt fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from importlib import resources

from gateway.config import ConfigError
from gateway.documents import DocumentError, parse_document, read_text

BUILTIN_UPSTREAMS = ("openai", "anthropic", "mock")
PACKAGED = "gateway/data/models.json"
ENTRY_FIELDS = {"id", "provider", "upstream", "upstream_id", "deployments", "fallbacks", "aliases",
                "context_window", "max_output_tokens", "pricing", "price_version", "supports_sampling",
                "supports_stop", "reasoning", "default_max_tokens", "supports_structured_output",
                "max_image_tokens"}
PRICE_FIELDS = {"input", "cached_input", "output", "cache_write", "cache_write_1h"}
DEPLOYMENT_FIELDS = {"upstream", "upstream_id", "weight"}
# Per-image token bounds by provider when an entry gives none (wire-protocols.md section 3.6): Anthropic
# ~1,600 (an image scaled to 1.15 megapixels / 750); OpenAI gpt-4o-class high detail 85 + 170 x 8 tiles.
# A named upstream (PROVIDERS_FILE) gets the larger of the two.
MAX_IMAGE_TOKENS = {"anthropic": 1600, "openai": 1445, "mock": 0}
DEFAULT_MAX_IMAGE_TOKENS = 1600
DOCUMENT_FIELDS = {"models", "about"}


class CatalogError(ConfigError):
    """A catalog file is unreadable or wrong; the message names the file and the problem in one line."""


@dataclass(frozen=True)
class Deployment:
    """One place a model runs: an upstream, the model's id there, and its share of the traffic."""

    upstream: str
    upstream_id: str
    weight: int = 1


@dataclass(frozen=True)
class ModelEntry:
    """One model as the gateway offers it; prices are USD per 1M tokens.

    provider and upstream_id are those of the first deployment (for a served completion: of the
    deployment that answered); deployments defaults to that one deployment.
    """

    id: str
    provider: str
    upstream_id: str
    aliases: tuple[str, ...]
    context_window: int
    max_output_tokens: int
    input_price: Decimal
    cached_input_price: Decimal
    output_price: Decimal
    cache_write_price: Decimal | None
    price_version: str
    supports_sampling: bool = True
    supports_stop: bool = True
    reasoning: bool = False
    default_max_tokens: int | None = None
    supports_structured_output: bool = True
    max_image_tokens: int = 1600
    cache_write_1h_price: Decimal | None = None
    deployments: tuple[Deployment, ...] = ()
    fallbacks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.deployments:
            object.__setattr__(self, "deployments", (Deployment(self.provider, self.upstream_id),))


class ModelCatalog:
    """Models by id and alias, in catalog order; fallbacks are stored as model ids."""

    def __init__(self, entries: Iterable[ModelEntry], source: str = PACKAGED,
                 upstreams: Iterable[str] = BUILTIN_UPSTREAMS) -> None:
        self._entries = tuple(entries)
        self._by_name: dict[str, ModelEntry] = {}
        for entry in self._entries:
            for name in (entry.id, *entry.aliases):
                other = self._by_name.setdefault(name, entry)
                if other is not entry:
                    raise CatalogError(f"model catalog {source}: name {name!r} is used by both {other.id!r} "
                                       f"and {entry.id!r}")
        self._entries = tuple(self._checked_routes(entry, source, tuple(upstreams)) for entry in self._entries)
        self._by_name = {name: entry for entry in self._entries for name in (entry.id, *entry.aliases)}

    @classmethod
    def load(cls, extra_file: str | None = None, upstreams: Iterable[str] = BUILTIN_UPSTREAMS) -> ModelCatalog:
        """The packaged catalog, merged with the operator's extra_file; every upstream named must exist."""
        raws = {raw["id"]: (raw, PACKAGED) for raw in _document(_packaged_text(), PACKAGED)}
        if extra_file:
            for raw in _document(_file_text(extra_file), extra_file):
                base = raws.get(raw["id"], ({}, None))[0]
                raws[raw["id"]] = (_merge(base, raw), extra_file)
        return cls([_entry(raw, source) for raw, source in raws.values()], extra_file or PACKAGED, upstreams)

    def _checked_routes(self, entry: ModelEntry, source: str, upstreams: tuple[str, ...]) -> ModelEntry:
        """entry with its fallbacks as ids, after checking its upstreams exist and its fallbacks resolve."""
        for index, deployment in enumerate(entry.deployments):
            if deployment.upstream not in upstreams:
                where = f"deployments[{index}].upstream" if len(entry.deployments) > 1 else "upstream"
                raise CatalogError(f"model catalog {source}: model {entry.id!r}: {where} {deployment.upstream!r} "
                                   f"is not a defined upstream; defined: {', '.join(upstreams)} (built-in ones "
                                   "and PROVIDERS_FILE's)")
        fallbacks = []
        for name in entry.fallbacks:
            target = self._by_name.get(name)
            if target is None or target is entry or target.id in fallbacks:
                problem = "is not a model in the catalog" if target is None else (
                    "is the model itself" if target is entry else "is listed twice")
                raise CatalogError(f"model catalog {source}: model {entry.id!r}: fallbacks: {name!r} {problem}")
            fallbacks.append(target.id)
        return replace(entry, fallbacks=tuple(fallbacks))

    def resolve(self, name: str) -> ModelEntry | None:
        """The entry whose id or alias is exactly name."""
        return self._by_name.get(name)

    def entries(self) -> tuple[ModelEntry, ...]:
        """Every entry, packaged ones first, in file order."""
        return self._entries


def price_snapshot(entry: ModelEntry) -> dict:
    """The prices a request was charged at, as JSON-able strings for the audit log."""
    return {
        "model": entry.id,
        "provider": entry.provider,
        "upstream_id": entry.upstream_id,
        "price_version": entry.price_version,
        "currency": "USD",
        "unit": "per_1m_tokens",
        "input": format(entry.input_price, "f"),
        "cached_input": format(entry.cached_input_price, "f"),
        "output": format(entry.output_price, "f"),
        "cache_write": None if entry.cache_write_price is None else format(entry.cache_write_price, "f"),
        "cache_write_1h": None if entry.cache_write_1h_price is None else format(entry.cache_write_1h_price, "f"),
    }


def _packaged_text() -> str:
    return resources.files("gateway").joinpath("data", "models.json").read_text(encoding="utf-8")


def _file_text(path: str) -> str:
    try:
        return read_text(path)
    except DocumentError as error:
        raise CatalogError(f"model catalog {path}: {error}") from None


def _document(text: str, source: str) -> list[dict]:
    """The entries of one catalog file, each with a string id, no duplicate ids, no unknown fields."""
    try:
        document = parse_document(text, source)
    except DocumentError as error:
        raise CatalogError(f"model catalog {source}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("models"), list):
        raise CatalogError(f'model catalog {source}: expected an object {{"models": [...]}}')
    unknown = sorted(set(document) - DOCUMENT_FIELDS)
    if unknown:
        raise CatalogError(f"model catalog {source}: unknown top-level field {unknown[0]!r}")
    seen: set[str] = set()
    for index, raw in enumerate(document["models"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
            raise CatalogError(f"model catalog {source}: models[{index}] needs a non-empty string 'id'")
        if raw["id"] in seen:
            raise CatalogError(f"model catalog {source}: model {raw['id']!r} is listed twice")
        seen.add(raw["id"])
        _reject_unknown(raw, ENTRY_FIELDS, "", source)
        if isinstance(raw.get("pricing"), dict):
            _reject_unknown(raw["pricing"], PRICE_FIELDS, "pricing.", source, raw["id"])
        _one_upstream_name(raw, source)
    return document["models"]


def _one_upstream_name(raw: dict, source: str) -> None:
    """`provider` is the older spelling of `upstream`: one entry may not say both, differently."""
    if "provider" in raw and "upstream" in raw and raw["provider"] != raw["upstream"]:
        raise CatalogError(f"model catalog {source}: model {raw['id']!r}: upstream {raw['upstream']!r} and "
                           f"provider {raw['provider']!r} disagree; give only upstream")


def _reject_unknown(raw: dict, allowed: set[str], prefix: str, source: str, model: str | None = None) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise CatalogError(f"model catalog {source}: model {model or raw['id']!r}: unknown field "
                           f"{prefix}{unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def _merge(base: dict, override: dict) -> dict:
    """Override base field by field; pricing merges key by key."""
    merged = {**base, **override}
    if isinstance(base.get("pricing"), dict) and isinstance(override.get("pricing"), dict):
        merged["pricing"] = {**base["pricing"], **override["pricing"]}
    return merged


def _entry(raw: dict, source: str) -> ModelEntry:
    """A validated ModelEntry from one merged raw entry; CatalogError names the file, model and field."""
    check = _Checker(raw, source)
    pricing = raw.get("pricing")
    if not isinstance(pricing, dict):
        check.fail("pricing", "must be an object with input, cached_input, output and cache_write")
    input_price = check.price(pricing, "input")
    deployments = check.deployments()
    return ModelEntry(
        id=raw["id"], provider=deployments[0].upstream, upstream_id=deployments[0].upstream_id,
        deployments=deployments, fallbacks=check.names("fallbacks"),
        aliases=check.names("aliases"), context_window=check.positive_int("context_window"),
        max_output_tokens=check.positive_int("max_output_tokens"), input_price=input_price,
        cached_input_price=check.price(pricing, "cached_input", default=input_price),
        output_price=check.price(pricing, "output"),
        cache_write_price=check.price(pricing, "cache_write", default=None),
        price_version=check.text("price_version"),
        supports_sampling=check.flag("supports_sampling"), supports_stop=check.flag("supports_stop"),
        reasoning=check.flag("reasoning", default=False),
        default_max_tokens=check.positive_int("default_max_tokens", optional=True),
        supports_structured_output=check.flag("supports_structured_output"),
        max_image_tokens=(check.positive_int("max_image_tokens", optional=True)
                          or MAX_IMAGE_TOKENS.get(deployments[0].upstream, DEFAULT_MAX_IMAGE_TOKENS)),
        cache_write_1h_price=check.price(pricing, "cache_write_1h", default=None),
    )


_MISSING = object()


class _Checker:
    """Typed field readers for one raw entry that raise one-line CatalogErrors."""

    def __init__(self, raw: dict, source: str) -> None:
        self.raw, self.source = raw, source

    def fail(self, field: str, problem: str):
        raise CatalogError(f"model catalog {self.source}: model {self.raw['id']!r}: {field} {problem}")

    def text(self, field: str, default=_MISSING) -> str:
        value = self.raw.get(field, default)
        if value is _MISSING or not isinstance(value, str) or not value.strip():
            self.fail(field, "must be a non-empty string")
        return value

    def positive_int(self, field: str, optional: bool = False) -> int | None:
        value = self.raw.get(field)
        if optional and value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.fail(field, f"must be a positive integer, got {value!r}")
        return value

    def flag(self, field: str, default: bool = True) -> bool:
        value = self.raw.get(field, default)
        if not isinstance(value, bool):
            self.fail(field, f"must be true or false, got {value!r}")
        return value

    def names(self, field: str) -> tuple[str, ...]:
        value = self.raw.get(field, [])
        if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
            self.fail(field, "must be a list of non-empty strings")
        return tuple(value)

    def deployments(self) -> tuple[Deployment, ...]:
        """The listed deployments, or the one given by upstream (or provider) and upstream_id."""
        upstream_id = self.text("upstream_id", default=self.raw["id"])
        listed = self.raw.get("deployments")
        if listed is None:
            upstream = self.raw.get("upstream", self.raw.get("provider"))
            if not isinstance(upstream, str) or not upstream:
                self.fail("upstream", "must name the upstream serving the model (or list deployments)")
            return (Deployment(upstream, upstream_id),)
        if not isinstance(listed, list) or not listed:
            self.fail("deployments", "must be a non-empty list of {upstream, upstream_id, weight}")
        deployments = tuple(self._deployment(index, raw, upstream_id) for index, raw in enumerate(listed))
        seen = set()
        for index, deployment in enumerate(deployments):
            if (deployment.upstream, deployment.upstream_id) in seen:
                self.fail(f"deployments[{index}]", f"repeats {deployment.upstream!r} / {deployment.upstream_id!r}")
            seen.add((deployment.upstream, deployment.upstream_id))
        return deployments

    def _deployment(self, index: int, raw: object, default_id: str) -> Deployment:
        field = f"deployments[{index}]"
        if not isinstance(raw, dict):
            self.fail(field, "must be an object with upstream, upstream_id and weight")
        unknown = sorted(set(raw) - DEPLOYMENT_FIELDS)
        if unknown:
            self.fail(f"{field}.{unknown[0]}", "is not a known field; allowed: upstream, upstream_id, weight")
        upstream, upstream_id = raw.get("upstream"), raw.get("upstream_id", default_id)
        weight = raw.get("weight", 1)
        if not isinstance(upstream, str) or not upstream:
            self.fail(f"{field}.upstream", "must be a non-empty string")
        if not isinstance(upstream_id, str) or not upstream_id.strip():
            self.fail(f"{field}.upstream_id", "must be a non-empty string")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight <= 0:
            self.fail(f"{field}.weight", f"must be a positive integer, got {weight!r}")
        return Deployment(upstream, upstream_id, weight)

    def price(self, pricing: dict, field: str, default=_MISSING) -> Decimal | None:
        value = pricing.get(field)
        if value is None:
            if default is _MISSING:
                self.fail(f"pricing.{field}", "is required (USD per 1M tokens as a decimal string)")
            return default
        try:
            price = None if isinstance(value, bool) else Decimal(str(value))
        except InvalidOperation:
            price = None
        if price is None or not price.is_finite() or price < 0:
            self.fail(f"pricing.{field}", f"must be a non-negative decimal string, got {value!r}")
        return price
