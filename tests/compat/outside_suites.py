"""Runs other projects' test suites with each event loop installed: aiohttp's and uvicorn's,
at pinned versions, from their source archives on PyPI.

    .venv/bin/python tests/compat/outside_suites.py [--suites aiohttp,uvicorn]
        [--loops asyncio,uvloop,corenet-edge,corenet-level] [--workdir DIR] [--jobs N]
        [--reuse]

Not part of the test command: it needs PyPI (pip) and takes minutes per suite and loop. For
each suite it downloads the pinned source archive, makes a virtual environment in the work
directory with the suite's own pinned test requirements, and runs the suite's tests once
per loop, corenet coming from this source tree (built in place). The loop is installed as
the event loop policy by a small pytest plugin, so every ``asyncio.new_event_loop()`` the
suite makes (aiohttp's ``loop`` fixture, anyio's runner, uvicorn's servers) is the loop
under test; what a test builds explicitly (``asyncio.SelectorEventLoop()``) stays as it is.

Prints a table of passed / failed / errors / skipped per suite and loop, then for each
corenet loop the tests that passed on stock asyncio and did not pass on it. JUnit files and
the logs stay in the work directory.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOOPS = ["asyncio", "uvloop", "corenet-edge", "corenet-level"]
UVLOOP_PIN = "uvloop==0.22.1"


@dataclass
class Suite:
    name: str
    version: str
    requirements: str                       # the suite's pinned test requirements, in its archive
    skip_requirements: tuple[str, ...]      # lines of that file not needed to run the tests
    extra: tuple[str, ...]                  # also installed
    pytest_args: tuple[str, ...]            # replaces the suite's own addopts
    env: dict[str, str] = field(default_factory=dict)


SUITES = {
    "aiohttp": Suite(
        name="aiohttp", version="3.14.5",
        requirements="requirements/test.txt",
        # The tests run against the released wheel, not an editable build of the archive.
        skip_requirements=("-e ",),
        extra=("aiohttp==3.14.5",),
        # The suite's own options less coverage; its markers, doctests and time limit kept.
        pytest_args=("-o", "addopts=", "--strict-markers", "--doctest-modules", "-p", "xdist",
                     "-m", "not dev_mode and not autobahn and not internal", "tests"),
    ),
    "uvicorn": Suite(
        name="uvicorn", version="0.35.0",
        requirements="requirements.txt",
        # Documentation, packaging and linting tools.
        skip_requirements=("mkdocs", "build==", "twine==", "ruff==", "mypy==", "types-"),
        extra=("pytest-timeout",),
        pytest_args=("-o", "addopts=", "--strict-config", "--strict-markers", "-p", "xdist",
                     "-o", "timeout=120", "tests"),
    ),
}

# Installed as the event loop policy before the suite's conftest runs (``-p outside_loop``).
PLUGIN = '''\
import asyncio
import os

_kind = os.environ["OUTSIDE_SUITES_LOOP"]
if _kind == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
elif _kind.startswith("corenet-"):
    import corenet
    corenet.install(trigger=_kind.split("-", 1)[1])
elif _kind != "asyncio":
    raise RuntimeError(f"unknown loop {_kind!r}")
'''


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def prepare(suite: Suite, workdir: str) -> tuple[str, str]:
    """Unpacks the suite and makes its environment; returns (source dir, its python)."""
    src = os.path.join(workdir, f"{suite.name}-{suite.version}")
    venv = os.path.join(workdir, f"venv-{suite.name}")
    python = os.path.join(venv, "bin", "python")
    if not os.path.isdir(src):
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             f"{suite.name}=={suite.version}", "-d", workdir])
        with tarfile.open(os.path.join(workdir, f"{suite.name}-{suite.version}.tar.gz")) as tar:
            tar.extractall(workdir, filter="data")
    if not os.path.exists(python):
        run([sys.executable, "-m", "venv", venv])
        with open(os.path.join(src, suite.requirements)) as f:
            lines = [ln for ln in f if not ln.lstrip().startswith(suite.skip_requirements)]
        reqs = os.path.join(workdir, f"{suite.name}-requirements.txt")
        with open(reqs, "w") as f:
            f.writelines(lines)
        # uvicorn's list installs its own archive (-e .[standard]): relative to it.
        run([python, "-m", "pip", "install", "-q", "-r", reqs, *suite.extra, UVLOOP_PIN],
            cwd=src)
    return src, python


def run_suite(suite: Suite, loop: str, src: str, python: str, workdir: str,
              jobs: int, reuse: bool) -> dict[str, str]:
    """Runs the suite on ``loop``; returns each test's outcome (passed/failed/error/skipped).
    With ``reuse``, the outcomes of an earlier run in ``workdir`` are taken if there is one."""
    junit = os.path.join(workdir, f"{suite.name}-{loop}.xml")
    log = os.path.join(workdir, f"{suite.name}-{loop}.log")
    if reuse and os.path.exists(junit):
        print(f"== {suite.name} on {loop}: the earlier run's {junit}", flush=True)
        return outcomes(junit)
    env = {**os.environ, **suite.env, "OUTSIDE_SUITES_LOOP": loop,
           "PYTHONPATH": os.pathsep.join([workdir, REPO])}
    env.pop("PYTHONASYNCIODEBUG", None)
    # The pytest script, not "python -m pytest": the source directory must not come first on
    # sys.path, so that the suite imports the installed package.
    cmd = [os.path.join(os.path.dirname(python), "pytest"), "-p", "outside_loop",
           "-p", "no:cacheprovider", "-q", "-n", str(jobs), f"--junitxml={junit}",
           *suite.pytest_args]
    print(f"== {suite.name} on {loop} (log: {log})", flush=True)
    with open(log, "w") as out:
        subprocess.run(cmd, cwd=src, env=env, stdout=out, stderr=subprocess.STDOUT,
                       timeout=3 * 3600)
    return outcomes(junit)


def outcomes(junit: str) -> dict[str, str]:
    result = {}
    for case in ET.parse(junit).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        if "failure" in kinds:
            result[name] = "failed"
        elif "error" in kinds:
            # A failure in teardown is an error next to the call's outcome: the test failed.
            result[name] = "error"
        elif "skipped" in kinds:
            result[name] = "skipped"
        else:
            result[name] = "passed"
    return result


def counts(results: dict[str, str]) -> str:
    n = {k: sum(1 for v in results.values() if v == k)
         for k in ("passed", "failed", "error", "skipped")}
    return f"{n['passed']} / {n['failed']} / {n['error']} / {n['skipped']}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suites", default=",".join(SUITES))
    ap.add_argument("--loops", default=",".join(LOOPS))
    ap.add_argument("--workdir", default="/tmp/corenet-outside-suites")
    ap.add_argument("--jobs", type=int, default=2, help="pytest-xdist workers")
    ap.add_argument("--reuse", action="store_true",
                    help="take a suite's outcomes on a loop from an earlier run in the work "
                         "directory where there is one")
    args = ap.parse_args()
    suites = [SUITES[s] for s in args.suites.split(",")]
    loops = args.loops.split(",")
    for loop in loops:
        if loop not in LOOPS:
            sys.exit(f"unknown loop {loop!r}: one of {', '.join(LOOPS)}")
    os.makedirs(args.workdir, exist_ok=True)
    with open(os.path.join(args.workdir, "outside_loop.py"), "w") as f:
        f.write(PLUGIN)
    table: dict[str, dict[str, dict[str, str]]] = {}
    for suite in suites:
        src, python = prepare(suite, args.workdir)
        table[suite.name] = {loop: run_suite(suite, loop, src, python, args.workdir, args.jobs,
                                             args.reuse)
                             for loop in loops}
    with open(os.path.join(args.workdir, "results.json"), "w") as f:
        json.dump(table, f)
    print("\n| suite | " + " | ".join(loops) + " |")
    print("|---|" + "---|" * len(loops))
    for suite in suites:
        print(f"| {suite.name} {suite.version} | "
              + " | ".join(counts(table[suite.name][loop]) for loop in loops) + " |")
    for suite in suites:
        base = table[suite.name].get("asyncio")
        if base is None:
            continue
        for loop in loops:
            if not loop.startswith("corenet"):
                continue
            worse = sorted(t for t, v in base.items() if v == "passed"
                           and table[suite.name][loop].get(t) != "passed")
            print(f"\n{suite.name}: passed on asyncio, not on {loop}: {len(worse)}")
            for t in worse:
                print(f"  {t}: {table[suite.name][loop].get(t, 'not run')}")


if __name__ == "__main__":
    main()
