"""Side-by-side loop figures for BENCHMARKS.md: every (workload, loop) cell is timed in a fresh
process, rounds interleaved across loops, the best of the rounds kept, ratios taken within the
same run.

    .venv/bin/python benchmarks/loop_report.py [--rounds 5] [--scale 1.0] [--cpu 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from loop_workloads import LOOPS, WORKLOADS  # noqa: E402

CHILD = """
import sys, time, json
sys.path.insert(0, {here!r})
from loop_workloads import WORKLOADS, new_loop
fn, n = WORKLOADS[{name!r}]
n = max(1, int(n * {scale}))
loop = new_loop({kind!r})
fn(loop, max(1, n // 20))   # warm up
t0 = time.perf_counter(); c0 = time.process_time()
fn(loop, n)
t1 = time.perf_counter(); c1 = time.process_time()
loop.close()
print(json.dumps({{"ops": n / (t1 - t0), "cpu_per_op_us": (c1 - c0) / n * 1e6}}))
"""


def cell(name: str, kind: str, scale: float, cpu: str | None) -> dict | None:
    cmd = [sys.executable, "-c", CHILD.format(here=HERE, name=name, kind=kind, scale=scale)]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(p.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--cpu", default=None, help="pin every cell to this core (taskset -c)")
    ap.add_argument("--loops", default=",".join(LOOPS))
    args = ap.parse_args()
    loops = args.loops.split(",")
    best: dict[tuple[str, str], dict] = {}
    for r in range(args.rounds):
        for name in WORKLOADS:
            for kind in loops:
                res = cell(name, kind, args.scale, args.cpu)
                key = (name, kind)
                if "error" in res:
                    best.setdefault(key, res)
                    continue
                if "ops" not in best.get(key, {}) or res["ops"] > best[key]["ops"]:
                    best[key] = res
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    head = "| workload | " + " | ".join(f"{k} ops/s" for k in loops) + " | corenet/uvloop | corenet/asyncio | corenet/rloop |"
    print(head)
    print("|" + "---|" * (len(loops) + 4))
    for name in WORKLOADS:
        row = [name]
        for kind in loops:
            res = best.get((name, kind), {})
            row.append(f"{res['ops'] / 1e3:,.0f}k" if "ops" in res else f"n/a ({res.get('error', '')[:40]})")
        def ratio(a, b):
            x, y = best.get((name, a), {}), best.get((name, b), {})
            return f"{x['ops'] / y['ops']:.2f}×" if "ops" in x and "ops" in y else "n/a"
        row += [ratio("corenet", "uvloop"), ratio("corenet", "asyncio"), ratio("corenet", "rloop")]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
