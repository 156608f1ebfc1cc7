"""Dominion Gateway benchmark: `make bench` (and friends) run this; see docs/performance.md.

  run.py [overhead|stream|capacity|growth|soak|profile|compare ...]   (default: the `make bench` set)

Durations and sizes come from BENCH_* environment variables (scenarios.py lists them). Output goes to
stdout and to bench/results/last-<scenarios>.txt; every process started is stopped at exit.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare  # noqa: E402
import cpu_profile  # noqa: E402
import harness  # noqa: E402
import scenarios  # noqa: E402

DEFAULT = ["overhead", "stream", "capacity", "growth", "soak"]
SCENARIOS = {"overhead": lambda: scenarios.overhead_table()[0], "stream": scenarios.streaming,
             "capacity": scenarios.capacity, "growth": scenarios.growth, "soak": scenarios.soak,
             "profile": cpu_profile.profile, "compare": compare.compare}


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    mem_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")))
    load = os.getloadavg()
    return (f"Machine: {os.cpu_count()} CPUs ({model}), {mem_kib / 1024 / 1024:.1f} GiB RAM, Python "
            f"{platform.python_version()}, load average before start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {' '.join(unknown)}; choose from {' '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    harness.install_cleanup()
    harness.ensure_tools()
    harness.RESULTS.mkdir(exist_ok=True)
    for old in harness.RESULTS.glob("*.log"):
        old.unlink()
    sections = [f"Dominion Gateway benchmark, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
                machine()]
    print("\n".join(sections), flush=True)
    for name in names:
        started = time.time()
        print(f"\n== {name} ...", flush=True)
        text = SCENARIOS[name]()
        harness.stop_all()
        text += (f"\n({name}: {time.time() - started:.0f}s; load average at the end "
                 f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}: other processes on the machine skew figures)")
        print(text, flush=True)
        sections.append(text)
    out = harness.RESULTS / f"last-{'-'.join(names)}.txt"
    out.write_text("\n\n".join(sections) + "\n")
    print(f"\nsaved to {out.relative_to(harness.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or DEFAULT))
