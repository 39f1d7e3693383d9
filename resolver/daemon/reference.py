"""The config reference page (``docs/config.md``), generated from ``Config``'s fields, the
comments above them, the limits' reasons and the command line's flags:
``python -m resolver.daemon.reference > docs/config.md``. A test keeps the page equal to
this text. It sits above the config and the command line, which it reads."""
from __future__ import annotations

import inspect
import re
from dataclasses import fields
from typing import Any

from resolver import limits as L
from resolver.daemon.cli import parser
from resolver.daemon.config import CACHE_TTLS, RESTART_SETTINGS, ZONE_SETTINGS, Config
from resolver.limits import DEFAULT, Limits


def reference() -> str:
    """The config reference (``docs/config.md``), from ``Config``'s fields and the comments
    above them: one section per setting with its TOML key, its command-line flag when it has
    one, its default and what it does. A test keeps the page equal to this text."""
    flags = set()
    for action in parser()._subparsers._group_actions[0].choices["serve"]._actions:
        flags.update(action.option_strings)
    def documented(source, name: str) -> dict[str, list[str]]:
        """The ``#:`` comment lines above each definition whose name ``name`` matches."""
        docs: dict[str, list[str]] = {}
        pending: list[str] = []
        for line in inspect.getsource(source).splitlines():
            text = line.strip()
            if text.startswith("#:"):
                pending.append(text[2:].strip())
                continue
            m = re.match(name, text)
            if m and pending:
                docs[m.group(1)] = pending
            if not text.startswith("#"):
                pending = []
        return docs

    def field_docs(cls) -> dict[str, list[str]]:
        return documented(cls, r"(\w+):")

    docs = field_docs(Config)
    reasons = documented(L, r"([A-Z0-9_]+) = ")          # the limits' module constants
    out = ["# corenet-resolver configuration reference", "",
           "Every setting can be given in the TOML file passed with `--config` (keys with `-` or",
           "`_`, at the top level or in a `[server]` table) and most on the command line, which",
           "wins over the file. Bad values stop the daemon before it binds, with a one-line",
           "error naming the setting. `reload` (or SIGHUP) re-reads the file; settings marked",
           "\"restart\" take effect only at the next start. This page is generated from",
           "`resolver/daemon/config.py` (`python -m resolver.daemon.reference`).", ""]
    for f in fields(Config):
        if f.name == "config_file":
            continue
        key = f.name.replace("_", "-")
        flag = f"--{key}" if f"--{key}" in flags else None
        if f.name == "validate":
            flag = "--no-validate"
        out += [f"## `{key}`", "",
                f"- default: `{_shown(f.name, f.default)}`"
                + ("" if flag is None else f"; command line: `{flag}`")
                + ("; restart" if f.name in RESTART_SETTINGS else "; reloadable"), ""]
        out += [" ".join(docs.get(f.name, ["(undocumented)"])), ""]
        if f.name.upper() in reasons:                 # a limit: why its default
            out += ["Why this default: " + " ".join(reasons[f.name.upper()]), ""]
        if f.name == "limits":
            out += _limits_reference(field_docs(Limits))
    return "\n".join(out)


def _limits_reference(docs: dict[str, list[str]]) -> list[str]:
    out = ["In the file: `[limits]` then `max-referrals = 20` (or `max_referrals`), or the",
           "same key at the top level; an unknown key stops the daemon with an error naming",
           "its line. Durations are seconds.", ""]
    last = ["(undocumented)"]
    for f in fields(Limits):
        text = docs.get(f.name)
        if text is None:
            text = [f"With the limit above: {' '.join(last)}"]
        else:
            last = text
        out += [f"### `limits.{f.name.replace('_', '-')}`", "",
                f"- default: `{f.default}`", "", " ".join(text), ""]
    return out


def _shown(name: str, value: Any) -> str:
    if name in CACHE_TTLS:
        limit = CACHE_TTLS[name]
        return f"{getattr(DEFAULT, limit)} (limits.{limit.replace('_', '-')})"
    if name == "limits":
        return "the limits below"
    if name == "control_mode":
        return oct(value)
    if name in ZONE_SETTINGS:
        return "(none)" if not value else str(value)
    if isinstance(value, tuple):
        items = [f"{v[0]}:{v[1]}" if isinstance(v, tuple) else str(v) for v in value]
        return ", ".join(items) or "(none)"
    return str(value)


if __name__ == "__main__":
    print(reference(), end="")
