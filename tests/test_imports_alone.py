"""Every module of the two packages imports first, in an interpreter that has loaded none of
the others: no import cycle is hidden by the order in which a package's ``__init__`` happens
to load things (a lazy ``__init__`` must not turn such an order into a failure of whoever
imports a module directly), and none warns as it is imported. A fresh interpreter that
imports nothing of ours forks a child per module, which imports it and says what went
wrong."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECKER = """\
import json, os, sys
failed = {}
for name in json.loads(sys.argv[1]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            __import__(name)
        except BaseException as e:
            os.write(write, f"{type(e).__name__}: {e}".encode()[:4000])
            os._exit(1)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as r:
        said = r.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        failed[name] = said or "the child died"
print(json.dumps(failed))
"""


def _modules() -> list[str]:
    names = set()
    for package in ("corenet", "resolver"):
        for p in (ROOT / package).rglob("*"):
            if p.suffix not in (".py", ".pyx") or p.stem == "__main__":
                continue
            parts = p.relative_to(ROOT).with_suffix("").parts
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def test_every_module_imports_first():
    modules = _modules()
    assert {"resolver.cache", "resolver.state", "resolver.iterator.algorithm",
            "corenet.https"} <= set(modules)
    done = subprocess.run([sys.executable, "-c", CHECKER, json.dumps(modules)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {}


def test_no_module_warns_as_it_is_imported():
    """A library's warning at import (``UserWarning`` and its kind, such as cryptography's
    deprecations through dnspython) reaches every user of the daemon and the tools on
    stderr: none may come of importing any module."""
    done = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", CHECKER,
                           json.dumps(_modules())], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {}
