"""Runs modules of CPython's own ``test.test_asyncio`` suite with a chosen event loop.

Usage: python tests/compat/cpython_asyncio.py LOOP [MODULE ...] [--json FILE] [--only FILE]
LOOP is ``asyncio``, ``uvloop`` or ``corenet`` (``corenet-edge``/``corenet-level``).
``--only FILE`` runs just the tests whose ids FILE lists, one a line (of the modules named).

The modules listed in MODULES obtain their loops through the event-loop policy, so installing
a policy puts the loop under test; the suite resets the policy in its teardown, which is why
``asyncio.set_event_loop_policy(None)`` is redirected to the policy under test.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
import unittest

MODULES = [
    "test_locks", "test_queues", "test_taskgroups", "test_timeouts", "test_waitfor",
    "test_threads", "test_futures2", "test_context", "test_tasks",
]
# Networking modules. Their loop-generic classes (EventLoopTestsMixin and friends) build
# ``asyncio.SelectorEventLoop(...)`` themselves; for a corenet run that name is pointed at
# corenet's loop, as uvloop's suite reruns those mixins with its own loop.
NET_MODULES = [
    "test_events", "test_sock_lowlevel", "test_sendfile", "test_buffered_proto",
    "test_subprocess", "test_server", "test_ssl", "test_sslproto", "test_streams",
    "test_protocols", "test_transports",
]


def make_policy(kind: str):
    if kind == "asyncio":
        return asyncio.DefaultEventLoopPolicy()
    if kind == "uvloop":
        import uvloop
        return uvloop.EventLoopPolicy()
    if kind.startswith("corenet"):
        import corenet
        trigger = kind.split("-", 1)[1] if "-" in kind else None
        return corenet.EventLoopPolicy(trigger=trigger)
    raise SystemExit(f"unknown loop {kind!r}")


def install(kind: str) -> None:
    if kind != "asyncio":
        policy = make_policy(kind)

        def selector_loop(selector=None):
            return policy.new_event_loop()

        asyncio.SelectorEventLoop = selector_loop
        asyncio.unix_events.SelectorEventLoop = selector_loop
    real_set = asyncio.events.set_event_loop_policy

    def set_policy(policy):
        real_set(make_policy(kind) if policy is None else policy)

    asyncio.set_event_loop_policy = set_policy
    asyncio.events.set_event_loop_policy = set_policy
    set_policy(None)


class Collector(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed: list[str] = []

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test.id())


def tests_of(suite: unittest.TestSuite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from tests_of(item)
        else:
            yield item


def run_module(name: str, only: set[str] | None = None) -> dict:
    module = __import__(f"test.test_asyncio.{name}", fromlist=["*"])
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    if only is not None:
        suite = unittest.TestSuite(t for t in tests_of(suite) if t.id() in only)
    ids = sorted(t.id() for t in tests_of(suite))
    if hasattr(module, "setUpModule"):
        module.setUpModule()
    stream = open("/dev/null", "w")
    result = unittest.TextTestRunner(stream=stream, resultclass=Collector, verbosity=0).run(suite)
    if hasattr(module, "tearDownModule"):
        module.tearDownModule()
    return {
        "passed": len(result.passed),
        "failed": len(result.failures),
        "errors": len(result.errors),
        "skipped": len(result.skipped),
        "ids": ids,
        "passed_ids": sorted(result.passed),
        "failed_ids": sorted(t.id() for t, _ in result.failures + result.errors),
        "details": {t.id(): tb[-1500:] for t, tb in result.failures + result.errors},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("loop")
    ap.add_argument("modules", nargs="*")
    ap.add_argument("--json")
    ap.add_argument("--only")
    args = ap.parse_args()
    only = None
    if args.only:
        with open(args.only) as f:
            only = {line.strip() for line in f if line.strip()}
    install(args.loop)
    out = {}
    names = args.modules or MODULES
    if names == ["net"]:
        names = NET_MODULES
    elif names == ["all"]:
        names = MODULES + NET_MODULES
    if only is not None:
        names = [n for n in names if any(t.startswith(f"test.test_asyncio.{n}.") for t in only)]
    for name in names:
        t0 = time.monotonic()
        out[name] = run_module(name, only)
        r = out[name]
        print(f"{args.loop:14} {name:16} passed {r['passed']:4} failed {r['failed']:3} "
              f"errors {r['errors']:3} skipped {r['skipped']:3}  ({time.monotonic() - t0:.1f}s)",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
