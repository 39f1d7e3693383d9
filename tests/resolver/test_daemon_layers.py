"""The daemon's modules import one way: no cycle among resolver/daemon's modules, counting
imports inside functions and Cython cimports, so that each floor can be read (and tested)
without the ones above it."""
from __future__ import annotations

import re
from pathlib import Path

DAEMON = Path(__file__).resolve().parents[2] / "resolver" / "daemon"
IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+resolver\.daemon(?:\.(\w+))?[ \t]+c?import[ \t]+"
                    r"(\([^)]*\)|[^\n]+)|import[ \t]+resolver\.daemon\.(\w+))", re.M)


def _graph() -> dict[str, set[str]]:
    modules = {p.stem for p in DAEMON.iterdir() if p.suffix in (".py", ".pyx", ".pxd")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in DAEMON.iterdir():
        if path.suffix not in (".py", ".pyx", ".pxd"):
            continue
        for m in IMPORT.finditer(path.read_text()):
            if m.group(1):
                targets = {m.group(1)}
            elif m.group(3):
                targets = {m.group(3)}
            else:                          # from resolver.daemon import a, b
                targets = {t.strip() for t in m.group(2).replace("(", "").replace(")", "")
                           .split(",")}
            for t in targets:
                t = t.split(" as ")[0].strip()
                if t in modules and t != path.stem:
                    graph[path.stem].add(t)
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
    assert "config" in g["process"] and "tls_listener" in g["server"]
    assert "connections" in g["tls_listener"] and "connections" in g["doh_listener"]
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]


def test_the_daemon_modules_import_one_way():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
