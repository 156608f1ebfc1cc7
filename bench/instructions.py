"""Instructions per request, counted by valgrind: a before/after that the box's noise cannot move.

  make bench-instructions    (or: .venv/bin/python bench/instructions.py [floor|sqlite|postgres ...] [--requests N])

On this shared machine the CPU time of the same request drifts by 2x between runs and by 5-10% between
rounds of one run, so a change worth 1% cannot be seen in seconds. This counts the machine instructions
instead (valgrind --tool=callgrind): each target of bench/inprocess.py (its WSGI app called directly with
the body of `make bench`, against nginx's canned upstream) serves 300 requests, and again 300 + N; the
difference over N is what one request costs, start-up and warm-up cancelled. PYTHONHASHSEED is fixed, so two
counts of the same tree agree to ~0.1%. BENCH_BASELINE=<another checkout> counts that tree's targets too
and prints this tree against it.

With --gunicorn the floor and the SQLite gateway are served by gunicorn instead (one worker x 64 threads,
as `make bench-compare` runs them), every process of it under valgrind, and called over one keep-alive
connection: the instructions of the whole served request, gunicorn's HTTP handling included. gunicorn's
loops also wake once per second of wall time, so run it on an idle box: two such counts agreed to ~0.05%,
one taken during a test run read the floor 4.5% high.

What it does not see: the kernel's share (system calls, page faults), time spent waiting, and how fast the
instructions run: a larger working set runs at fewer instructions per cycle (bench/inprocess.py and `make
bench-compare` measure that). Counts run two at a time; each takes about a minute under valgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

WARM = 300  # requests served in both counts: start-up, migrations and warm-up cancel out
BASELINE = Path(os.environ["BENCH_BASELINE"]).resolve() if os.environ.get("BENCH_BASELINE") else None
REDIS_DBS = {"": 12, "baseline-": 13}  # one Redis database per tree: their counts run side by side


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", default=["floor", "sqlite", "postgres"])
    parser.add_argument("--requests", type=int, default=500, help="requests counted per target (after the warm-up)")
    parser.add_argument("--gunicorn", action="store_true", help="served by gunicorn (floor and sqlite only)")
    args = parser.parse_args()
    if args.gunicorn and set(args.targets) - {"floor", "sqlite"}:
        raise SystemExit("--gunicorn counts the floor and the SQLite gateway (one worker each)")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    harness.install_cleanup()
    harness.ensure_tools()
    port, _nginx = harness.start_nginx()
    upstream = f"http://127.0.0.1:{port}/v1"
    runs = [("", target, harness.ROOT) for target in args.targets]
    if BASELINE:
        runs += [("baseline-", target, BASELINE) for target in args.targets if target != "floor"]
    jobs = [(prefix, target, root, served) for prefix, target, root in runs for served in (WARM, WARM + args.requests)]
    count = _count_gunicorn if args.gunicorn else _count
    # gunicorn's counts one at a time: each swaps the harness's process starter while it starts its server.
    with ThreadPoolExecutor(max_workers=1 if args.gunicorn else 2) as pool:
        counts = list(pool.map(lambda job: count(*job, upstream), jobs))
    per_request = {}
    for (prefix, target, _root, served), count in zip(jobs, counts):
        per_request.setdefault(prefix + target, {})[served] = count
    per_request = {name: (c[WARM + args.requests] - c[WARM]) / args.requests for name, c in per_request.items()}
    _print(per_request, args.requests, "served by gunicorn, one connection" if args.gunicorn else "in one process")
    return 0


def _count(prefix: str, target: str, root: Path, served: int, upstream: str) -> int:
    """Instructions valgrind counts in a child serving `served` requests with the gateway of the tree at root
    (bench/inprocess.py of this tree builds both trees' apps alike)."""
    with tempfile.TemporaryDirectory(prefix="dominion-callgrind-") as scratch:
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "0",
               "BENCH_PG_DB": f"dominion_bench_instructions_{prefix.strip('-') or 'now'}_{served}"}
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out", sys.executable, __file__,
             "--child", target, upstream, str(served), str(REDIS_DBS[prefix])],
            capture_output=True, text=True, env=env)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"{prefix}{target} failed under valgrind:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return int(found.group(1))


def _count_gunicorn(prefix: str, target: str, root: Path, served: int, upstream: str) -> int:
    """Instructions of every process of a gunicorn serving `served` requests over one connection: the floor,
    or the SQLite gateway of the tree at root (harness.Gateway, as `make bench-compare` starts it)."""
    import http.client

    from load import BODY

    scratch = Path(tempfile.mkdtemp(prefix="dominion-callgrind-", dir=harness.WORK))
    start, wait_http = harness.start, harness.wait_http

    def under_valgrind(args, log_name, env=None, cwd=harness.ROOT):
        args = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out.%p", *args]
        return start(args, f"callgrind-{log_name}", {**(env or os.environ), "PYTHONHASHSEED": "0"}, cwd)

    harness.start = under_valgrind  # the harness's starts, while this server starts
    harness.wait_http = lambda url, seconds=60, proc=None: wait_http(url, 900, proc)  # start-up is slow under it
    try:
        if target == "floor":
            url, proc = harness.start_floor(upstream, 1, 64)
            headers = {"Content-Type": "application/json"}
        else:
            gateway = harness.Gateway("sqlite", upstream, upstream.removesuffix("/v1"), 1, 64, root=root).start()
            url, proc = gateway.url, gateway.proc
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {gateway.key}"}
    finally:
        harness.start, harness.wait_http = start, wait_http
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    for _ in range(served):
        connection.request("POST", "/v1/chat/completions", body=BODY, headers=headers)
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise SystemExit(f"{prefix}{target} answered {answer.status}")
    connection.close()
    harness.stop(proc, grace_s=600)  # each process writes its count as it exits
    return sum(int(line.split()[-1]) for out in scratch.glob("out.*") for line in out.read_text().splitlines()
               if line.startswith("summary:"))


def _print(per_request: dict[str, float], requests: int, how: str) -> None:
    print(f"Instructions per request {how} (valgrind callgrind, {requests} requests after {WARM}, "
          "PYTHONHASHSEED=0)")
    print("| target | instructions | x floor |")
    print("|---|---|---|")
    floor = per_request.get("floor")
    for name, count in sorted(per_request.items(), key=lambda item: item[0] != "floor"):
        ratio = f"{count / floor:.3f}x" if floor and name != "floor" else ""
        print(f"| {name} | {count:,.0f} | {ratio} |")
    for name, count in per_request.items():
        before = per_request.get(f"baseline-{name}")
        if before:
            print(f"{name}: now / before {count / before:.4f}x ({before:,.0f} -> {count:,.0f}, {count - before:+,.0f})")


def _child(target: str, upstream: str, served: int, redis_db: int) -> None:
    """Build the target's app as bench/inprocess.py does and serve `served` requests; nothing is timed."""
    import inprocess

    inprocess.PG_DB = harness.PG_DB  # this child's own database: counts run side by side
    inprocess.REDIS_DB = redis_db
    app, key = inprocess._floor(upstream) if target == "floor" else inprocess._gateway(target, upstream)
    call = inprocess._caller(app, key)
    for _ in range(served):
        call()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        harness.install_cleanup()  # drops this child's PostgreSQL database when it exits
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(main())
