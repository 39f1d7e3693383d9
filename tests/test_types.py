"""What type checkers see of the public API: real signatures, no ``Any`` from the lazy
loading, a stub for every compiled module that is part of it."""
from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import corenet
import resolver

from ci_policy import unavailable
from test_readme import ROOT, mypy_strict


def test_misuse_of_the_entry_points_is_a_type_error(tmp_path):
    """Each line is wrong; mypy says so only if it knows the real signatures (with ``Any``
    from a module ``__getattr__`` it would say nothing)."""
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent("""
        import corenet
        import resolver

        async def main() -> str:
            return "x"

        a: int = corenet.run(main())
        b = corenet.new_event_loop(trigger="sideways")
        c: int = corenet.install()
        d = corenet.Epoll(sizehint="big")
        e = corenet.no_such_name
        f: str = resolver.Stats().cache_hits
    """))
    proc = mypy_strict([probe], tmp_path)
    lines = {int(line.split(":")[1]) for line in proc.stdout.splitlines()
             if line.startswith("probe.py:") and ": error:" in line}
    assert lines == {8, 9, 10, 11, 12, 13}, proc.stdout


def test_dir_lists_the_lazy_names():
    assert set(corenet.__all__) <= set(dir(corenet))


def compiled_modules(package: str) -> list[str]:
    return sorted(str(p.relative_to(ROOT).with_suffix("")).replace("/", ".")
                  for p in (ROOT / package).rglob("*.pyx"))


def test_every_compiled_corenet_module_has_a_stub():
    missing = [m for m in compiled_modules("corenet")
               if not (ROOT / (m.replace(".", "/") + ".pyi")).exists()]
    assert missing == []


def test_the_compiled_modules_behind_resolver_s_public_names_have_stubs():
    """resolver's public API is what its __init__ exports; the compiled modules its names
    are defined in (or that define a public base class of one) need a stub."""
    compiled = set(compiled_modules("resolver"))
    behind = set()
    for name in resolver.__all__:
        obj = getattr(resolver, name)
        for cls in getattr(obj, "__mro__", (obj,)):
            module = getattr(cls, "__module__", None)
            if module in compiled and not getattr(cls, "__name__", "").startswith("_"):
                behind.add(module)
    assert "resolver.state" in behind       # Stats, and ResolverCore under Resolver
    missing = [m for m in sorted(behind) if not (ROOT / (m.replace(".", "/") + ".pyi")).exists()]
    assert missing == []
    for module in behind:
        importlib.import_module(module)


def test_the_https_client_type_checks(tmp_path):
    """corenet.https is typed code that ships ``py.typed``: mypy finds nothing wrong inside
    it (its own annotations, checked against the stubs of what it imports), nor in the
    commands built on it (``corenet.tools``)."""
    try:
        import mypy  # noqa: F401
    except ImportError:
        unavailable("mypy is not installed (it is in the test extras)")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-incremental",
         "--cache-dir", str(tmp_path / ".mypy_cache"), str(ROOT / "corenet" / "https"),
         str(ROOT / "corenet" / "tools")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
