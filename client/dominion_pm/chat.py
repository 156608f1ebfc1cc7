"""`dominion-pm chat`: a conversation in the terminal; the history lives for this session only.

A refused key ends the chat (exit 3, as everywhere); other failures are reported and the chat goes on.
Ctrl-C while an answer streams stops that answer (the connection is closed, so the gateway stops the
upstream and bills only what was delivered) and keeps the part already shown; Ctrl-C at the prompt
clears the line; Ctrl-D at the prompt leaves.
"""

from __future__ import annotations

import sys
from typing import TextIO

from dominion_pm.api import DominionClient
from dominion_pm.errors import AuthenticationError, DominionError
from dominion_pm.output import end_line, error_line, note_line, relay, usage_note

PROMPT = "you> "


def run_chat(client: DominionClient, options: dict, system: str | None, out: TextIO = sys.stdout) -> None:
    """Read a message, stream the answer, repeat until end of input."""
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401 - line editing and history for input(), terminals only
        except ImportError:  # Windows: input() still works, without editing
            pass
    history = [{"role": "system", "content": system}] if system else []
    note_line(f"Chatting via {client.url} with {options.get('model') or 'the gateway default model'}. "
              "Ctrl-C stops an answer, Ctrl-D leaves.")
    while True:
        try:
            line = input(PROMPT)
        except EOFError:
            out.write("\n")
            return
        except KeyboardInterrupt:
            out.write("\n")
            continue
        if line.strip():
            history.append({"role": "user", "content": line})
            answer = take_turn(client, history, options, out)
            if answer:
                history.append({"role": "assistant", "content": answer})
            else:
                history.pop()


def take_turn(client: DominionClient, history: list[dict], options: dict, out: TextIO) -> str:
    """Stream one answer; returns the text shown (all of it, or the part before a stop or failure)."""
    pieces: list[str] = []
    try:
        done = relay(client.stream(history, **options), out, pieces)
    except KeyboardInterrupt:
        end_line(out, pieces)
        note_line("[stopped]")
    except AuthenticationError:
        end_line(out, pieces)
        raise
    except DominionError as error:
        end_line(out, pieces)
        error_line(error.line())
    else:
        end_line(out, pieces)
        usage_note(done)
    return "".join(pieces)
