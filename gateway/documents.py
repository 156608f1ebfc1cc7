"""Operator files (model catalog, upstream definitions): JSON, or YAML when the name ends in .yaml or .yml.

Both parse into plain dicts and lists; the callers validate the shape and name the file in their errors.
"""

from __future__ import annotations

import json

import yaml

YAML_SUFFIXES = (".yaml", ".yml")


class DocumentError(ValueError):
    """A file could not be read or parsed; the message is one line, without the file's name."""


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML that keeps dates as text, so api_version: 2024-10-21 needs no quotes."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_text(path: str) -> str:
    """The file's UTF-8 text, or DocumentError saying why it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise DocumentError(f"cannot read the file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise DocumentError("the file is not UTF-8 text") from None


def parse_document(text: str, source: str) -> object:
    """The JSON (or, for a .yaml/.yml source, YAML) value in text; DocumentError with line and column."""
    if source.lower().endswith(YAML_SUFFIXES):
        try:
            return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            raise DocumentError(f"invalid YAML{where}: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise DocumentError(f"invalid YAML: {' '.join(str(exc).split())}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
