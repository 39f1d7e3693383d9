"""README.md's Python examples run as written: each block, alone, in a fresh interpreter, on
loopback with free ports, with no network. What a block reaches beyond the machine (a web
origin, the root servers, the host's resolver) is answered by the stand-ins of
``readme_standins``: the block's text is never changed, its interpreter is given another world.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import readme_standins
from ci_policy import unavailable

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: what each block prints, by block id (section-n): its output is part of what the README
#: promises; a block that prints nothing checks itself with assert
EXPECTED_OUTPUT: dict[str, str] = {
    "The_loop-1": "Loop\n" * (4 if sys.version_info >= (3, 12) else 3),
    "The_framer-1": "b'hello'\n",
    "HTTPS-1": "200 text/html; charset=UTF-8 <!doctype html><html><head><title>Exampl\n"
               f"200 {len(readme_standins.PAGES['/big'][1])}\n",
    "HTTPS-2": "",
    "HTTPS-3": "",
    "HTTPS-4": "",
    "HTTPS-5": "",
    "The_resolver-1": "example.org. ['2001:db8::70']\nwww.example.org.\none.one.one.one.\n",
    "The_resolver-2": "192.0.2.70\n192.0.2.70\n",
    "Coming_from_dnspython-1": "192.0.2.7 printer.lan.\nno ANY, as in dnspython\n",
    "dnspython's_sync_API-1": "['192.0.2.1', '192.0.2.11'] www.example.com.\n"
                              "www.example.com.\nno such name: nope.example.com.\n",
}

#: variables of the test's own environment that would send a block elsewhere
UNSET = ("CORENET_TRIGGER", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
         "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_DIR")


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


def block_id(block: tuple[str, int, str]) -> str:
    return f"{block[0]}-{block[1]}".replace(" ", "_")


def test_every_block_has_its_expected_output():
    assert set(EXPECTED_OUTPUT) == {block_id(b) for b in python_blocks()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The environment every block runs in: the stand-ins' sitecustomize first on PYTHONPATH,
    then this tree; the web and DNS stand-ins running for the module."""
    if not os.path.exists(readme_standins.NSD):
        unavailable("nsd (Debian package 'nsd') is not installed: scripts/setup.sh installs it")
    tmp = tmp_path_factory.mktemp("standins")
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    site = readme_standins.write_sitecustomize(tmp / "site")
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])
    with readme_standins.web(tmp / "web") as web, readme_standins.dns(tmp / "dns") as dns:
        yield dict(env, **web, **dns)


def run_python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    script = cwd / "example.py"
    script.write_text(code)
    return subprocess.run([sys.executable, "-W", "error::DeprecationWarning", str(script)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("block", python_blocks(), ids=block_id)
def test_readme_example_runs(block, world, tmp_path):
    proc = run_python(block[2], world, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == EXPECTED_OUTPUT[block_id(block)]


def test_the_stand_ins_reach_nothing_else(world, tmp_path):
    """Another origin is refused by the proxy, a host name by getaddrinfo, another name by
    the lab's root: nothing a block asks goes to the Internet or the host's resolver."""
    proc = run_python(
        "import asyncio, socket\n"
        "import dns.resolver\n"
        "import corenet.https as https\n"
        "import resolver\n"
        "try:\n"
        "    https.get('https://example.com/')\n"
        "except https.ProxyError as e:\n"
        "    print('proxy:', e)\n"
        "try:\n"
        "    socket.getaddrinfo('example.org', 443)\n"
        "except socket.gaierror as e:\n"
        "    print('getaddrinfo:', e.errno == socket.EAI_NONAME)\n"
        "async def main() -> None:\n"
        "    r = resolver.Resolver()\n"
        "    try:\n"
        "        await r.resolve('www.python.org', lifetime=5.0)\n"
        "    except dns.resolver.NXDOMAIN:\n"
        "        print('NXDOMAIN')\n"
        "    await r.close()\n"
        "asyncio.run(main())\n", world, tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("proxy:") and "403" in lines[0], proc.stdout
    assert lines[1:] == ["getaddrinfo: True", "NXDOMAIN"], proc.stdout


def mypy_strict(paths: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on ``paths``, with this tree's corenet and resolver (and their
    stubs) as what they import; errors inside those packages are not reported, nor calls
    into dnspython's unannotated functions."""
    try:
        import mypy  # noqa: F401
    except ImportError:
        unavailable("mypy is not installed (it is in the test extras)")
    env = dict(os.environ, MYPYPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         # dnspython leaves some functions unannotated (e.qnames()): calls to them are fine
         "--untyped-calls-exclude=dns", "--no-incremental", "--cache-dir", str(cwd / ".mypy_cache"), *map(str, paths)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_readme_examples_pass_mypy_strict(tmp_path):
    paths = []
    for section, n, code in python_blocks():
        path = tmp_path / f"{block_id((section, n, code)).lower()}.py"
        path.write_text(code)
        paths.append(path)
    proc = mypy_strict(paths, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
