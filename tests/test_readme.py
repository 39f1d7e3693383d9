"""README.md's Python examples run as written: each block, alone, in a fresh interpreter, on
loopback with free ports, with no network.

A block is not run only if its section is in ``NOT_RUN``, with the reason: the examples of a
section there need what a test machine need not have (the Internet, a running daemon). An
entry that names no section with a Python block fails, so the list cannot go stale.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ci_policy import unavailable

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Section heading -> why its Python blocks are not run.
NOT_RUN: dict[str, str] = {
    "HTTPS": "fetches https://example.org/ (the Internet); tests/https covers the client",
    "The resolver": "recurses from the real root servers (the Internet); tests/resolver covers it",
    "dnspython's sync API": "asks the nameservers of /etc/resolv.conf (the host's resolver); "
                            "tests/resolver/test_sync_resolver.py runs it against the lab",
}

# Section heading -> what its block prints (its output is part of what the README promises).
EXPECTED_OUTPUT: dict[str, str] = {
    "The loop": "Loop\n" * (4 if sys.version_info >= (3, 12) else 3),
    "The framer": "b'hello'\n",
    "Coming from dnspython": "192.0.2.7 printer.lan.\nno ANY, as in dnspython\n",
}


def python_blocks() -> list[tuple[str, int, str]]:
    """(section heading, index of the block in its section, code) for every ```python block."""
    blocks: list[tuple[str, int, str]] = []
    section = ""
    count: dict[str, int] = {}
    for match in re.finditer(r"^## ([^\n]+)$|^```python\n(.*?)^```", README.read_text(),
                             re.M | re.S):
        if match.group(1) is not None:
            section = match.group(1).strip()
        else:
            n = count[section] = count.get(section, 0) + 1
            blocks.append((section, n, match.group(2)))
    return blocks


def runnable_blocks() -> list[tuple[str, int, str]]:
    return [b for b in python_blocks() if b[0] not in NOT_RUN]


def block_id(block: tuple[str, int, str]) -> str:
    return f"{block[0]}-{block[1]}".replace(" ", "_")


def test_not_run_names_sections_with_python_blocks():
    sections = {section for section, _, _ in python_blocks()}
    assert set(NOT_RUN) <= sections
    assert set(EXPECTED_OUTPUT) == {section for section, _, _ in runnable_blocks()}


@pytest.mark.parametrize("block", runnable_blocks(), ids=block_id)
def test_readme_example_runs(block, tmp_path):
    section, _, code = block
    script = tmp_path / "example.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("CORENET_TRIGGER", None)
    proc = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", str(script)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == EXPECTED_OUTPUT[section]


def mypy_strict(paths: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on ``paths``, with this tree's corenet and resolver (and their
    stubs) as what they import; errors inside those packages are not reported."""
    try:
        import mypy  # noqa: F401
    except ImportError:
        unavailable("mypy is not installed (it is in the test extras)")
    env = dict(os.environ, MYPYPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--no-incremental", "--cache-dir", str(cwd / ".mypy_cache"), *map(str, paths)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_readme_examples_pass_mypy_strict(tmp_path):
    paths = []
    for section, n, code in runnable_blocks():
        path = tmp_path / f"{block_id((section, n, code)).lower()}.py"
        path.write_text(code)
        paths.append(path)
    proc = mypy_strict(paths, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
