"""The `dominion-pm` commands; every failure ends as one line on stderr and an exit code scripts can test.

Exit codes: 0 ok, 2 usage, 3 authentication, 4 quota or rate limit, 5 gateway or upstream failure,
6 cannot reach the gateway, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

import click
from rich.console import Console

from dominion_pm import __version__, config, render
from dominion_pm.api import DominionClient
from dominion_pm.chat import run_chat
from dominion_pm.errors import AuthenticationError, DominionError, UsageError
from dominion_pm.output import end_line, error_line, note_line, relay, usage_note

INTERRUPTED = 130
PIPED_WIDTH = 120


@dataclass
class Flags:
    """--url / --token as given before or after the command name (after wins)."""

    url: str | None = None
    token: str | None = None


def _remember(name: str):
    def callback(ctx: click.Context, _param, value):
        flags = ctx.ensure_object(Flags)
        if value is not None:
            setattr(flags, name, value)
    return callback


def connection_options(command):
    """Add --url and --token to a command (or the group), recorded in the shared Flags."""
    command = click.option("--token", metavar="DOM_KEY", expose_value=False, callback=_remember("token"),
                           help="Gateway key (beats DOMINION_API_TOKEN, pm.config.yaml and the login).")(command)
    return click.option("--url", metavar="URL", expose_value=False, callback=_remember("url"),
                        help="Gateway URL (beats DOMINION_API_URL, pm.config.yaml and the login).")(command)


def answer_options(command):
    """--model, --system, --max-tokens, --temperature: shared by ask and chat."""
    for option in reversed([
        click.option("--model", "-m", help="Model id or alias (default: the gateway's default model)."),
        click.option("--system", "-s", help="A system message to put first."),
        click.option("--max-tokens", type=click.IntRange(min=1), help="Most tokens the answer may have."),
        click.option("--temperature", "-t", type=float, help="Sampling temperature (0-2; Claude models 0-1)."),
    ]):
        command = option(command)
    return command


def current_settings() -> config.Settings:
    """Flags of this invocation, then the environment, ./pm.config.yaml and the login file."""
    flags = click.get_current_context().ensure_object(Flags)
    return config.resolve(flags.url, flags.token)


def table_console() -> Console:
    """Rich output for tables: the terminal's width, or 120 columns (unless COLUMNS says) when piped."""
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPED_WIDTH
    return console


def open_client(settings: config.Settings | None = None) -> DominionClient:
    """A client for the resolved gateway, or exit 3 when no token is configured anywhere."""
    settings = settings or current_settings()
    if not settings.token.value:
        raise AuthenticationError("No gateway key: run `dominion-pm login`, set DOMINION_API_TOKEN, "
                                  "or put gateway.token in pm.config.yaml.")
    return DominionClient(settings.url.value, settings.token.value)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dominion-pm")
@connection_options
def cli() -> None:
    """Talk to a Dominion Gateway: ask, chat, models, quota. `dominion-pm login` first."""


@cli.command(short_help="Check the URL and key, then save them (0600).")
@connection_options
def login() -> None:
    """Ask for (or take) the URL and key, check them against the gateway, save them (mode 0600)."""
    flags = click.get_current_context().ensure_object(Flags)
    interactive = sys.stdin.isatty()
    url = flags.url or (click.prompt("Gateway URL", default=current_settings().url.value) if interactive
                        else current_settings().url.value)
    token = flags.token or (click.prompt("Gateway key (dom_...)", hide_input=True) if interactive
                            else sys.stdin.readline())
    token = token.strip()
    if not token:
        raise UsageError("No key given: pass --token, type it when asked, or pipe it in on stdin.")
    try:
        with DominionClient(url, token) as client:
            client.quota()
            url = client.url
    except DominionError as error:
        error.message += " Nothing was saved."
        raise
    path = config.save_login(url, token)
    click.echo(f"Logged in to {url} with key {config.mask(token)}. Saved to {path} (readable only by you).")
    _note_overrides(config.resolve(), str(path))


@cli.command(short_help="Forget the saved key.")
def logout() -> None:
    """Forget the key that `dominion-pm login` saved."""
    path = config.login_file()
    click.echo(f"Removed {path}." if config.forget_login(path) else f"No saved login at {path}.")
    _note_overrides(config.resolve(), str(path))


def _note_overrides(settings: config.Settings, login_path: str) -> None:
    if settings.token.value and not settings.token.source.endswith(login_path):
        note_line(f"Note: the key in use comes from {settings.token.source}, which beats the login file.")


@cli.command(name="config", short_help="Show the URL and key in use, and their sources.")
@connection_options
def show_config() -> None:
    """Show the URL and key in use and where each came from (the key masked)."""
    settings = current_settings()
    click.echo(f"url:   {settings.url.value}  (from {settings.url.source})")
    click.echo(f"token: {config.mask(settings.token.value)}  (from {settings.token.source})")
    path = config.login_file()
    click.echo(f"login file: {path} ({'present' if path.exists() else 'absent'})")


@cli.command(short_help="Your key and quotas.")
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print the gateway's quota JSON.")
def status(as_json: bool) -> None:
    """Which key you are using, whether the gateway accepts it, and your quotas."""
    settings = current_settings()
    with open_client(settings) as client:
        quota = client.quota()
    if as_json:
        click.echo(json.dumps(quota, indent=2))
        return
    click.echo(f"Gateway: {client.url}")
    click.echo(f"Key:     {config.mask(settings.token.value)} (from {settings.token.source}), accepted")
    rate = quota.get("rate_limit") or {}
    if rate:
        click.echo(f"Rate limit: {rate.get('limit')} requests per {rate.get('window_s')} s")
    running = quota.get("concurrent_requests") or {}
    if running:
        cap = running.get("limit")
        click.echo(f"In flight:  {running.get('in_flight')} of {cap} at once" if cap is not None
                   else f"In flight:  {running.get('in_flight')} (no cap)")
    table_console().print(render.quota_table(quota))


@cli.command(short_help="Models and prices.")
@connection_options
@click.option("--all", "show_all", is_flag=True, help="Include models no configured provider can serve.")
@click.option("--json", "as_json", is_flag=True, help="Print the gateway's model list JSON.")
def models(show_all: bool, as_json: bool) -> None:
    """The models your key can use, with prices per 1M tokens."""
    with open_client() as client:
        listed = [m for m in client.models() if show_all or m.get("available", True)]
    if as_json:
        click.echo(json.dumps(listed, indent=2))
    else:
        table_console().print(render.models_table(listed))


@cli.command(short_help="Ask once; the answer streams.")
@connection_options
@answer_options
@click.argument("prompt", nargs=-1)
@click.option("--json", "as_json", is_flag=True,
              help="Wait for the whole answer and print it as JSON, with usage and cost.")
def ask(prompt: tuple[str, ...], model, system, max_tokens, temperature, as_json: bool) -> None:
    """Ask once; the answer streams as it arrives. Text piped on stdin is added after the prompt."""
    text = "\n\n".join(part for part in (" ".join(prompt).strip(), _piped_text()) if part)
    if not text:
        raise UsageError('Nothing to ask: give a prompt (dominion-pm ask "...") or pipe text in.')
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    options = {"model": model, "max_tokens": max_tokens, "temperature": temperature}
    with open_client() as client:
        if as_json:
            click.echo(json.dumps(client.complete(messages, **options), indent=2, ensure_ascii=False))
            return
        pieces: list[str] = []
        try:
            done = relay(client.stream(messages, **options), sys.stdout, pieces)
        finally:
            end_line(sys.stdout, pieces)
    if sys.stderr.isatty():
        usage_note(done)


def _piped_text() -> str:
    return "" if sys.stdin.isatty() else sys.stdin.read().strip()


@cli.command(short_help="A conversation; Ctrl-C stops, Ctrl-D leaves.")
@connection_options
@answer_options
def chat(model, system, max_tokens, temperature) -> None:
    """An interactive conversation (history kept for the session); Ctrl-C stops an answer, Ctrl-D leaves."""
    with open_client() as client:
        run_chat(client, {"model": model, "max_tokens": max_tokens, "temperature": temperature}, system)


def main(argv: list[str] | None = None) -> None:
    """The console script: run a command, turn any failure into one line and its exit code."""
    try:
        code = cli.main(args=argv, prog_name="dominion-pm", standalone_mode=False)
    except click.UsageError as error:
        where = f" See `{error.ctx.command_path} --help`." if error.ctx else ""
        code = _fail(error.format_message() + where, 2)
    except click.Abort:  # click's form of Ctrl-C (and of end of input at a prompt)
        code = _fail("Interrupted.", INTERRUPTED)
    except click.ClickException as error:
        code = _fail(error.format_message(), error.exit_code)
    except DominionError as error:
        code = _fail(error.line(), error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> int:
    error_line(message)
    return code
