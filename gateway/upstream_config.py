"""Named upstreams: the built-in `openai` and `anthropic`, plus those defined in PROVIDERS_FILE.

Read once at start and validated; a bad entry stops start-up with one line naming the file, the upstream
and the field. Keys never appear in the file: an entry names the environment variable that holds its key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.config import ConfigError, Settings
from gateway.documents import DocumentError, parse_document, read_text
from gateway.providers.base import ProviderSettings

KINDS = ("openai", "anthropic", "azure_openai")
RESERVED_NAMES = ("mock",)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEADER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
API_VERSION_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "api-key", "x-api-key")
DEFAULT_AZURE_API_VERSION = "2024-10-21"
MAX_RETRIES_LIMIT = 10
UPSTREAM_FIELDS = ("name", "kind", "base_url", "api_key_env", "headers", "connect_timeout_s", "read_timeout_s",
                   "max_retries", "api_version")
DOCUMENT_FIELDS = ("upstreams", "about")


class ProvidersFileError(ConfigError):
    """PROVIDERS_FILE is unreadable or wrong; one line naming the file, the upstream and the field."""


@dataclass(frozen=True)
class UpstreamDefinition:
    """One upstream as configured: where it is, how to authenticate, how long to wait."""

    name: str
    kind: str
    base_url: str
    api_key_env: str | None
    api_key: str | None
    connect_timeout_s: float
    read_timeout_s: float
    max_retries: int
    headers: Mapping[str, str] = field(default_factory=dict)
    api_version: str | None = None
    source: str = "environment"

    @property
    def unavailable_reason(self) -> str | None:
        """Why this upstream cannot be called (its key variable is unset), or None when it can."""
        if self.api_key_env and not self.api_key:
            return f"{self.api_key_env} is not set"
        return None

    def provider_settings(self) -> ProviderSettings:
        """What an adapter for this upstream is built with (a keyless upstream sends an empty key)."""
        return ProviderSettings(api_key=self.api_key or "", base_url=self.base_url,
                                connect_timeout_s=self.connect_timeout_s, read_timeout_s=self.read_timeout_s,
                                max_retries=self.max_retries, extra_headers=dict(self.headers))


def load_upstreams(settings: Settings, env: Mapping[str, str]) -> tuple[UpstreamDefinition, ...]:
    """The built-in upstreams, replaced or extended by PROVIDERS_FILE's entries (in file order)."""
    upstreams = {u.name: u for u in _builtins(settings)}
    if settings.providers_file:
        for upstream in _file_upstreams(settings.providers_file, settings, env):
            upstreams[upstream.name] = upstream
    return tuple(upstreams.values())


def _builtins(settings: Settings) -> tuple[UpstreamDefinition, ...]:
    """`openai` and `anthropic` from OPENAI_* and ANTHROPIC_* (a missing key makes one unavailable)."""
    common = {"connect_timeout_s": settings.upstream_connect_timeout_s,
              "read_timeout_s": settings.upstream_timeout_s, "max_retries": settings.upstream_max_retries}
    return (UpstreamDefinition("openai", "openai", settings.openai_base_url, "OPENAI_API_KEY",
                               settings.openai_api_key, **common),
            UpstreamDefinition("anthropic", "anthropic", settings.anthropic_base_url, "ANTHROPIC_API_KEY",
                               settings.anthropic_api_key, **common))


def _file_upstreams(path: str, settings: Settings, env: Mapping[str, str]) -> list[UpstreamDefinition]:
    try:
        document = parse_document(read_text(path), path)
    except DocumentError as error:
        raise ProvidersFileError(f"providers file {path}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("upstreams"), list):
        raise ProvidersFileError(f"providers file {path}: expected an object with a list 'upstreams'")
    unknown = sorted(set(document) - set(DOCUMENT_FIELDS))
    if unknown:
        raise ProvidersFileError(f"providers file {path}: unknown top-level field {unknown[0]!r}")
    seen: set[str] = set()
    upstreams = []
    for index, raw in enumerate(document["upstreams"]):
        upstream = _Entry(path, index, raw).definition(settings, env)
        if upstream.name in seen:
            raise ProvidersFileError(f"providers file {path}: upstream {upstream.name!r} is defined twice")
        seen.add(upstream.name)
        upstreams.append(upstream)
    return upstreams


def _key(env: Mapping[str, str], name: str | None) -> str | None:
    """The key in variable `name`, or None when there is no variable or it is empty."""
    value = (env.get(name) or "").strip() if name else ""
    return value or None


class _Entry:
    """Typed readers for one raw upstream entry that raise one-line ProvidersFileErrors."""

    def __init__(self, path: str, index: int, raw: object) -> None:
        self.path, self.raw = path, raw
        self.label = f"upstreams[{index}]"
        if not isinstance(raw, dict):
            self.fail(None, "must be an object with name, kind and base_url")

    def fail(self, field_name: str | None, problem: str):
        where = f"{self.label}: {field_name} " if field_name else f"{self.label} "
        raise ProvidersFileError(f"providers file {self.path}: {where}{problem}")

    def definition(self, settings: Settings, env: Mapping[str, str]) -> UpstreamDefinition:
        name = self.name()
        self.label = f"upstream {name!r}"
        self.reject_unknown()
        kind = self.choice("kind", KINDS)
        key_env = self.optional("api_key_env", ENV_NAME_PATTERN, "a variable name such as MY_UPSTREAM_KEY")
        return UpstreamDefinition(
            name=name, kind=kind, base_url=self.url("base_url"), api_key_env=key_env,
            api_key=_key(env, key_env),
            connect_timeout_s=self.seconds("connect_timeout_s", settings.upstream_connect_timeout_s),
            read_timeout_s=self.seconds("read_timeout_s", settings.upstream_timeout_s),
            max_retries=self.retries(settings.upstream_max_retries), headers=self.headers(),
            api_version=self.api_version(kind), source=self.path)

    def name(self) -> str:
        name = self.raw.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            self.fail("name", f"must be 1-32 of a-z 0-9 . _ - starting with a letter or digit, got {name!r}")
        if name in RESERVED_NAMES:
            self.fail("name", f"{name!r} is reserved for the built-in offline provider")
        return name

    def reject_unknown(self) -> None:
        if "api_key" in self.raw:
            self.fail("api_key", "is not allowed: keys never go in this file; put the key in an environment "
                                 "variable and name that variable in api_key_env")
        unknown = sorted(set(self.raw) - set(UPSTREAM_FIELDS))
        if unknown:
            self.fail(unknown[0], f"is not a known field; allowed: {', '.join(UPSTREAM_FIELDS)}")

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self.raw.get(name)
        if value not in allowed:
            self.fail(name, f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def optional(self, name: str, pattern: re.Pattern, example: str) -> str | None:
        value = self.raw.get(name)
        if value is not None and (not isinstance(value, str) or not pattern.match(value)):
            self.fail(name, f"must be {example}, got {value!r}")
        return value

    def url(self, name: str) -> str:
        value = self.raw.get(name)
        if not isinstance(value, str) or not re.match(r"^https?://[^/?#\s]+[^?#\s]*$", value):
            self.fail(name, f"must be an http:// or https:// URL without query or fragment, got {value!r}")
        return value.rstrip("/")

    def seconds(self, name: str, default: float) -> float:
        value = self.raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            self.fail(name, f"must be a number of seconds > 0, got {value!r}")
        return float(value)

    def retries(self, default: int) -> int:
        value = self.raw.get("max_retries", default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES_LIMIT:
            self.fail("max_retries", f"must be an integer from 0 to {MAX_RETRIES_LIMIT}, got {value!r}")
        return value

    def headers(self) -> dict[str, str]:
        value = self.raw.get("headers", {})
        if not isinstance(value, dict):
            self.fail("headers", "must be an object of header name to text value")
        for header, text in value.items():
            if not isinstance(header, str) or not HEADER_NAME_PATTERN.match(header):
                self.fail("headers", f"has an invalid header name {header!r}")
            if header.lower() in CREDENTIAL_HEADERS:
                self.fail(f"headers.{header}", "would put a key in the file; name the variable holding the key "
                                               "in api_key_env instead")
            if not isinstance(text, str) or "\n" in text or "\r" in text:
                self.fail(f"headers.{header}", "must be one line of text")
        return dict(value)

    def api_version(self, kind: str) -> str | None:
        value = self.raw.get("api_version")
        if kind != "azure_openai":
            if value is not None:
                self.fail("api_version", "is only for kind azure_openai")
            return None
        if value is None:
            return DEFAULT_AZURE_API_VERSION
        if not isinstance(value, str) or not API_VERSION_PATTERN.match(value):
            self.fail("api_version", f"must look like 2024-10-21 or 2025-01-01-preview, got {value!r}")
        return value
