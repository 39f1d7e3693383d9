"""User-space instructions per request of the echo server, counted by callgrind.

The echo table (``test_echo.py``) measures time, and this host's noise moves a cell by
10-30% from one fresh process to the next, more than most changes to the loop. An
instruction count does not move: run each server of the echo table under
``valgrind --tool=callgrind``, drive it with the same C client, and divide the instructions
its process executed in user space (Python, the loop, libc) by the requests it served. The
kernel's share (the copies and loopback TCP, most of the server's CPU) is not counted, and
neither are cache misses, so this shows what the loop itself costs, not the whole request.

    .venv/bin/python benchmarks/echo_instructions.py [--modes protocol,streams]
        [--sizes 1024,10240] [--loops uvloop,corenet-edge] [-n 30000] [--split]

``--split`` also gives each cell's instructions by where they ran: the loop's own extension
modules (corenet's or uvloop's), asyncio's C module (``_asyncio``: futures and tasks), the
C library, and the rest, the interpreter running Python code (in ``streams`` mode asyncio's
``StreamReader``, ``StreamWriter`` and ``StreamReaderProtocol``, and the server's
coroutine).

Needs valgrind (callgrind_control) and gcc. Cells run one at a time; about 10 minutes for
the default nine cells and two loops.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(os.path.dirname(HERE), "tests")]

import test_echo as te  # noqa: E402  (the same server program and socket settings)
from procs import sigterm_as_interrupt  # noqa: E402

WARMUP_REQUESTS = 2000
# A fixed hash seed removes one cause of variation between runs: how often the dict lookups
# of attributes and methods probe past a collision. What remains (how many connections each
# epoll_wait returns, memory layout) still moves a cell by about 1%.
ENV = {**te.ENV, "PYTHONHASHSEED": "0"}


def callgrind_summary(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no summary line in {path}")


#: The parts of ``--split``: a part's name and how its shared objects' paths look.
PARTS = [("the loop", ("/corenet/", "/uvloop/")), ("_asyncio", ("/_asyncio.",)),
         ("C library", ("/libc.so", "/ld-linux"))]


def split(dump: str, n: int) -> dict[str, float]:
    """Instructions per request of the dump by PARTS, the interpreter holding the rest.
    Taken from each function's own cost (``callgrind_annotate``); a row as large as the
    whole window (``main`` and the frames that were running when the counters were
    zeroed, which the dump charges with everything under them) is left out."""
    total = callgrind_summary(dump)
    out = subprocess.run(["callgrind_annotate", "--threshold=100", dump], check=True,
                         capture_output=True, text=True, timeout=600).stdout
    parts = dict.fromkeys([name for name, _ in PARTS], 0)
    for line in out.split("file:function", 1)[-1].splitlines():
        cost, _, rest = line.strip().partition(" ")
        if not cost[:1].isdigit() or "[" not in rest:
            continue
        count = int(cost.replace(",", ""))
        obj = rest.rsplit("[", 1)[1]
        for name, marks in PARTS:
            if count < 0.99 * total and any(m in obj for m in marks):
                parts[name] += count
    parts["the interpreter"] = total - sum(parts.values())
    return {name: count / n for name, count in parts.items()}


def instructions_per_request(client: str, kind: str, mode: str, size: int, n: int,
                             workdir: str, parts: bool = False) -> float | dict[str, float]:
    """The server's user-space instructions per request; with ``parts``, split by
    ``split`` (with the total under "total")."""
    out = os.path.join(workdir, f"cg.{kind}.{mode}.{size}")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c",
         te.SERVER, kind, mode, str(te.SOCKBUF), str(size)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=ENV, cwd=workdir)
    try:
        port = server.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"{kind}/{mode} server did not start under valgrind")
        load = [client, "127.0.0.1", port, str(te.CONNS), str(size), "-b", str(te.SOCKBUF)]
        subprocess.run(load + ["-n", str(WARMUP_REQUESTS)], check=True, capture_output=True,
                       timeout=600)
        # Zero the counters after the warm-up, dump them after the measured requests: the
        # dump (out.1) holds exactly the measured window.
        subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True,
                       capture_output=True, timeout=60)
        subprocess.run(load + ["-n", str(n)], check=True, capture_output=True, timeout=1800)
        subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True,
                       capture_output=True, timeout=60)
    finally:
        server.stdin.close()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if parts:
        return {"total": callgrind_summary(out + ".1") / n, **split(out + ".1", n)}
    return callgrind_summary(out + ".1") / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default=",".join(te.MODES))
    ap.add_argument("--sizes", default=",".join(str(s) for s in te.SIZES))
    ap.add_argument("--loops", default="uvloop,corenet-edge")
    # The measured window holds the client's connecting too: 10 accepts and their
    # protocols. Spread over 30,000 requests that set-up is under 100 instructions a request.
    ap.add_argument("-n", type=int, default=30000, help="measured requests per cell")
    ap.add_argument("--split", action="store_true",
                    help="also each cell's instructions by where they ran")
    args = ap.parse_args()
    sigterm_as_interrupt()         # a terminated run still stops its server
    for tool in ("valgrind", "callgrind_control", "gcc"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed")
    loops = args.loops.split(",")
    with tempfile.TemporaryDirectory() as workdir:
        client = os.path.join(workdir, "echo_client")
        subprocess.run(["gcc", "-O2", "-o", client, os.path.join(HERE, "echo_client.c")],
                       check=True)
        splits: list = []
        print("| mode | size | " + " | ".join(loops) + " | ratio to " + loops[0] + " |")
        print("|---|---:|" + "---:|" * len(loops) + "---|")
        for mode in args.modes.split(","):
            for size in (int(s) for s in args.sizes.split(",")):
                cells = [instructions_per_request(client, k, mode, size, args.n, workdir,
                                                  args.split) for k in loops]
                counts = [c["total"] if args.split else c for c in cells]
                ratios = ", ".join(f"{counts[0] / c:.2f}×" for c in counts[1:])
                print(f"| {mode} | {size // 1024} KiB | "
                      + " | ".join(f"{c:,.0f}" for c in counts) + f" | {ratios} |", flush=True)
                if args.split:
                    splits.extend((mode, size, k, c) for k, c in zip(loops, cells))
        if splits:
            names = [name for name in splits[0][3] if name != "total"]
            print("\n| mode | size | loop | " + " | ".join(names) + " |")
            print("|---|---:|---|" + "---:|" * len(names))
            for mode, size, k, c in splits:
                print(f"| {mode} | {size // 1024} KiB | {k} | "
                      + " | ".join(f"{c[name]:,.0f}" for name in names) + " |")


if __name__ == "__main__":
    main()
