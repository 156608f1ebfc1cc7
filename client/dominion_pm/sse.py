"""Server-sent events read line by line, so each event is handed on the moment its blank line arrives."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """One SSE event: its name (`message` when unnamed) and its data lines joined by newlines."""

    name: str
    data: str


def events(lines: Iterable[str]) -> Iterator[Event]:
    """Parse SSE lines (without line endings) into events; comments, ids and an unfinished last event are dropped."""
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield Event(name, "\n".join(data))
            name, data = "message", []
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
