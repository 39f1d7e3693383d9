"""``python -m dnslab [--port P] [--dir D] [--unbound]`` (from tests/resolver): run the lab
in the foreground for benchmarks and manual runs; prints its port and root hints; Ctrl-C
stops. ``--unbound`` also runs Unbound over it (needs ``--port 53``) and prints its address."""
from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading

from .lab import Lab
from .nsd import LabError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dnslab", description=__doc__)
    ap.add_argument("--port", type=int, default=None, help="port for every server (default: a free one)")
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--unbound", action="store_true",
                    help="also run Unbound resolving from the lab (needs --port 53)")
    args = ap.parse_args(argv)
    if args.unbound and args.port != 53:
        ap.error("--unbound needs --port 53: Unbound asks authorities on port 53 only")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="dnslab-") as tmp:
        try:
            lab = Lab.start(args.dir or tmp, port=args.port)
        except LabError as e:
            print(f"dnslab: {e}", file=sys.stderr)
            return 1
        unbound = None
        try:
            if args.unbound:
                from .unbound import Unbound

                unbound = Unbound.start(lab.workdir / "unbound", lab)
            print(lab.describe(), flush=True)
            print(f"PORT={lab.port}", flush=True)
            print("ROOT_HINTS=" + ",".join(f"{n}={a}" for n, a in lab.root_hints), flush=True)
            print(f"ROOT_HINTS_FILE={lab.root_hints_file}", flush=True)
            if unbound is not None:
                print(f"UNBOUND={unbound.address}:{unbound.port}", flush=True)
            stop.wait()
        except LabError as e:
            print(f"dnslab: {e}", file=sys.stderr)
            return 1
        finally:
            if unbound is not None:
                unbound.stop()
            lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
