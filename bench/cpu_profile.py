"""`make bench-profile`: where a governed request's CPU goes, by pipeline step, library and hot spot.

py-spy samples one gunicorn worker under wrk load with --gil (only threads holding the GIL are sampled,
so the shares are CPU, not waiting). Each sample is charged to the pipeline step of its innermost
matching frame; the library and hot-spot tables are inclusive and cut across the steps. The floor of
`make bench-compare` is profiled the same way, and the package table sets the two side by side: each
sample charged to the package of its innermost frame (a partition: the shares add up to 100%), times each
target's CPU per request over its run, so the gateway's extra CPU is split by the code that spends it.
"""

from __future__ import annotations

import subprocess
import threading
import time

import harness
from load import table, wrk
from scenarios import THREADS, databases, env_int, fast_upstream, gateway

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


# Package of a sample's innermost frame, first match wins; py-spy names a file by its path below sys.path.
PACKAGES = (
    ("database driver (the statement itself, C)", ("do_execute (", "do_commit (", "do_executemany (")),
    ("SQLAlchemy (engine, pool, results)", ("sqlalchemy/", "flask_sqlalchemy/")),
    ("Flask-Limiter + limits", ("flask_limiter/", "limits/")),
    ("marshmallow", ("marshmallow/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("redis client", ("redis/",)),
    ("requests + urllib3 + http.client + socket", ("requests/", "urllib3/", "http/client.py", "socket.py",
                                                  "email/", "cookiejar.py", "urllib/parse.py", "idna/")),
    ("Flask + Werkzeug", ("flask/", "werkzeug/")),
    ("gunicorn", ("gunicorn/",)),
    ("json", ("json/",)),
    ("logging", ("logging/",)),
    ("dataclass __init__ and replace", ("(<string>", "dataclasses.py")),
    ("gateway (our own code)", ("gateway/", "providers/", "formats/", "services/", "blueprints/", "ledger/",
                                "schemas/")),
)
OTHER_PACKAGE = "everything else (stdlib: typing, threading, contextlib, ...)"


def _package(stack: str) -> str:
    leaf = stack.rsplit(";", 1)[-1]
    for name, needles in PACKAGES:
        if any(needle in leaf for needle in needles):
            return name
    return OTHER_PACKAGE


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


def _profile_target(spy: str, url: str, auth: str | None, pids) -> tuple[list[tuple[str, int]], float]:
    """Load url for PROFILE_SECONDS + 4 s and record its busiest worker; (request stacks, CPU ms per request)."""
    result = {}
    loader = threading.Thread(target=lambda: result.update(run=wrk(f"{url}/v1/chat/completions", PROFILE_LEVEL,
                                                                   PROFILE_SECONDS + 4, auth, pids=pids)))
    loader.start()
    time.sleep(1)
    before = {pid: harness.cpu_seconds([pid]) for pid in pids()}
    time.sleep(1)
    worker = max(before, key=lambda pid: harness.cpu_seconds([pid]) - before[pid])  # the busiest worker
    _record(spy, worker)
    loader.join()
    return request_stacks(), result["run"].cpu_ms


def _by_package(stacks: list[tuple[str, int]]) -> dict[str, float]:
    total = max(sum(n for _, n in stacks), 1)
    shares = {name: 0.0 for name, _ in PACKAGES} | {OTHER_PACKAGE: 0.0}
    for stack, count in stacks:
        shares[_package(stack)] += count / total
    return shares


def package_table(floor: tuple[list, float], gw: tuple[list, float]) -> str:
    """Share and ms per request of each package in the floor and the gateway, and what the gateway adds."""
    (floor_stacks, floor_ms), (gw_stacks, gw_ms) = floor, gw
    floor_shares, gw_shares = _by_package(floor_stacks), _by_package(gw_stacks)
    rows = []
    for name in sorted(gw_shares, key=lambda n: -(gw_shares[n] * gw_ms - floor_shares[n] * floor_ms)):
        f, g = floor_shares[name] * floor_ms, gw_shares[name] * gw_ms
        rows.append([name, f"{100 * floor_shares[name]:.1f}%", f"{f:.3f}", f"{100 * gw_shares[name]:.1f}%",
                     f"{g:.3f}", f"{g - f:+.3f}", f"{(g - f) / floor_ms:+.2f}"])
    rows.append(["total (CPU ms per request over the run)", "100%", f"{floor_ms:.3f}", "100%", f"{gw_ms:.3f}",
                 f"{gw_ms - floor_ms:+.3f}", f"{gw_ms / floor_ms:.2f}x"])
    return table(["package of the innermost frame", "floor share", "floor ms/req", "gateway share",
                  "gateway ms/req", "added ms/req", "added, in floors"], rows)


def profile() -> str:
    """py-spy on the busiest gunicorn worker of the floor and of the gateway under load; the four tables."""
    spy = harness.VENV_BIN / "py-spy"
    if not spy.exists():
        subprocess.run([str(harness.VENV_BIN / "pip"), "install", "-q", "py-spy"], check=True)
    openai_base, anthropic_base, _ = fast_upstream()
    db = "postgres" if "postgres" in databases() else "sqlite"
    floor_url, floor_proc = harness.start_floor(openai_base, 1, THREADS)
    try:
        floor = _profile_target(str(spy), floor_url, None, lambda: harness.tree(floor_proc.pid)[1:])
    finally:
        harness.stop(floor_proc)
    gw = gateway(db, openai_base, anthropic_base)
    try:
        stacks, gw_ms = _profile_target(str(spy), gw.url, gw.auth, gw.worker_pids)
    finally:
        gw.stop()
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
            + table(["hot spot (inclusive, cuts across steps)", "share"], spots) + "\n\n"
            + f"Gateway ({db}) against the floor (bench/floor_app.py, 1 worker), each profiled the same way; "
              "ms per request are each target's worker CPU over its whole run divided by its requests\n"
            + package_table(floor, (stacks, gw_ms)))
