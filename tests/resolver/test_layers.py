"""The resolver's modules import one way: no cycle among the modules of ``resolver/`` (the
library and the daemon), counting imports inside functions and Cython cimports, so that each
floor can be read (and tested) without the ones above it. A package counts as its
``__init__``; ``from resolver.x import y`` is an import of the module ``resolver.x.y`` when
there is one, else of ``resolver.x``."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(resolver(?:\.\w+)*)[ \t]+c?import[ \t]+"
                    r"(\([^)]*\)|[^\n]+)|c?import[ \t]+(resolver(?:\.\w+)+))", re.M)


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph(package: Path = ROOT / "resolver") -> dict[str, set[str]]:
    files = [p for p in package.rglob("*") if p.suffix in (".py", ".pyx", ".pxd")]
    modules = {_module(p) for p in files}

    def known(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in files:
        me = _module(path)
        for m in IMPORT.finditer(path.read_text()):
            if m.group(3):
                targets = {known(m.group(3))}
            else:
                names = (n.split(" as ")[0].split("#")[0].strip()
                         for n in m.group(2).replace("(", "").replace(")", "").split(","))
                targets = {f"{m.group(1)}.{n}" if f"{m.group(1)}.{n}" in modules
                           else known(m.group(1)) for n in names if n}
            graph[me] |= {t for t in targets if t in modules and t != me}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_scanner_sees_the_imports():
    g = _graph()
    d = "resolver.daemon."
    assert d + "config" in g[d + "process"] and d + "tls_listener" in g[d + "server"]
    assert d + "connections" in g[d + "tls_listener"]
    # a cimport, an import inside a function, a package's __init__, a module from a package
    assert "resolver.wire.codec" in g["resolver.iterator.replies"]
    assert "resolver.cache.infra" in g["resolver.cache.store"]
    assert "resolver.iterator.algorithm" in g["resolver.iterator"]
    assert "resolver.iterator" in g["resolver.response"]
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]


def test_the_resolver_imports_one_way():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_tools_stand_on_the_library_alone():
    """The tools (the dig clone) use the library's published modules, never the daemon's."""
    g = _graph()
    tools = [m for m in g if m.startswith("resolver.tools")]
    assert "resolver.tools.dig" in tools
    assert "resolver.tools.dig_exchange" in g["resolver.tools.dig"]
    wrong = {m: sorted(t for t in g[m] if t.startswith("resolver.daemon")) for m in tools}
    assert not any(wrong.values()), wrong
