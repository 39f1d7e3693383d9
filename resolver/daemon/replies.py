"""What a control command sends and prints: the request made of a command line, and the
text of the daemon's answer as unbound-control prints it. ``corenet-resolver COMMAND`` and
Unbound's own ``unbound-control`` (the ``UBCT1`` protocol of ``resolver.daemon.control``)
print the same text through :func:`text`.

Stats print in one of :data:`FORMATS`: Unbound's ``key=value`` lines by default
(``resolver.daemon.unbound_stats``), Prometheus text or JSON on request.
"""
from __future__ import annotations

import json
from typing import Any

from resolver.daemon.commands import RELOADS

PROG = "corenet-resolver"

#: The ways ``stats``, ``stats_noreset`` and ``status`` print.
FORMATS = ("unbound", "prometheus", "json")


class Refused(Exception):
    """The daemon refused the command: its message is the error line's."""


def error_line(message: str) -> str:
    """The line a refusal prints: ``error MESSAGE``, or ``error: ...`` for a message that
    starts with its colon (Unbound's form for a missing name)."""
    return f"error{'' if message.startswith(':') else ' '}{message}"


def request(cmd: str, args: list[str], stdin: str | None = None) -> dict:
    """The request for ``cmd`` with ``args`` (``stdin``: what a command that reads its
    standard input read, ``load_cache``'s dump, ``local_datas``' list...)."""
    req: dict[str, Any] = {"cmd": cmd, "args": list(args)}
    if cmd == "stats":
        req["reset"] = True
    elif cmd == "stats_noreset":
        req["since"] = True
    if stdin is not None:
        req["input"] = stdin
    return req


def text(cmd: str, answer: dict, fmt: str = "unbound") -> str:
    """What the command prints for the daemon's ``answer`` (lines, each ending in a
    newline; "" for nothing). A refusal raises :class:`Refused`."""
    if not answer.get("ok"):
        raise Refused(answer.get("error", "request failed"))
    lines: list[str]
    if cmd == "status":
        if fmt == "json":
            return json.dumps(answer["status"], indent=1, sort_keys=True) + "\n"
        return status_text(answer["status"]) + "\n"
    if "stats" in answer:
        return stats_text(answer["stats"], fmt)
    if "lines" in answer:
        lines = list(answer["lines"])
    elif "removed" in answer:
        r = answer["removed"]
        lines = [f"ok removed {r['rrsets']} rrsets, {r['messages']} messages and "
                 f"{r['keys']} key entries"]
    elif cmd == "flush" or cmd in RELOADS:
        lines = ["start fast_reload"] * (answer.get("verbose", 0) > 0) + ["ok"]
        if answer.get("shared_deleted") is not None:
            lines.append(f"deleted {answer['shared_deleted']} entries from the shared cache")
    elif answer.get("text"):
        lines = [answer["text"]]
    else:
        lines = []
    return "".join(f"{line}\n" for line in lines)


def stats_text(stats: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(stats, indent=1, sort_keys=True) + "\n"
    if fmt == "prometheus":
        from resolver.daemon.metrics import render
        return render(stats)
    from resolver.daemon.unbound_stats import render
    return render(stats)


def status_text(st: dict) -> str:
    """``status`` as Unbound prints it (version, verbosity, threads, modules, uptime,
    options, and last the running line), with corenet's own lines before the last."""
    up = int(st["uptime"])
    fill = st["cache_bytes"] / st["cache_size"] if st["cache_size"] else 0.0
    where = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in st["listen"])
    modules = ["validator", "iterator"] if st["dnssec"] else ["iterator"]
    options = (["reuseport"] if st["workers"] > 1 else []) + st.get("control", [])
    return "\n".join([
        f"version: {st['version']}",
        f"verbosity: {st.get('verbosity', 0)}",
        f"threads: {st['workers']}",
        f"modules: {len(modules)} [ {' '.join(modules)} ]",
        f"uptime: {up} seconds",
        "options:" + "".join(f" {o}" for o in options),
        f"listening: {where or '(none)'}",
        f"dnssec validation: {'on' if st['dnssec'] else 'off'}",
        f"cache: {st['cache_bytes']} of {st['cache_size']} bytes ({fill:.1%})",
        f"queries in flight: {st['inflight']}",
        f"query log: {'on' if st['log_queries'] else 'off'}",
        *(_auto_anchor_text(a) for a in st.get("auto_trust_anchors", ())),
        f"{PROG} (pid {st['pid']}) is running...",
    ])


def _auto_anchor_text(a: dict) -> str:
    """One RFC 5011 trust point: its keys by tag and state, its last and next probe."""
    import time

    def when(t: int) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else "never"

    keys = ", ".join(f"{tag} {state}" for tag, state in sorted(a["keys"].items())) or "none"
    return (f"auto trust anchor {a['zone']} ({a['file']}): "
            + ("every key revoked, not validated" if a["revoked"] else f"keys {keys}")
            + f"; last success {when(a['last_success'])}; next probe {when(a['next_probe'])}"
            + (f"; {a['query_failed']} failed probes" if a["query_failed"] else ""))
