"""CPU per request by pipeline step, in one process: no gunicorn, no wrk, no sampling.

  make bench-inprocess    (or: .venv/bin/python bench/inprocess.py [floor|sqlite|postgres ...] [--requests N]
                           [--rounds R] [--wall])

Each target's WSGI app is called directly with a prebuilt POST /v1/chat/completions (the body of
`make bench`) against nginx's canned upstream, one request at a time, and the process's own CPU time is
read around every request (time.process_time) and around the pipeline's steps, by wrapping the functions
named in STEPS. What is left is what gunicorn and the network do not add: the gateway's own Python work
next to the floor's (bench/floor_app.py), step by step. Rounds alternate the targets, so a box that
drifts moves them together; the table gives each figure's median over the rounds. BENCH_BASELINE=<another
checkout> also measures that tree's gateways in every round (as `make bench-compare` does) and prints this
tree's total against it, round by round: in one process a 2% change shows; under gunicorn the box's
noise hides it. With --wall the same
steps are timed on the wall clock instead (time.perf_counter), waits on the databases and the upstream
included: where a request's latency goes before and after the upstream call. With --idle MS each request
follows MS milliseconds of sleep, untimed: a gateway that is not saturated meets every request with its
caches cold and, on a virtual machine, its cores and the servers it calls asleep (run it with --wall).

With postgres among the targets a second table gives the client CPU of one bare round trip to Redis and
to PostgreSQL through the clients the gateway uses (redis-py, psycopg2) and through a raw socket: a cost
per round trip, kernel and client library, that no Python work of the gateway's can remove, timed back to
back and each after 20 ms idle (the wall time a gateway that is not saturated pays: the server it calls
and, on a virtual machine, the cores have gone to sleep). A request makes three of them on PostgreSQL +
Redis (both rate-limit hits in one script, the reservation, the settlement; the first two before the
upstream is called, the reservation with a durable commit) and none on SQLite with the memory:// limiter.
A third table times the same Python work alone and right after a
wait: on a virtual machine a core that waits comes back to colder caches, so each wait also slows the
code after it.

The gateway runs with the benchmark's production settings (bench/harness.py), on SQLite with the
memory:// limiter or on PostgreSQL (a fresh database) with the Redis limiter (database 12); one user, one
key, the access log written to /dev/null.
"""

from __future__ import annotations

import argparse
import importlib
import io
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from load import BODY  # noqa: E402

PG_DB = "dominion_bench_inprocess"
# Another checkout (git worktree add /tmp/before <commit>) whose gateway is measured in the same rounds.
BASELINE = Path(os.environ["BENCH_BASELINE"]).resolve() if os.environ.get("BENCH_BASELINE") else None
REDIS_DB = 12
ADMIN_TOKEN = "bench-inprocess-admin-token-0123456789"
# (module, attribute path, label): each is timed (inclusive) wherever it is called during a request.
STEPS = (
    ("gateway.blueprints.openai_compat", "load_body", "body: JSON + marshmallow"),
    ("gateway.services.completions", "CompletionPipeline._prepare", "plan + reservation"),
    ("gateway.services.completions", "reserve", "  of which the reservation"),
    ("gateway.services.routing", "Router.complete", "upstream call + its parsing"),
    ("requests", "Session.send", "  of which requests' Session.send"),
    ("gateway.services.completions", "_Ticket.settle", "settlement"),
    ("flask_limiter._extension", "Limiter._check_request_limit", "rate limits (both checks)"),
    ("gateway.rate_window", "CountingFixedWindow.hit", "  of which counting (memory, or the one Redis script)"),
    ("gateway.observability", "_record", "metrics + access log"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", default=["floor", "sqlite", "postgres"])
    parser.add_argument("--requests", type=int, default=3000, help="requests per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wall", action="store_true", help="wall-clock time instead of CPU (waits included)")
    parser.add_argument("--idle", type=float, default=0.0, metavar="MS",
                        help="sleep this long (untimed) before each measured request")
    args = parser.parse_args()
    harness.install_cleanup()
    harness.ensure_tools()
    port, _nginx = harness.start_nginx()
    upstream = f"http://127.0.0.1:{port}/v1"
    # One process per target: SQLite and PostgreSQL apps cannot share a process's engine-wide settings.
    runs = [(target, harness.ROOT) for target in args.targets]
    if BASELINE:
        runs += [(f"baseline-{target}", BASELINE) for target in args.targets if target != "floor"]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in runs}
    for round_ in range(args.rounds):
        for name, root in runs if round_ % 2 == 0 else reversed(runs):  # neither tree always goes first
            target = name.removeprefix("baseline-")
            results[name].append(_measure_in_child(target, upstream, args.requests, args.wall, args.idle, root))
    _print_table(results, args)
    if BASELINE:
        _print_against_baseline(results)
    if "postgres" in args.targets:
        print()
        _print_round_trips(args.requests)
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "-f", PG_DB], check=False)
    return 0


def _measure_in_child(target: str, upstream: str, requests: int, wall: bool, idle_ms: float,
                      root: Path) -> dict[str, float]:
    """One target measured by the child of the tree at root (this one, or BENCH_BASELINE)."""
    out = subprocess.run([sys.executable, str(root / "bench" / "inprocess.py"), "--child", target, upstream,
                          str(requests)] + (["--wall"] if wall else []) + ([f"--idle={idle_ms}"] if idle_ms else []),
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(root)})
    figures = {}
    for line in out.stdout.splitlines():
        label, _, value = line.rpartition("\t")
        figures[label] = float(value)
    return figures


def _print_table(results: dict[str, list[dict[str, float]]], args) -> None:
    measured = "wall-clock time" if args.wall else "CPU"
    idle = f"each after {args.idle:g} ms idle " if args.idle else ""
    print(f"{measured} per request in one process (us), median of {args.rounds} rounds x {args.requests} requests "
          f"{idle}[min..max]; the steps are inclusive and overlap where indented")
    labels = ["total"] + [label for _, _, label in STEPS]
    print("| step | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for label in labels:
        cells = []
        for target in results:
            values = [round_["total" if label == "total" else label] for round_ in results[target]
                      if (label in round_ or label == "total")]
            cells.append(f"{statistics.median(values):.0f} [{min(values):.0f}..{max(values):.0f}]" if values else "")
        print(f"| {label} | " + " | ".join(cells) + " |")
    if "floor" in results:
        floor = statistics.median(r["total"] for r in results["floor"])
        for target in results:
            if target != "floor":
                total = statistics.median(r["total"] for r in results[target])
                print(f"{target}: {total / floor:.2f}x the floor's {measured} in-process (+{total - floor:.0f} us)")


def _print_against_baseline(results: dict[str, list[dict[str, float]]]) -> None:
    """Each gateway target's total against the same target of BENCH_BASELINE: per-round ratios."""
    print(f"This tree against BENCH_BASELINE={BASELINE}, per round (each round ran both)")
    for name in results:
        before = results.get(f"baseline-{name}")
        if not before:
            continue
        now = results[name]
        ratios = [n["total"] / b["total"] for n, b in zip(now, before)]
        print(f"{name}: now / before {statistics.median(ratios):.3f}x [{min(ratios):.3f}..{max(ratios):.3f}] "
              f"({statistics.median(b['total'] for b in before):.0f} -> {statistics.median(n['total'] for n in now):.0f} us)")


IDLE_TRIPS, IDLE_GAP_S = 60, 0.02  # round trips timed after an idle gap, per round


def _print_round_trips(count: int, rounds: int = 3) -> None:
    """Client CPU and wall time of one round trip to Redis and PostgreSQL, by client (median of rounds), back
    to back and after 20 ms idle: what a request of a gateway that is not saturated pays for each."""
    import socket

    import psycopg2
    import redis

    client = redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
    raw = socket.create_connection(("127.0.0.1", 6379))
    connection = psycopg2.connect(f"postgresql://postgres@127.0.0.1:5432/{PG_DB}")
    connection.autocommit = True
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE IF NOT EXISTS bench_durable_commit (id int PRIMARY KEY, n int NOT NULL)")
    cursor.execute("INSERT INTO bench_durable_commit VALUES (1, 0) ON CONFLICT DO NOTHING")

    def raw_ping() -> None:
        raw.sendall(b"PING\r\n")
        raw.recv(64)

    def select_one() -> None:
        cursor.execute("SELECT 1")
        cursor.fetchone()

    def durable_update() -> None:
        cursor.execute("UPDATE bench_durable_commit SET n = n + 1 WHERE id = 1")

    trips = ((f"Redis PING, redis-py {redis.__version__} (the rate-limit script is one such)", client.ping),
             ("Redis PING, raw socket (the kernel's share)", raw_ping),
             (f"PostgreSQL SELECT 1, psycopg2 {psycopg2.__version__.split()[0]}, autocommit", select_one),
             ("PostgreSQL one-row UPDATE, durable commit (WAL fsync), autocommit", durable_update))
    print(f"One round trip, client side (us), median of {rounds} rounds x {count} back to back, and of {rounds} "
          f"rounds x {IDLE_TRIPS} each after {IDLE_GAP_S * 1000:g} ms idle")
    print("| round trip | CPU | wall | wall after idle |")
    print("|---|---|---|---|")
    for label, trip in trips:
        cpu, wall, after_idle = [], [], []
        for _ in range(rounds):
            for _ in range(200):
                trip()
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            for _ in range(count):
                trip()
            cpu.append((time.process_time() - started_cpu) / count * 1e6)
            wall.append((time.perf_counter() - started_wall) / count * 1e6)
            after_idle.append(statistics.median(_after_idle(trip)) * 1e6)
        print(f"| {label} | {statistics.median(cpu):.0f} | {statistics.median(wall):.0f} | "
              f"{statistics.median(after_idle):.0f} |")
    cursor.execute("DROP TABLE bench_durable_commit")
    print()
    _print_wait_penalty(count, rounds, raw_ping)
    raw.close()
    connection.close()


def _after_idle(trip: Callable[[], None]) -> list[float]:
    """Wall seconds of each of IDLE_TRIPS round trips, each after IDLE_GAP_S of sleep."""
    times = []
    for _ in range(IDLE_TRIPS):
        time.sleep(IDLE_GAP_S)
        started = time.perf_counter()
        trip()
        times.append(time.perf_counter() - started)
    return times


def _print_wait_penalty(count: int, rounds: int, round_trip: Callable[[], None]) -> None:
    """The same Python work (the bench body parsed and validated) timed alone, right after a round trip and
    right after a short sleep: what a wait costs the code that runs after it (cold caches on return)."""
    import json

    from gateway.schemas.compat import ChatCompletionSchema

    schema, raw = ChatCompletionSchema(), BODY.encode()
    before = (("nothing", lambda: None), ("a Redis round trip (raw socket)", round_trip),
              ("a 200 us sleep", lambda: time.sleep(0.0002)))
    print(f"The same work (the body parsed and validated), wall time after each, median of {rounds} rounds x {count}")
    print("| right after | us | x after nothing |")
    print("|---|---|---|")
    alone = None
    for label, wait in before:
        medians = []
        for _ in range(rounds):
            spent = 0.0
            for _ in range(count):
                wait()
                started = time.perf_counter()
                schema.load(json.loads(raw))
                spent += time.perf_counter() - started
            medians.append(spent / count * 1e6)
        figure = statistics.median(medians)
        alone = alone or figure
        print(f"| {label} | {figure:.1f} | {figure / alone:.2f}x |")


# --- the child: one target, measured ------------------------------------------------------------------

def _child(target: str, upstream: str, requests: int, clock: Callable[[], float], idle_s: float = 0.0) -> None:
    """Serve `requests` requests after a warm-up, each after idle_s of sleep; print the total and each step, per
    request, on `clock` (the sleeps outside it)."""
    spent = {label: 0.0 for _, _, label in STEPS}
    for module, path, label in STEPS:  # before the app exists: a hook it registers is the timed function
        _time_calls(module, path, label, spent, clock)
    app, key = _floor(upstream) if target == "floor" else _gateway(target, upstream)
    call = _caller(app, key)
    for _ in range(300):
        call()
    spent.update((label, 0.0) for label in spent)
    total = 0.0
    for _ in range(requests):
        if idle_s:
            time.sleep(idle_s)
        started = clock()
        call()
        total += clock() - started
    print(f"total\t{total / requests * 1e6:.1f}")
    for label, seconds in spent.items():
        if seconds:
            print(f"{label}\t{seconds / requests * 1e6:.1f}")


def _time_calls(module: str, path: str, label: str, spent: dict[str, float], clock: Callable[[], float]) -> None:
    owner = importlib.import_module(module)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)

    def timed(*args, **kwargs):
        started = clock()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += clock() - started

    setattr(owner, name, timed)


def _caller(app, key: str | None) -> Callable[[], None]:
    body = BODY.encode()
    last_status = [""]

    def start_response(status, _headers, _exc_info=None):
        last_status[0] = status

    def call() -> None:
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/chat/completions", "QUERY_STRING": "",
                   "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "3100", "SERVER_PROTOCOL": "HTTP/1.1",
                   "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/json",
                   "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
                   "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.multithread": True,
                   "wsgi.multiprocess": False, "wsgi.run_once": False}
        if key:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        answer = app(environ, start_response)
        for _ in answer:
            pass
        if hasattr(answer, "close"):
            answer.close()
        if not last_status[0].startswith("200"):
            raise SystemExit(f"request refused: {last_status[0]}")

    return call


def _floor(upstream: str):
    import floor_app

    return floor_app.create_app(upstream, 8), None


_SCRATCH: list[tempfile.TemporaryDirectory] = []  # the child's one scratch directory, removed when it exits


def _scratch(name: str) -> str:
    if not _SCRATCH:
        _SCRATCH.append(tempfile.TemporaryDirectory(prefix="dominion-inprocess-"))
    path = Path(_SCRATCH[0].name) / name
    path.mkdir(exist_ok=True)
    return str(path)


def _gateway(target: str, upstream: str):
    settings = {
        "GATEWAY_ENV": "production", "ADMIN_TOKEN": ADMIN_TOKEN, "MOCK_PROVIDER": "off",
        "OPENAI_API_KEY": "sk-bench-openai-key", "OPENAI_BASE_URL": upstream,
        "ANTHROPIC_API_KEY": "sk-ant-bench-key", "ANTHROPIC_BASE_URL": upstream,
        "RATE_LIMIT_MAX": harness.HIGH, "IP_RATE_LIMIT_MAX": harness.HIGH, "DEFAULT_DAILY_REQUESTS": harness.HIGH,
        "DEFAULT_DAILY_TOKENS": "1000000000000", "DEFAULT_MONTHLY_SPEND_CAP_USD": "1000000",
        "PROMPT_LOGGING": "redacted", "UPSTREAM_TIMEOUT_S": "120", "DOTENV_PATH": "/nonexistent",
        "FLASK_SKIP_DOTENV": "1", "PROMETHEUS_MULTIPROC_DIR": _scratch("metrics"),
    }
    if target == "postgres":
        harness.reset_postgres(PG_DB)
        harness.flush_redis(REDIS_DB)
        settings.update(DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{PG_DB}",
                        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:6379/{REDIS_DB}")
    else:
        settings.update(SQLITE_PATH=f"{_scratch('sqlite')}/gateway.db", RATELIMIT_STORAGE_URI="memory://")
    os.environ.update(settings)  # prometheus_client reads PROMETHEUS_MULTIPROC_DIR from the environment
    from flask_migrate import upgrade

    from gateway.app import create_app

    app = create_app(settings)
    with app.app_context():
        upgrade()
    logging.getLogger("gateway").handlers[0].setStream(open(os.devnull, "w"))  # noqa: SIM115 (the process's life)
    client = app.test_client()
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    user = client.post("/admin/users", json={"name": "Bench", "email": "bench@example.com"}, headers=admin)
    key = client.post("/admin/keys", json={"user_id": user.get_json()["id"], "name": "bench"}, headers=admin)
    return app, key.get_json()["api_key"]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        options = sys.argv[5:]
        idle_ms = next((float(o.split("=", 1)[1]) for o in options if o.startswith("--idle=")), 0.0)
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]),
               time.perf_counter if "--wall" in options else time.process_time, idle_ms / 1000)
    else:
        sys.exit(main())
