"""Runs other projects' test suites with each event loop installed: aiohttp's, uvicorn's and
uvloop's, at pinned versions, from their source archives on PyPI; and httpx's, where the
corenet columns also put ``corenet.https`` in httpx's place.

    .venv/bin/python tests/compat/outside_suites.py [--suites aiohttp,uvicorn,uvloop,httpx]
        [--loops asyncio,uvloop,corenet-edge,corenet-level] [--workdir DIR] [--jobs N]
        [--reuse]

Not part of the test command: it needs PyPI (pip) and takes minutes per suite and loop. For
each suite it downloads the pinned source archive, makes a virtual environment in the work
directory with the suite's own pinned test requirements, and runs the suite's tests once
per loop, corenet coming from this source tree (built in place). The loop is installed as
the event loop policy by a small pytest plugin, so every ``asyncio.new_event_loop()`` the
suite makes (aiohttp's ``loop`` fixture, anyio's runner, uvicorn's servers) is the loop
under test; what a test builds explicitly (``asyncio.SelectorEventLoop()``) stays as it is.

uvloop's suite has most tests twice: in an AIO class, whose loop is ``asyncio.new_event_loop()``,
and in a UV class, whose loop is ``uvloop.new_event_loop()``; some tests exist only in the UV
classes (uvloop's own APIs). Stock asyncio runs the AIO classes, every other loop the UV
classes: uvloop itself, and corenet with ``uvloop.new_event_loop`` and
``uvloop.EventLoopPolicy`` made to give corenet's loop and policy (in the test process and in
the Python subprocesses the tests start, through a ``sitecustomize`` in the work directory).
Nothing else of uvloop is replaced: a test that subclasses ``uvloop.Loop``, checks
``isinstance(loop, uvloop.Loop)`` or calls a uvloop-only method fails on corenet, and such
tests are counted apart (the UV-only row). A test of the AIO class and its UV twin are
compared under the UV name. uvloop's plain ``unittest.TestCase`` classes (its policy,
``uvloop.run``, process spawning, linting its own source) test uvloop's package, not a
loop, and are not run.

httpx's suite on corenet runs with ``sys.modules["httpx"]`` set to ``corenet.https`` before
its conftest imports it (the same plugin, in every pytest worker), so each test exercises
corenet's client under httpx's names; on stock asyncio it runs httpx itself, the reference.
Its trio variants are not run (corenet.https runs on asyncio loops), and a test module that
imports a private module of httpx's (``httpx._urlparse``) counts as an error on corenet.

Prints a table of passed / failed / errors / skipped per suite and loop, then for each
corenet loop the tests that passed on stock asyncio and did not pass on it. JUnit files and
the logs stay in the work directory.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
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
    requirements: str | None                # the suite's pinned test requirements, in its archive
    skip_requirements: tuple[str, ...]      # lines of that file not needed to run the tests
    extra: tuple[str, ...]                  # also installed
    pytest_args: tuple[str, ...]            # replaces the suite's own addopts
    env: dict[str, str] = field(default_factory=dict)
    # uvloop's suite: stock asyncio runs the AIO classes, the other loops the UV classes.
    twin_classes: bool = False
    # Directories of the archive removed after unpacking: the package's uncompiled source,
    # which the Python subprocesses the tests start (their sys.path begins with the working
    # directory) would import instead of the installed package.
    shadowing: tuple[str, ...] = ()
    # "package:replacement": on corenet's loops the package's name gives corenet's module.
    replaced: str | None = None
    # One pytest process: the suite's servers listen on fixed ports (httpx's on 8000).
    serial: bool = False


# uvloop's tests that look up names only the host's resolver knows (example.com), which send
# queries off the machine: not run.
UVLOOP_OFF_MACHINE = [
    *(f"test_dns.py::{cls}::test_getaddrinfo_{n}" for cls in ("Test_UV_DNS", "Test_AIO_DNS")
      for n in (1, 2, 3, 4, 5, 6, 11, 21, 22)),
    "test_dns.py::Test_UV_DNS::test_getaddrinfo_close_loop",
    "test_udp.py::Test_UV_UDP::test_udp_sendto_dns",
]

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
    "uvloop": Suite(
        name="uvloop", version="0.22.1",
        # Its test extra lives in pyproject.toml; less flake8, pycodestyle and mypy, which only
        # lint uvloop's own source.
        requirements=None, skip_requirements=(),
        extra=("aiohttp==3.14.5", "psutil==7.2.2", "pyOpenSSL==25.3.0", "pytest==9.2.0",
               "pytest-xdist==3.8.0", "pytest-timeout==2.4.0"),
        # The suite's own options (its process tests redirect the test process's own standard
        # output, which pytest must not capture); importlib mode imports the tests without
        # putting the archive's directory on sys.path.
        pytest_args=("-o", "addopts=", "-p", "xdist", "--capture=no", "--assert=plain",
                     "--strict-markers",
                     "--tb=native", "--import-mode=importlib",
                     # A test that waits for what a loop never does (uvloop's own behaviour)
                     # would hang: after a minute its worker is ended and replaced, and the
                     # test counts as failed. (The signal method interrupts a test once; a
                     # unittest subtest swallows that and the next one hangs for good.)
                     "-o", "timeout=60", "-o", "timeout_method=thread",
                     "--max-worker-restart=100",
                     *(f"--deselect=tests/{test}" for test in UVLOOP_OFF_MACHINE), "tests"),
        twin_classes=True,
        shadowing=("uvloop",),
    ),
    "httpx": Suite(
        name="httpx", version="0.28.1",
        # The archive has no requirements file: httpx with its extras, and what its tests
        # import; corenet's own dependencies for corenet.https.
        requirements=None, skip_requirements=(),
        extra=("httpx[brotli,zstd,http2,socks,cli]==0.28.1", "pytest==9.2.0",
               "pytest-xdist==3.8.0", "anyio==4.16.0", "trio==0.35.0", "trustme==1.2.1",
               "uvicorn==0.35.0", "chardet==5.2.0", "cryptography", "idna", "httptools",
               "dnspython", "aiohappyeyeballs", "h11", "zlib-ng", "backports.zstd"),
        # Its ini's warning filters (errors) and markers kept; the package's source in the
        # archive is removed so that the installed one (or corenet.https) is what imports.
        # Its tests marked "network" reach hosts on the Internet: not run.
        pytest_args=("-o", "addopts=", "-p", "xdist", "-k", "not trio", "-m", "not network",
                     "--continue-on-collection-errors", "tests"),
        shadowing=("httpx",),
        replaced="httpx:corenet.https",
        serial=True,
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

_replaced = os.environ.get("OUTSIDE_SUITES_REPLACED")
if _replaced:
    import importlib
    import sys

    _name, _, _module = _replaced.partition(":")
    sys.modules[_name] = importlib.import_module(_module)

_classes = os.environ.get("OUTSIDE_SUITES_TWIN_CLASSES")


def pytest_collection_modifyitems(config, items):
    """uvloop's suite: keeps the tests of the classes whose ``implementation`` is
    ``$OUTSIDE_SUITES_TWIN_CLASSES`` ("asyncio" for the AIO classes, "uvloop" for the UV
    ones)."""
    if not _classes:
        return
    keep, drop = [], []
    for item in items:
        cls = getattr(item, "cls", None)
        (keep if getattr(cls, "implementation", None) == _classes else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
'''

# uvloop's suite on corenet: uvloop's loop and policy factories give corenet's, here and in
# every Python the tests start. Imported at start-up from the work directory on PYTHONPATH.
SITECUSTOMIZE = '''\
import os

_kind = os.environ.get("OUTSIDE_SUITES_UVLOOP_IS", "")
if _kind.startswith("corenet-"):
    try:
        import uvloop
    except ImportError:     # a Python without uvloop that a test started: nothing to replace
        uvloop = None
    if uvloop is not None:
        import corenet

        _trigger = _kind.split("-", 1)[1]
        uvloop.new_event_loop = lambda: corenet.new_event_loop(trigger=_trigger)
        uvloop.EventLoopPolicy = lambda: corenet.EventLoopPolicy(trigger=_trigger)
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
        # The archive only; the build tools pip prepares its metadata with come as wheels.
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", suite.name,
             f"{suite.name}=={suite.version}", "-d", workdir])
        with tarfile.open(os.path.join(workdir, f"{suite.name}-{suite.version}.tar.gz")) as tar:
            tar.extractall(workdir, filter="data")
    for name in suite.shadowing:
        shutil.rmtree(os.path.join(src, name), ignore_errors=True)
    if not os.path.exists(python):
        run([sys.executable, "-m", "venv", venv])
        reqs = []
        if suite.requirements:
            with open(os.path.join(src, suite.requirements)) as f:
                lines = [ln for ln in f if not ln.lstrip().startswith(suite.skip_requirements)]
            path = os.path.join(workdir, f"{suite.name}-requirements.txt")
            with open(path, "w") as f:
                f.writelines(lines)
            reqs = ["-r", path]
        # uvicorn's list installs its own archive (-e .[standard]): relative to it.
        run([python, "-m", "pip", "install", "-q", *reqs, *suite.extra, UVLOOP_PIN], cwd=src)
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
    if suite.twin_classes:
        env["OUTSIDE_SUITES_TWIN_CLASSES"] = "asyncio" if loop == "asyncio" else "uvloop"
        env["OUTSIDE_SUITES_UVLOOP_IS"] = loop
    if suite.replaced and loop.startswith("corenet-"):
        env["OUTSIDE_SUITES_REPLACED"] = suite.replaced
    env.pop("PYTHONASYNCIODEBUG", None)
    # The pytest script, not "python -m pytest": the source directory must not come first on
    # sys.path, so that the suite imports the installed package.
    cmd = [os.path.join(os.path.dirname(python), "pytest"), "-p", "outside_loop",
           "-p", "no:cacheprovider", "-q", "-n", "0" if suite.serial else str(jobs),
           f"--junitxml={junit}",
           *suite.pytest_args]
    print(f"== {suite.name} on {loop} (log: {log})", flush=True)
    with open(log, "w") as out:
        subprocess.run(cmd, cwd=src, env=env, stdout=out, stderr=subprocess.STDOUT,
                       timeout=3 * 3600, preexec_fn=default_signal_handling)
    return outcomes(junit)


def default_signal_handling() -> None:
    """The suites' signal tests send SIGINT, SIGHUP and SIGQUIT to the processes they start and
    expect them to die of it. A runner started in the background (nohup, or ``&`` in a
    non-interactive shell) ignores these, and every process it starts would inherit that."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


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
    with open(os.path.join(args.workdir, "sitecustomize.py"), "w") as f:
        f.write(SITECUSTOMIZE)
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
        for label, results in rows(suite, table[suite.name]):
            print(f"| {suite.name} {suite.version}{label} | "
                  + " | ".join(counts(results[loop]) if loop in results else "-"
                               for loop in loops) + " |")
    for suite in suites:
        compared = {loop: compared_names(suite, loop, results)
                    for loop, results in table[suite.name].items()}
        for ref in ("asyncio", "uvloop"):
            base = compared.get(ref)
            if base is None or (ref == "uvloop" and not suite.twin_classes):
                continue
            if ref == "uvloop" and "asyncio" in compared:
                # The tests the AIO classes have are compared with asyncio above.
                base = {t: v for t, v in base.items() if t not in compared["asyncio"]}
            for loop in loops:
                if not loop.startswith("corenet"):
                    continue
                worse = sorted(t for t, v in base.items()
                               if v == "passed" and compared[loop].get(t) != "passed")
                print(f"\n{suite.name}: passed on {ref}, not on {loop}: {len(worse)}")
                for t in worse:
                    print(f"  {t}: {compared[loop].get(t, 'not run')}")


def uv_name(test: str) -> str:
    """The name of an AIO-class test of uvloop's suite in its UV twin class
    (``Test_AIO_TCP`` -> ``Test_UV_TCP``, ``TestAIOSockets`` -> ``TestUVSockets``)."""
    cls, _, name = test.partition("::")
    module, _, last = cls.rpartition(".")
    return f"{module}.{last.replace('AIO', 'UV', 1)}::{name}"


def compared_names(suite: Suite, loop: str, results: dict[str, str]) -> dict[str, str]:
    """``results`` under the names the loops are compared by."""
    if suite.twin_classes and loop == "asyncio":
        return {uv_name(t): v for t, v in results.items()}
    return results


def rows(suite: Suite, by_loop: dict[str, dict[str, str]]):
    """The table's rows for ``suite``: (label, {loop: results}). uvloop's suite has one row
    for the tests both class kinds have and one for those only the UV classes have."""
    if not suite.twin_classes or "asyncio" not in by_loop:
        return [("", by_loop)]
    shared = set(compared_names(suite, "asyncio", by_loop["asyncio"]))
    both = {loop: ({t: v for t, v in res.items() if uv_name(t) in shared}
                   if loop == "asyncio" else {t: v for t, v in res.items() if t in shared})
            for loop, res in by_loop.items()}
    uv_only = {loop: {t: v for t, v in res.items() if t not in shared}
               for loop, res in by_loop.items() if loop != "asyncio"}
    return [(", tests of both class kinds", both), (", tests of the UV classes only", uv_only)]


if __name__ == "__main__":
    main()
