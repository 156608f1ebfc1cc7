"""`make bench-compare`: the gateway beside the floor and LiteLLM in one run, as ratios, with #16's verdict.

Targets, all on the same canned nginx upstream and the same wrk load, measured round-robin so the box's
drift hits every one alike: the floor (bench/floor_app.py), the gateway on SQLite (1 worker) and on
PostgreSQL + Redis (2 workers), each gthread x BENCH_THREADS, and LiteLLM's proxy. Every figure is also
shown as a ratio to the floor with the same worker count (and throughput to LiteLLM with the same worker
count), each ratio the median of per-round ratios. Then streaming time to first token against the floor,
and the verdict table against the targets of issue #16.

BENCH_BASELINE=<another checkout> (e.g. `git worktree add /tmp/before <commit>`) also runs that tree's
gateways in the same rounds (their own databases) and prints this tree against it: a change's before and
after measured side by side, which this shared box's drift between runs would otherwise drown.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import harness
import litellm_venv
from harness import tree
from load import Figure, Run, table, wrk
from scenarios import (PG_WORKERS, RUNS, SQLITE_WORKERS, STREAM_CHUNKS, STREAM_COUNT, STREAM_GAP_MS, THREADS,
                       WARMUP, databases, env_float, fast_upstream, gateway, stream_once)

LEVELS = [int(x) for x in os.environ.get("BENCH_COMPARE_CONCURRENCY", "1 8").split()]
FLOOR_WORKERS = [int(x) for x in os.environ.get("BENCH_FLOOR_WORKERS", "1 2").split()]
LITELLM_WORKERS = [int(x) for x in os.environ.get("BENCH_LITELLM_WORKERS", "1 2").split()]
COMPARE_DURATION = env_float("BENCH_DURATION", 5)
# Issue #16's targets: CPU/request as a multiple of the floor, added p50 at c=1 over the floor (ms),
# throughput at c=8 as a multiple of LiteLLM with the same workers, added time to first token (ms).
CPU_TARGET = {"sqlite": 2.0, "postgres": 2.5}
P50_TARGET_MS = {"sqlite": 1.5, "postgres": 3.0}
THROUGHPUT_TARGET = 3.0
TTFT_TARGET_MS = 2.0
GAP_TOLERANCE_MS = 1.0
BASELINE = Path(os.environ["BENCH_BASELINE"]).resolve() if os.environ.get("BENCH_BASELINE") else None
# The baseline's own PostgreSQL database and Redis database number.
BASELINE_WHERE = {"root": BASELINE, "pg_db": f"{harness.PG_DB}_baseline", "redis_db": 13} if BASELINE else {}
DB_NAMES = {"sqlite": "SQLite", "postgres": "PG+Redis"}


@dataclass
class Target:
    """One server under load: where to send it, what key, and which processes' CPU is its cost."""

    name: str
    kind: str  # floor | sqlite | postgres | litellm | baseline-sqlite | baseline-postgres
    workers: int
    url: str
    auth: str | None
    pids: Callable[[], list[int]]
    server_pids: Callable[[], list[int]] | None = None  # PostgreSQL backends: reported apart
    runs: dict[int, list[Run]] = field(default_factory=dict)
    server_ms: dict[int, list[float]] = field(default_factory=dict)
    busiest: dict[int, list[float]] = field(default_factory=dict)  # the busiest process's share of the CPU


def _busiest_share(pids: list[int], before: dict[int, float]) -> float:
    """The largest share of the CPU spent since `before` that one of these processes took (the master's is
    ~0): with two workers sharing one listening socket, the connections of a run can all land on one."""
    spent = [harness.cpu_seconds([pid]) - before.get(pid, 0.0) for pid in pids]
    return max(spent) / sum(spent) if sum(spent) > 0 else float("nan")


def _run_once(target: Target, level: int, seconds: float) -> tuple[Run, float, float]:
    """One wrk run; also the CPU the database server spent for it, per request (NaN without one), and the
    busiest of the target's processes' share of its CPU."""
    server = target.server_pids() if target.server_pids else []
    before = harness.cpu_seconds(server)
    own = target.pids()
    own_before = {pid: harness.cpu_seconds([pid]) for pid in own}
    run = wrk(target.url, level, seconds, target.auth, pids=target.pids)
    spent = harness.cpu_seconds(server) - before
    return (run, (spent * 1000 / run.requests if server and run.requests else float("nan")),
            _busiest_share(own, own_before))


def measure(targets: list[Target], level: int) -> None:
    """Warm every target, then RUNS rounds of one run per target back to back, every other round in reverse
    order: a target that always ran after the same one would carry what that one left (a PostgreSQL
    checkpoint, a hot or cold cache) in every round, and a before/after would read it as the change."""
    for target in targets:
        wrk(target.url, level, WARMUP, target.auth)
        target.runs[level], target.server_ms[level], target.busiest[level] = [], [], []
    for round_ in range(RUNS):
        for target in targets if round_ % 2 == 0 else reversed(targets):
            run, server_ms, busiest = _run_once(target, level, COMPARE_DURATION)
            target.runs[level].append(run)
            target.server_ms[level].append(server_ms)
            target.busiest[level].append(busiest)


def _match(targets: list[Target], kind: str, workers: int) -> Target | None:
    """The target of this kind with the same worker count, else the first of its kind."""
    same = [t for t in targets if t.kind == kind]
    return next((t for t in same if t.workers == workers), same[0] if same else None)


def ratio(a: Target, b: Target | None, level: int, metric: str) -> Figure | None:
    """a/b per round (runs made back to back), as median [min..max]."""
    if b is None:
        return None
    return Figure.of([getattr(x, metric) / getattr(y, metric) for x, y in zip(a.runs[level], b.runs[level])])


def added(a: Target, b: Target, level: int, metric: str) -> Figure:
    """a - b per round, as median [min..max]."""
    return Figure.of([getattr(x, metric) - getattr(y, metric) for x, y in zip(a.runs[level], b.runs[level])])


def _x(figure: Figure | None) -> str:
    """A ratio as '4.12x [3.90..4.40]' (the spread only when the runs differ)."""
    if figure is None:
        return "n/a"
    spread = f" [{figure.low:.2f}..{figure.high:.2f}]" if figure.low != figure.high else ""
    return f"{figure.median:.2f}x{spread}"


def _signed(figure: Figure, digits: int = 2) -> str:
    """A difference as '+6.16 [+5.18..+8.34]' (or '-0.08 ...'), the spread only when the runs differ."""
    spread = f" [{figure.low:+.{digits}f}..{figure.high:+.{digits}f}]" if figure.low != figure.high else ""
    return f"{figure.median:+.{digits}f}{spread}"


def _fig(target: Target, level: int, metric: str) -> Figure:
    return Figure.of([getattr(run, metric) for run in target.runs[level]])


def _split(target: Target, level: int) -> str:
    """Each run's busiest process's share of the CPU, in run order (multi-worker targets only): 50% is an
    even split of the connections, 100% all of them on one worker."""
    if target.workers < 2:
        return ""
    return " ".join(f"{share:.0%}" for share in target.busiest[level])


def load_table(targets: list[Target]) -> str:
    """One row per target and level: each figure, and the same as a multiple of floor / LiteLLM."""
    rows = []
    for level in LEVELS:
        for t in targets:
            floor, litellm = _match(targets, "floor", t.workers), _match(targets, "litellm", t.workers)
            to_floor = (lambda metric: "") if t is floor else (lambda metric: _x(ratio(t, floor, level, metric)))
            server = [x for x in t.server_ms[level] if x == x]
            rows.append([str(level), t.name, _fig(t, level, "cpu_ms").show(3), to_floor("cpu_ms"),
                         _fig(t, level, "rps").show(0), to_floor("rps"),
                         "" if t is litellm else _x(ratio(t, litellm, level, "rps")),
                         _fig(t, level, "p50_ms").show(), to_floor("p50_ms"),
                         "" if t is floor else _signed(added(t, floor, level, "p50_ms")),
                         _fig(t, level, "p99_ms").show(), str(sum(r.errors for r in t.runs[level])),
                         Figure.of(server).show(3) if server else "", _split(t, level)])
    head = ["c", "target", "CPU ms/req", "x floor", "req/s", "x floor", "x LiteLLM", "p50 ms", "x floor",
            "p50 - floor ms", "p99 ms", "errors", "+ PostgreSQL server ms/req", "busiest worker's CPU share"]
    return table(head, rows)


# ---- streaming -------------------------------------------------------------------------------------

def streaming(databases: list[str]) -> tuple[str, dict[str, dict[str, Figure]]]:
    """Time to first token and gap between chunks through the floor and each gateway, streams interleaved."""
    up_port, _ = harness.start_upstream()
    path = f"/stream/{STREAM_CHUNKS}/{STREAM_GAP_MS}/v1"
    base = f"http://127.0.0.1:{up_port}{path}"
    floor_url, floor_proc = harness.start_floor(base, SQLITE_WORKERS, THREADS)
    ports = {"floor": (int(floor_url.rsplit(":", 1)[1]), None)}
    gateways = []
    try:
        for db in databases:
            gw = gateway(db, base, f"http://127.0.0.1:{up_port}")
            gateways.append(gw)
            ports[db] = (gw.port, gw.key)
            if BASELINE:
                before = gateway(db, base, f"http://127.0.0.1:{up_port}", **BASELINE_WHERE)
                gateways.append(before)
                ports[f"baseline-{db}"] = (before.port, before.key)
        samples = {name: [] for name in ports}
        legs = {name: [] for name in ports}  # (to the upstream, upstream's first chunk -> client), seconds
        for name, (port, key) in ports.items():
            stream_once(port, "/v1/chat/completions", key, STREAM_CHUNKS)  # warm
        for _ in range(STREAM_COUNT):
            for name, (port, key) in ports.items():
                _first, arrivals, sent_at = stream_once(port, "/v1/chat/completions", key, STREAM_CHUNKS)
                samples[name].append(arrivals)
                legs[name].append(_legs(up_port, sent_at, sent_at + arrivals[0]))
    finally:
        for gw in gateways:
            gw.stop()
        harness.stop(floor_proc)
    ms = lambda xs: Figure.of([x * 1000 for x in xs])
    gap = lambda arrivals: (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)
    figures, rows = {}, []
    for name, arrivals in samples.items():
        floor = samples["floor"]
        figures[name] = {"ttft_added": ms([a[0] - f[0] for a, f in zip(arrivals, floor)]),
                         "ttft_samples": [a[0] * 1000 for a in arrivals],
                         "gap_added": ms([gap(a) - gap(f) for a, f in zip(arrivals, floor)])}
        leg = lambda i: "" if name == "floor" else _signed(
            ms([mine[i] - theirs[i] for mine, theirs in zip(legs[name], legs["floor"])]))
        rows.append([name, ms([a[0] for a in arrivals]).show(),
                     "" if name == "floor" else _signed(figures[name]["ttft_added"]),
                     ms([x[0] for x in legs[name]]).show(), leg(0), ms([x[1] for x in legs[name]]).show(), leg(1),
                     ms([gap(a) for a in arrivals]).show(3),
                     "" if name == "floor" else _signed(figures[name]["gap_added"], 3),
                     ms([a[-1] for a in arrivals]).show()])
    labels = ", ".join(f"{gw.db}: {gw.label()}" for gw in gateways if gw.root == harness.ROOT)
    title = (f"Streaming: {STREAM_CHUNKS} chunks {STREAM_GAP_MS} ms apart from the Python SSE upstream, "
             f"{STREAM_COUNT} streams per target interleaved, median [min..max] ms; floor {SQLITE_WORKERS} worker(s) "
             f"x {THREADS} threads; {labels}")
    title += ("\n  The first token's time in two legs, from the upstream's own clock: sent -> the upstream has the "
              "request (the work before the upstream call), and the upstream writes its first chunk -> the client "
              "has the first token (the work on that chunk, the response head, the after-request hooks).")
    head = ["target", "first token ms", "added to floor", "to the upstream", "added", "first chunk to client",
            "added", "mean gap between chunks", "added to floor", f"last token (chunk {STREAM_CHUNKS})"]
    return title + "\n" + table(head, rows), figures


def _legs(up_port: int, sent_at: float, first_token_at: float) -> tuple[float, float]:
    """(sent -> the upstream had the request, its first chunk written -> the client had the first token) of
    the stream just finished, from the upstream's wall-clock timeline (same host, same clock)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{up_port}/timeline", timeout=10) as answer:
        times = json.load(answer)
    return times["received"] - sent_at, first_token_at - times["first_chunk"]


# ---- verdict ---------------------------------------------------------------------------------------

def _verdict(value: Figure | None, limit: float, higher_is_better: bool = False, errors: int = 0) -> str:
    if value is None:
        return "not measured"
    ok = (lambda x: x >= limit) if higher_is_better else (lambda x: x <= limit)
    word = "**met**" if ok(value.median) else "**missed**"
    if ok(value.low) != ok(value.high):
        word += " (runs straddle the target)"
    return word + (f", {errors} errors" if errors else "")


def verdict_table(targets: list[Target], stream: dict[str, dict[str, Figure]]) -> str:
    """Issue #16's targets, each with the figure measured in this run and met/missed."""
    rows = []
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL + Redis"}
    gateways = [t for t in targets if t.kind in names]
    errors = lambda t, level: sum(r.errors for r in t.runs[level])
    for gw in gateways:
        floor = _match(targets, "floor", gw.workers)
        for level in (1, 8):
            target = f"CPU/request <= {CPU_TARGET[gw.kind]:.1f}x floor, {names[gw.kind]}, c={level}"
            if level not in LEVELS:
                rows.append([target, "not measured", "not measured"])
                continue
            value = ratio(gw, floor, level, "cpu_ms")
            rows.append([target, f"{_x(value)} ({_fig(gw, level, 'cpu_ms').show(2, False)} vs "
                                 f"{_fig(floor, level, 'cpu_ms').show(2, False)} ms, floor {floor.workers}w)",
                         _verdict(value, CPU_TARGET[gw.kind], errors=errors(gw, level))])
    for gw in gateways:
        floor = _match(targets, "floor", gw.workers)
        target = f"p50 at c=1 <= floor + {P50_TARGET_MS[gw.kind]:g} ms, {names[gw.kind]}"
        if 1 not in LEVELS:
            rows.append([target, "not measured", "not measured"])
            continue
        value = added(gw, floor, 1, "p50_ms")
        rows.append([target, f"{_signed(value)} ms ({_fig(gw, 1, 'p50_ms').show(2, False)} vs "
                             f"{_fig(floor, 1, 'p50_ms').show(2, False)} ms)",
                     _verdict(value, P50_TARGET_MS[gw.kind], errors=errors(gw, 1))])
    for gw in gateways:
        litellm = next((t for t in targets if t.kind == "litellm" and t.workers == gw.workers), None)
        target = (f"req/s at c=8 >= {THROUGHPUT_TARGET:g}x LiteLLM with the same workers, "
                  f"{names[gw.kind]} ({gw.workers}w)")
        if litellm is None or 8 not in LEVELS:
            rows.append([target, f"not measured (no LiteLLM with {gw.workers} worker(s) at c=8)", "not measured"])
            continue
        value = ratio(gw, litellm, 8, "rps")
        rows.append([target, f"{_x(value)} ({_fig(gw, 8, 'rps').show(0, False)} vs "
                             f"{_fig(litellm, 8, 'rps').show(0, False)} req/s)",
                     _verdict(value, THROUGHPUT_TARGET, higher_is_better=True,
                              errors=errors(gw, 8) + errors(litellm, 8))])
    for gw in gateways:
        figures = stream.get(gw.kind)
        rows.append([f"streaming: time to first token <= floor + {TTFT_TARGET_MS:g} ms, {names[gw.kind]}",
                     f"{_signed(figures['ttft_added'])} ms" if figures else "not measured",
                     _verdict(figures and figures["ttft_added"], TTFT_TARGET_MS)])
        rows.append([f"streaming: no buffering (gap between chunks within floor's + {GAP_TOLERANCE_MS:g} ms), "
                     f"{names[gw.kind]}",
                     f"{_signed(figures['gap_added'], 3)} ms" if figures else "not measured",
                     _verdict(figures and figures["gap_added"], GAP_TOLERANCE_MS)])
    return table(["target (issue #16)", "measured in this run (median [min..max] of per-round figures)",
                  "verdict"], rows)


# ---- before and after ------------------------------------------------------------------------------

def baseline_table(targets: list[Target], stream: dict[str, dict[str, Figure]]) -> str:
    """This tree against BENCH_BASELINE, per round: CPU and req/s as ratios, p50 and first token as ms added."""
    rows = []
    for db in databases():
        now, before = _match(targets, db, 0), _match(targets, f"baseline-{db}", 0)
        for level in LEVELS:
            rows.append([DB_NAMES[db], str(level), _x(ratio(now, before, level, "cpu_ms")),
                         _x(ratio(now, before, level, "rps")), _signed(added(now, before, level, "p50_ms")) + " ms",
                         f"{_fig(before, level, 'cpu_ms').show(3, False)} -> "
                         f"{_fig(now, level, 'cpu_ms').show(3, False)}"])
        if db in stream and f"baseline-{db}" in stream:
            pairs = zip(stream[db]["ttft_samples"], stream[f"baseline-{db}"]["ttft_samples"])
            change = Figure.of([a - b for a, b in pairs])
            rows.append([DB_NAMES[db], "stream", "", "", f"first token {_signed(change)} ms", ""])
    head = ["db", "c", "CPU/request now / before", "req/s now / before", "p50 now - before", "CPU ms/req before -> now"]
    return f"This tree against BENCH_BASELINE={BASELINE}, same rounds\n" + table(head, rows)


# ---- the scenario ----------------------------------------------------------------------------------

def start_targets(openai_base: str, anthropic_base: str, litellm_problem: str | None) -> tuple[list[Target], list]:
    """Floor(s), both gateways and LiteLLM(s), all started before any load so every round sees them all."""
    targets, stoppers = [], []
    for workers in FLOOR_WORKERS:
        url, proc = harness.start_floor(openai_base, workers, THREADS)
        targets.append(Target(f"floor ({workers}w)", "floor", workers, f"{url}/v1/chat/completions", None,
                              lambda proc=proc: tree(proc.pid)))
        stoppers.append(lambda proc=proc: harness.stop(proc))
    for db in databases():
        for label, kind, where in [("gateway", db, {})] + ([("baseline", f"baseline-{db}", BASELINE_WHERE)]
                                                            if BASELINE else []):
            gw = gateway(db, openai_base, anthropic_base, **where)
            stoppers.append(gw.stop)
            targets.append(Target(f"{label} {DB_NAMES[db]} ({gw.workers}w)", kind, gw.workers,
                                  f"{gw.url}/v1/chat/completions", gw.auth, gw.pids,
                                  gw.server_pids if db == "postgres" else None))
    if litellm_problem is None:
        for workers in LITELLM_WORKERS:
            url, master, proc = harness.start_litellm(openai_base, workers=workers)
            targets.append(Target(f"LiteLLM ({workers}w)", "litellm", workers, f"{url}/v1/chat/completions",
                                  master, lambda proc=proc: tree(proc.pid)))
            stoppers.append(lambda proc=proc: harness.stop(proc))
    return targets, stoppers


def compare() -> str:
    """The whole comparison: load table, streaming table and verdict, with what was measured how."""
    if not FLOOR_WORKERS:
        raise SystemExit("BENCH_FLOOR_WORKERS is empty: every ratio is to a floor, so run at least one")
    litellm_problem = litellm_venv.ensure()
    openai_base, anthropic_base, _ = fast_upstream()
    targets, stoppers = start_targets(openai_base, anthropic_base, litellm_problem)
    # Only where a PostgreSQL gateway runs: its benchmark database exists only then (not with BENCH_DB=sqlite).
    commit_probe = harness.postgres_commit_ms if "postgres" in databases() else lambda: None
    try:
        commit_ms = [commit_probe()]
        for level in LEVELS:
            measure(targets, level)
            print(f"  compare c={level} done", flush=True)
        commit_ms.append(commit_probe())
    finally:
        for stop in reversed(stoppers):
            stop()
    stream_text, stream = streaming(databases())
    before_text = [baseline_table(targets, stream)] if BASELINE else []
    litellm_line = (f"LiteLLM  = litellm[proxy] {litellm_venv.version()}, {'/'.join(map(str, LITELLM_WORKERS))} "
                    "worker(s), master key, no database, no budgets, offline cost map, telemetry off"
                    if litellm_problem is None else
                    f"LiteLLM  = NOT MEASURED: litellm[proxy] could not be installed here ({litellm_problem})")
    title = (f"Side by side on the canned nginx upstream, wrk -t1, median of {RUNS} rounds x {COMPARE_DURATION:g}s "
             f"(targets round-robin within each round), [min..max]; ratios are per-round, against the floor with "
             f"the same worker count and LiteLLM with the same worker count.\n"
             f"  floor    = bench/floor_app.py: Flask + pooled requests.Session, gunicorn gthread "
             f"{'/'.join(map(str, FLOOR_WORKERS))} worker(s) x {THREADS} threads, no governance\n"
             f"  gateway  = every guarantee on (auth, both rate limits, reservation, settlement, audit row); "
             f"SQLite {SQLITE_WORKERS}w + memory:// limiter, PostgreSQL {PG_WORKERS}w + Redis limiter, x {THREADS} threads\n"
             f"  {litellm_line}\n"
             f"  CPU ms/req = utime+stime of the target's whole process tree from /proc; PostgreSQL's own server "
             f"processes are shown apart, Redis's not at all (shared with the box)\n"
             f"  busiest worker's CPU share = for each run of a multi-worker target, the largest share of its CPU "
             f"one process took: 50% when wrk's connections split evenly over two workers, 100% when all landed "
             f"on one (they share one listening socket; such a run costs more CPU per request)"
             + (f"\n  PostgreSQL durable commit on this box (one-row UPDATE + COMMIT, WAL fsync), p50 before / after "
                f"the load: {commit_ms[0]:.2f} / {commit_ms[1]:.2f} ms; the gateway commits twice per request"
                if commit_ms[0] is not None else ""))
    return "\n\n".join([title + "\n" + load_table(targets), stream_text, *before_text,
                        "Verdict against issue #16's targets\n" + verdict_table(targets, stream)])
