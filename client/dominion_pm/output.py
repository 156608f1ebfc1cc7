"""What the CLI writes where: answers to stdout the moment they arrive, error and usage lines to stderr."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import TextIO

import click

from dominion_pm.api import Delta, Done
from dominion_pm.render import usage_line


def relay(events: Iterator[Delta | Done], out: TextIO, pieces: list[str]) -> Done:
    """Write each piece of the answer as it arrives (flushed: pipes see it too); collect it in `pieces`.

    Returns the stream's Done. Whatever interrupts the stream (Ctrl-C, a failure) hangs up the
    connection on its way out, so the gateway stops the upstream and bills only what was delivered.
    """
    done = None
    with closing(events):
        for event in events:
            if isinstance(event, Delta):
                out.write(event.text)
                out.flush()
                pieces.append(event.text)
            else:
                done = event
    return done


def end_line(out: TextIO, pieces: list[str]) -> None:
    """Finish the answer's last line, so the shell prompt or the next message starts on its own."""
    if pieces and not pieces[-1].endswith("\n"):
        out.write("\n")
        out.flush()


def error_line(message: str) -> None:
    """One line on stderr: 'error: ...' (red on a terminal)."""
    click.echo(click.style("error: ", fg="red", bold=True) + message, err=True)


def note_line(message: str) -> None:
    """A dim remark on stderr (usage after an answer, hints); never mixed into stdout."""
    click.echo(click.style(message, dim=True), err=True)


def usage_note(done: Done) -> None:
    """The usage and cost of a finished answer, on stderr."""
    note_line(usage_line(done.model, done.usage, done.cost_usd, done.latency_ms))
