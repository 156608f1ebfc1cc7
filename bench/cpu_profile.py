"""`make bench-profile`: where a governed request's CPU goes, by pipeline step, library and hot spot.

py-spy samples one gunicorn worker under wrk load with --gil (only threads holding the GIL are sampled,
so the shares are CPU, not waiting). Each sample is charged to the pipeline step of its innermost
matching frame; the library and hot-spot tables are inclusive and cut across the steps.
"""

from __future__ import annotations

import subprocess
import threading
import time

import harness
from load import table, wrk
from scenarios import databases, env_int, fast_upstream, gateway

PROFILE_SECONDS = env_int("BENCH_PROFILE_SECONDS", 15)
PROFILE_LEVEL = env_int("BENCH_PROFILE_CONCURRENCY", 8)
CATEGORIES = (
    ("authentication (key + user row, key cache)", ("authenticate (", "require_gateway_key (")),
    ("rate limits (Flask-Limiter, failure throttle)", ("flask_limiter/_extension.py", "failure_throttle.py",
                                                       "gateway/rate_limits.py", "gateway/rate_window.py")),
    ("quota reservation (counters + pending audit row)", ("reserve (gateway/services/quotas.py",)),
    ("upstream call (requests/urllib3)", ("OpenAIProvider.", "AnthropicProvider.", "HttpProvider.",
                                          "send_with_retries (")),
    ("settlement (audit row + counters)", ("settle (gateway/services/settlement.py",)),
    ("body parsing + validation (marshmallow)", ("load_body (", "completion_input (")),
    ("observability (metrics, access log)", ("gateway/observability.py", "gateway/metrics.py")),
    ("gunicorn + Flask + response (the rest)", ("gunicorn/", "flask/", "werkzeug/")),
)
LAYERS = (("SQLAlchemy (all statements)", "sqlalchemy/"), ("psycopg2/sqlite3 driver calls", "do_execute ("),
          ("redis client", "redis/"), ("requests/urllib3", ("requests/", "urllib3/")),
          ("json", "json/"), ("logging", "logging/"))
# Costs the rebuild of #16 can remove or shrink, each inclusive of what it calls.
HOTSPOTS = (
    ("SQL expressions built per request (column == value, bind params)", "expect (sqlalchemy/sql/coercions.py"),
    ("statement compile-cache lookups", "_compile_w_cache (sqlalchemy/sql/elements.py"),
    ("ORM Session.get of key + user (populate_existing)", "Session.get (sqlalchemy/orm/session.py"),
    ("pool checkout (incl. pre-ping)", "Pool.connect (sqlalchemy/pool/base.py"),
    ("pool checkin (incl. reset-on-return)", "_finalize_fairy (sqlalchemy/pool/base.py"),
    ("commit + rollback calls", ("Session.commit (sqlalchemy/orm/session.py",
                                 "Session.rollback (sqlalchemy/orm/session.py",
                                 "Connection.commit (sqlalchemy/engine/base.py",
                                 "Connection.rollback (sqlalchemy/engine/base.py")),
    ("ledger statements as driver SQL (gateway/ledger)", "exec_driver_sql (sqlalchemy/engine/base.py"),
    ("Flask-Limiter hits (counter increments)", ("FixedWindowRateLimiter.hit (", "CountingFixedWindow.hit (")),
    ("Flask-Limiter window reads (for headers)", "get_window_stats ("),
    ("upstream call through requests (incl. urllib3 below)", "Session.send (requests/sessions.py"),
    ("urllib3 round trip to the upstream", "HTTPConnectionPool.urlopen (urllib3/connectionpool.py"),
)


def _share(stacks: list[tuple[str, int]], needles, total: int) -> float:
    needles = (needles,) if isinstance(needles, str) else needles
    return 100 * sum(n for stack, n in stacks if any(x in stack for x in needles)) / max(total, 1)


def _step(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for name, needles in CATEGORIES:
            if any(needle in frame for needle in needles):
                return name
    return CATEGORIES[-1][0]


def _record(spy: str, worker: int) -> None:
    """Raw stacks for PROFILE_SECONDS, then a short SVG and a dump, all into bench/results/."""
    subprocess.run([spy, "record", "-p", str(worker), "-d", str(PROFILE_SECONDS), "-r", "250", "--gil",
                    "--nonblocking", "-f", "raw", "-o", str(harness.RESULTS / "profile.raw")], check=True,
                   capture_output=True)
    subprocess.run([spy, "record", "-p", str(worker), "-d", "3", "-r", "250", "--gil", "--nonblocking", "-o",
                    str(harness.RESULTS / "profile.svg")], capture_output=True)
    dump = subprocess.run([spy, "dump", "-p", str(worker)], capture_output=True, text=True).stdout
    (harness.RESULTS / "profile-dump.txt").write_text(dump)


def request_stacks() -> list[tuple[str, int]]:
    """(stack, samples) of the request-serving threads in the last raw profile."""
    stacks = []
    for line in (harness.RESULTS / "profile.raw").read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "handle_request (gunicorn" in stack:
            stacks.append((stack, int(count)))
    return stacks


def profile() -> str:
    """py-spy on the busiest gunicorn worker under load; the three tables."""
    spy = harness.VENV_BIN / "py-spy"
    if not spy.exists():
        subprocess.run([str(harness.VENV_BIN / "pip"), "install", "-q", "py-spy"], check=True)
    openai_base, anthropic_base, _ = fast_upstream()
    db = "postgres" if "postgres" in databases() else "sqlite"
    gw = gateway(db, openai_base, anthropic_base)
    try:
        loader = threading.Thread(target=lambda: wrk(f"{gw.url}/v1/chat/completions", PROFILE_LEVEL,
                                                      PROFILE_SECONDS + 4, gw.auth))
        loader.start()
        time.sleep(1)
        before = {pid: harness.cpu_seconds([pid]) for pid in gw.worker_pids()}
        time.sleep(1)
        worker = max(before, key=lambda pid: harness.cpu_seconds([pid]) - before[pid])  # the busiest worker
        _record(str(spy), worker)
        loader.join()
    finally:
        gw.stop()
    stacks = request_stacks()
    total = sum(n for _, n in stacks)
    steps = {name: 0 for name, _ in CATEGORIES}
    for stack, count in stacks:
        steps[_step(stack)] += count
    share = lambda count: f"{100 * count / max(total, 1):.1f}%"
    rows = [[name, share(count)] for name, count in sorted(steps.items(), key=lambda item: -item[1])]
    layers = [[name, f"{_share(stacks, needle, total):.1f}%"] for name, needle in LAYERS]
    spots = [[name, f"{_share(stacks, needle, total):.1f}%"] for name, needle in HOTSPOTS]
    return (f"Profile: py-spy --gil on one worker for {PROFILE_SECONDS}s at concurrency {PROFILE_LEVEL} ({gw.label()}); "
            f"{total} request-thread samples. Raw stacks, an SVG and a dump are in bench/results/.\n"
            + table(["pipeline step (share of request CPU)", "share"], rows) + "\n\n"
            + table(["library layer (inclusive, cuts across steps)", "share"], layers) + "\n\n"
            + table(["hot spot (inclusive, cuts across steps)", "share"], spots))
