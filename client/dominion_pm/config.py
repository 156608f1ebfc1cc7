"""Where the gateway URL and token come from, highest first: flags, environment, ./pm.config.yaml, login.

Each value is resolved on its own (the URL may come from the environment and the token from the login
file) and remembers its source, so `dominion-pm config` can say why a value is what it is.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import yaml

from dominion_pm.errors import UsageError

APP_NAME = "dominion-pm"
DEFAULT_URL = "http://localhost:3100"
URL_ENV, TOKEN_ENV = "DOMINION_API_URL", "DOMINION_API_TOKEN"
PROJECT_FILE = "pm.config.yaml"
GATEWAY_KEY = re.compile(r"^dom_([a-z0-9]+)_.")


@dataclass(frozen=True)
class Setting:
    """One resolved value and where it came from (`None` value: nothing set it)."""

    value: str | None
    source: str


@dataclass(frozen=True)
class Settings:
    """The gateway URL and token this invocation will use."""

    url: Setting
    token: Setting


def login_file() -> Path:
    """The file `dominion-pm login` writes: config.yaml in the user's config directory (XDG on Linux)."""
    return platformdirs.user_config_path(APP_NAME) / "config.yaml"


def resolve(url_flag: str | None = None, token_flag: str | None = None,
            environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Each value from the highest source that sets it: flag, environment, ./pm.config.yaml, login file."""
    environ = os.environ if environ is None else environ
    project = (cwd or Path.cwd()) / PROJECT_FILE
    login = f"login file {login_file()}"
    layers = [
        ({"url": "--url", "token": "--token"}, {"url": url_flag, "token": token_flag}),
        ({"url": URL_ENV, "token": TOKEN_ENV}, {"url": environ.get(URL_ENV), "token": environ.get(TOKEN_ENV)}),
        ({"url": str(project), "token": str(project)}, read_gateway_section(project)),
        ({"url": login, "token": login}, read_gateway_section(login_file())),
    ]
    return Settings(url=_first("url", layers, Setting(DEFAULT_URL, "default")),
                    token=_first("token", layers, Setting(None, "not set")))


def _first(name: str, layers: list[tuple[dict, dict]], fallback: Setting) -> Setting:
    for sources, values in layers:
        value = (values.get(name) or "").strip()
        if value:
            return Setting(value, sources[name])
    return fallback


def read_gateway_section(path: Path) -> dict:
    """The `gateway: {url, token}` mapping of a YAML file; {} when the file is absent."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror}.") from None
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise UsageError(f"{path} is not valid YAML{line}.") from None
    section = document.get("gateway", {}) if isinstance(document, dict) else None
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise UsageError(f"{path}: `gateway` must be a mapping with `url` and `token`.")
    for key in ("url", "token"):
        if section.get(key) is not None and not isinstance(section[key], str):
            raise UsageError(f"{path}: gateway.{key} must be a string.")
    return {key: section.get(key) for key in ("url", "token")}


def save_login(url: str, token: str, path: Path | None = None) -> Path:
    """Write the login file readable by its owner only (0600, directory 0700), replacing it atomically."""
    path = path or login_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = yaml.safe_dump({"gateway": {"url": url, "token": token}}, sort_keys=False)
    handle, temporary = tempfile.mkstemp(prefix=".config-", suffix=".yaml", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # POSIX; on Windows the profile directory is the user's own already
            os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def forget_login(path: Path | None = None) -> bool:
    """Delete the login file; False when there was none."""
    path = path or login_file()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def mask(token: str | None) -> str:
    """A token safe to show: a gateway key keeps its public id (`dom_<id>_****`), anything else 4 chars."""
    if not token:
        return "-"
    match = GATEWAY_KEY.match(token)
    if match:
        return f"dom_{match.group(1)}_****"
    return f"{token[:4]}****" if len(token) > 8 else "****"
