"""The documents made from the settings table (``resolver.daemon.settings``) and the table
of control commands (``resolver.daemon.commands``): the reference page ``docs/config.md``,
the sample config ``docs/corenet-resolver.toml`` and the man pages
``docs/man/corenet-resolver.toml.5`` and ``docs/man/corenet-resolver.8``. Tests keep the files
equal to these texts.

    python -m resolver.daemon.reference > docs/config.md     # the reference page alone
    python -m resolver.daemon.reference --write              # every file
"""
from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

from resolver import limits as L
from resolver.daemon.unbound_conf import unlike_unbound
from resolver.daemon.settings import (LIMITS, TABLE, ZONE_SETTINGS, Setting, flag_default,
                                      default_of)

ROOT = Path(__file__).resolve().parents[2]
#: Each document: its path under the source tree and the function that writes it.
DOCUMENTS = {"docs/config.md": "reference", "docs/corenet-resolver.toml": "sample",
             "docs/man/corenet-resolver.toml.5": "man_page",
             "docs/man/corenet-resolver.8": "daemon_man_page"}


def limit_docs() -> dict[str, str]:
    """Each limit's text: the ``#:`` comment above its field in ``resolver.limits``; a field
    with none shares the one above it."""
    docs: dict[str, str] = {}
    pending: list[str] = []
    last = ""
    for line in inspect.getsource(L.Limits).splitlines():
        text = line.strip()
        if text.startswith("#:"):
            pending.append(text[2:].strip())
            continue
        m = re.match(r"(\w+):", text)
        if m and m.group(1) in LIMITS:
            if pending:
                last = " ".join(pending)
                docs[m.group(1)] = last
            else:
                docs[m.group(1)] = f"With the limit above: {last}"
        if not text.startswith("#"):
            pending = []
    return docs


def _shown(s: Setting) -> str:
    value = s.default
    if s.limit is not None and value is None:
        return f"{default_of(s)} (limits.{s.limit.replace('_', '-')})"
    if s.name == "limits":
        return "the limits below"
    if s.name == "control_mode":
        return oct(value)
    if s.name in ZONE_SETTINGS:
        return "(none)" if not value else str(value)
    if isinstance(value, tuple):
        items = [f"{v[0]}:{v[1]}" if isinstance(v, tuple) else str(v) for v in value]
        return ", ".join(items) or "(none)"
    return str(value)


def flags(s: Setting) -> list[str]:
    """The command-line spellings of a setting."""
    f = s.flag
    if f is None:
        return []
    if f.form == "no":
        return [f"--no-{s.key}"]
    names = [f"--{s.key}", *f.names]
    if f.form == "both":
        names += [n.replace("--", "--no-", 1) for n in names]
    return names


def _bounds(s: Setting) -> str:
    bounds = getattr(s.convert, "bounds", None)
    if bounds is None:
        return ""
    low, high = bounds
    return f"{low} or more" if high is None else f"{low} to {high}"


def _other_names(s: Setting) -> list[str]:
    return [n for n in (*s.aliases, s.unbound) if n]


def reference() -> str:
    """The reference page: one section per setting with its key, its command-line flags,
    its bounds, its default, whether reload applies it and what it does."""
    out = ["# corenet-resolver configuration reference", "",
           "Every setting can be given in the TOML file passed with `--config` (keys with `-` or",
           "`_`, at the top level or in a `[server]` table) and many on the command line, which",
           "wins over the file. Bad values stop the daemon before it binds, with a one-line",
           "error naming the setting (and, in a file, its line). `reload` (or SIGHUP) re-reads",
           "the file; settings marked \"restart\" take effect only at the next start. This page,",
           "the sample config and corenet-resolver.toml(5) are generated from",
           "`resolver/daemon/settings.py` (`python -m resolver.daemon.reference --write`).", ""]
    last = None
    for s in TABLE:
        if s.section != last:
            last = s.section
            out += [f"**{last[:1].upper() + last[1:]}**", ""]
        facts = [f"default: `{_shown(s)}`"]
        if s.flag:
            facts.append("command line: " + ", ".join(f"`{f}`" for f in flags(s)))
        if _other_names(s):
            facts.append("also read as " + ", ".join(f"`{n}`" for n in _other_names(s)))
        if _bounds(s):
            facts.append(f"range: {_bounds(s)}")
        facts.append("restart" if s.restart else "reloadable")
        out += [f"## `{s.key}`", "", "- " + "; ".join(facts), "", s.doc, ""]
        if s.reason:
            out += ["Why this default: " + s.reason, ""]
        if _unlike(s):
            out += [_unlike(s), ""]
        if s.name == "limits":
            out += _limits_reference()
    return "\n".join(out)


def _limits_reference() -> list[str]:
    out = ["In the file: `[limits]` then `max-referrals = 20` (or `max_referrals`), or the",
           "same key at the top level; an unknown key stops the daemon with an error naming",
           "its line. Durations are seconds.", ""]
    docs = limit_docs()
    for name, s in LIMITS.items():
        out += [f"### `limits.{s.key}`", "",
                f"- default: `{s.default}`; range: {_bounds(s)}", "", docs[name], ""]
        if _unlike(s):
            out += [_unlike(s), ""]
    return out


def _unlike(s: Setting) -> str:
    """What to say of a default Unbound does not share ("" when it does, or has none)."""
    for u in unlike_unbound():
        if u.key == s.key:
            return (f"Unbound's default differs (`{u.option}: {u.unbound}`): here, {u.why}.")
    return ""


# ---- the sample config ------------------------------------------------------------------------
def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        items = []
        for v in value:
            if isinstance(v, tuple):
                host, port = v
                items.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            else:
                items.append(str(v))
        return "[" + ", ".join(json.dumps(v) for v in items) + "]"
    raise TypeError(f"no TOML for {value!r}")


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.;:])(\s|$)", text)
    return (m.group(1) if m else text).rstrip(".;:")


def sample() -> str:
    """A config file listing every setting, commented out, with its default (or an example
    where the default is "unset") and the first words of what it does."""
    out = ["# A sample corenet-resolver config: every setting, commented out, with its default",
           "# (or an example value where it has none). Keys may be written with - or _; a",
           "# [server] table is accepted too. Check a file with `corenet-resolver checkconf",
           "# FILE`; docs/config.md and corenet-resolver.toml(5) explain each key. Generated by",
           "# `python -m resolver.daemon.reference --write`."]
    last = None
    for s in TABLE:
        if s.section != last:
            last = s.section
            out += ["", f"# ---- {last} ----"]
        if s.example is not None:
            value = s.example
        elif s.name == "control_mode":
            value = json.dumps(f"{s.default:04o}")
        elif s.default is None:
            value = '""'
        else:
            value = _toml(s.default)
        out.append(f"# {s.key} = {value}")
        out.append(f"#     {_first_sentence(s.doc)}")
    out += ["", "# ---- limits (resolver/limits.py; any of them, here or at the top level) ----",
            "# [limits]"]
    for name, s in LIMITS.items():
        if name not in {r.limit for r in TABLE if r.limit}:
            out.append(f"# {s.key} = {_toml(s.default)}")
    return "\n".join(out) + "\n"


# ---- the man page -----------------------------------------------------------------------------
def _roff(text: str) -> str:
    """Text for roff: backslashes escaped, ``code`` in bold, no line starting a request, a
    line allowed to break after a colon (the cipher lists are longer than a line)."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = re.sub(r":(?=\S)", r":\\:", text)      # a place to break a long list of names
    text = re.sub(r"``(.+?)``", r"\\fB\1\\fR", text)
    text = re.sub(r"`(.+?)`", r"\\fI\1\\fR", text)
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line
                     for line in text.splitlines())


def man_page() -> str:
    """corenet-resolver.toml(5), in roff (``man -l`` shows it)."""
    out = [".TH CORENET\\-RESOLVER.TOML 5 \"\" \"corenet\" \"File Formats\"",
           ".ad l", ".SH NAME",
           "corenet\\-resolver.toml \\- configuration file of the corenet\\-resolver DNS resolver",
           ".SH SYNOPSIS",
           ".B corenet\\-resolver serve \\-\\-config",
           ".I FILE",
           ".SH DESCRIPTION",
           _roff("A TOML file of settings, at the top level or in a [server] table; keys are "
                 "written with - or _. The command line wins over the file. A bad value stops "
                 "the daemon before it binds, with a one-line error naming the file, the line "
                 "and the setting; `corenet-resolver checkconf FILE` checks a file without "
                 "starting. `corenet-resolver reload` (or SIGHUP) reads the file again; "
                 "settings marked restart take effect at the next start only."),
           ".SH SETTINGS"]
    last = None
    for s in TABLE:
        if s.section != last:
            last = s.section
            out += [".SS " + _roff(last[:1].upper() + last[1:])]
        facts = [f"default: {_shown(s)}"]
        if s.flag:
            facts.append("command line: " + ", ".join(flags(s)))
        if _other_names(s):
            facts.append("also read as " + ", ".join(_other_names(s)))
        if _bounds(s):
            facts.append(f"range: {_bounds(s)}")
        facts.append("restart" if s.restart else "reloadable")
        out += [".TP", f".B {_roff(s.key)}", _roff(s.doc), ".br", _roff("; ".join(facts) + ".")]
        if s.reason:
            out += [".br", _roff("Why this default: " + s.reason)]
        if _unlike(s):
            out += [".br", _roff(_unlike(s))]
    out += [".SH LIMITS",
            _roff("The resolver's limits, in a [limits] table or at the top level (durations "
                  "are seconds); restart.")]
    docs = limit_docs()
    for name, s in LIMITS.items():
        out += [".TP", f".B {_roff(s.key)}", _roff(docs[name]), ".br",
                _roff(f"default: {s.default}; range: {_bounds(s)}.")]
        if _unlike(s):
            out += [".br", _roff(_unlike(s))]
    out += [".SH FILES", "docs/corenet\\-resolver.toml, docs/zones\\-example.toml (samples)",
            ".SH SEE ALSO", ".BR unbound.conf (5)"]
    return "\n".join(out) + "\n"


def _options() -> list[str]:
    """``serve``'s options, from the settings table (which makes them: ``add_flags``)."""
    out = [".TP", "\\fB\\-c\\fR \\fIFILE\\fR, \\fB\\-\\-config\\fR \\fIFILE\\fR",
           _roff("A TOML file of settings (corenet-resolver.toml(5)), or an unbound.conf, "
                 "served as it is: read as import-unbound reads it, again at each reload, "
                 "the options it cannot carry over listed on standard error at start, a value "
                 "Unbound would refuse an error with its line; the options below win over "
                 "it.")]
    for s in TABLE:
        f = s.flag
        if f is None:
            continue
        spelled = flags(s)
        if f.metavar:
            head = ", ".join(f"\\fB{_roff(n)}\\fR \\fI{_roff(f.metavar)}\\fR" for n in spelled)
        else:
            head = ", ".join(f"\\fB{_roff(n)}\\fR" for n in spelled)
        text = f.help[:1].upper() + f.help[1:]
        shown = flag_default(s) if f.form is None else ""
        if shown:
            text += f" (default: {shown})"
        out += [".TP", head, _roff(f"{text}; the setting {s.key}.")]
    return out


def daemon_man_page() -> str:
    """corenet-resolver(8), in roff: the commands (the control commands from
    ``resolver.daemon.commands``), serve's options (from the settings table), files,
    signals, exit status."""
    from resolver.daemon.commands import COMMANDS

    out = [".TH CORENET\\-RESOLVER 8 \"\" \"corenet\" \"System Manager's Manual\"",
           ".ad l", ".SH NAME",
           "corenet\\-resolver \\- a recursive, caching, DNSSEC\\-validating DNS resolver",
           ".SH SYNOPSIS",
           ".B corenet\\-resolver serve",
           ".RB [ \\-c",
           ".IR FILE ]",
           ".RI [ OPTION \" ...]\"",
           ".br",
           ".B corenet\\-resolver checkconf",
           ".I FILE",
           ".br",
           ".B corenet\\-resolver import\\-unbound",
           ".I UNBOUND_CONF",
           ".RB [ \\-o",
           ".IR FILE ]",
           ".br",
           ".B corenet\\-resolver service\\-unit",
           ".RB [ \\-\\-executable",
           ".IR PATH ]",
           ".br",
           ".B corenet\\-resolver query",
           ".RI [@ SERVER ]",
           ".RI [ NAME ]",
           ".RI [ TYPE ]",
           ".RI [+ OPTION \" ...]\""]
    for c in COMMANDS:
        out += [".br", f".B corenet\\-resolver {_roff(c.name)}"]
        if c.args:
            out.append(f".I {_roff(c.args)}")
        out += [".RB [ \\-\\-control", ".IR PATH ]"]
    out += [".SH DESCRIPTION",
            _roff("corenet-resolver resolves names from the root down, caches the answers and "
                  "validates them with DNSSEC; it serves DNS over UDP, TCP, TLS and HTTPS. It "
                  "takes Unbound's option names and meanings (corenet-resolver.toml(5)) and "
                  "answers unbound-control's commands on its control socket. It runs in the "
                  "foreground (a service manager runs it as a simple or notify service) and, "
                  "started as root, becomes an unprivileged user once its sockets are bound."),
            ".SH COMMANDS",
            ".TP", ".B serve",
            _roff("Runs the daemon in the foreground until SIGTERM or SIGINT. A bad option or "
                  "config value stops it before anything binds, with a one-line error naming "
                  "it (exit status 2)."),
            ".TP", ".BI checkconf \" FILE\"",
            _roff("Checks a config file as serve would (values, files, root hints, trust "
                  "anchor) without starting anything: prints FILE: ok and exits 0, or the "
                  "error and exits 1, as unbound-checkconf(8) does."),
            ".TP", ".BI import\\-unbound \" UNBOUND_CONF\"",
            _roff("Reads an Unbound config (its clauses, include: and include-toplevel:, "
                  "quoted and bare values, k, m and g sizes) and writes the corenet TOML that "
                  "says the same (on standard output, or to -o FILE), each key with the "
                  "Unbound lines it came from; standard error lists every option carried "
                  "over and every one that could not be, with why. Exits 1 when the result "
                  "does not pass checkconf (it is written all the same), 2 when the file "
                  "cannot be read. checkconf reads an unbound.conf the same way, and lists "
                  "what it could not carry over."),
            ".TP", ".B service\\-unit",
            _roff("Prints the systemd unit (Type=notify, reload by SIGHUP, sandboxed to what "
                  "binding port 53 and dropping to the configured user need), its Exec lines "
                  "running this installation's corenet-resolver, or --executable PATH. "
                  "Install it as /etc/systemd/system/corenet-resolver.service."),
            ".TP", ".B query",
            _roff("Resolves a question with the resolver in this process, or asks the server "
                  "given as @SERVER, and prints the answer as dig(1) does, with dig's +options."),
            ".SS Control commands",
            _roff("Sent to a running daemon over its control socket (the setting control, or "
                  "--control PATH, or $CORENET_RESOLVER_CONTROL); with several workers the "
                  "supervisor answers for all of them. They exit 0, or 1 with the error when "
                  "the daemon cannot be reached or refuses (an error line error MESSAGE on "
                  "standard output, as unbound-control's). Their output stops quietly when "
                  "the reader goes (as with | head)."),
            _roff("Unbound's own unbound-control drives the daemon too: the control socket "
                  "and the TCP control listener (control-enable, with mutual TLS from the "
                  "server-key-file, server-cert-file, control-key-file and control-cert-file "
                  "as Unbound's remote-control, or plain TCP on loopback with "
                  "control-use-cert: no) take its protocol beside corenet's JSON lines, and "
                  "answer with the text corenet-resolver COMMAND prints. Point it at the "
                  "daemon with an unbound.conf holding a remote-control: clause: "
                  "control-interface the same address (or the control socket's path) and "
                  "control-port, and the same certificate files."),
            _roff("stats and stats_noreset print Unbound's key=value lines (thread0.num.queries, "
                  "total.num.cachehits, time.up, histogram.*, num.query.type.A, "
                  "num.answer.rcode.NOERROR ...), which the tools written for Unbound read; "
                  "--prometheus prints the Prometheus text of the metrics listener, --json "
                  "every figure as JSON.")]
    for c in COMMANDS:
        head = f".B {_roff(c.name)}" if not c.args else f".BI {_roff(c.name)} \" {_roff(c.args)}\""
        out += [".TP", head, _roff(c.doc), ".br", _roff(f"Scope: {c.scope}.")]
    out += [".SH OPTIONS",
            _roff("The options of serve, each a setting of corenet-resolver.toml(5) (where it is "
                  "explained in full); the command line wins over the file.")]
    out += _options()
    out += [".SH ENVIRONMENT",
            ".TP", ".B CORENET_RESOLVER_CONTROL",
            _roff("The control socket the control commands use when --control is not given."),
            ".TP", ".B CORENET_RESOLVER_SYSLOG",
            _roff("The syslog socket used with use-syslog, instead of /dev/log."),
            ".TP", ".B NOTIFY_SOCKET",
            _roff("Set by systemd for a notify service: the daemon says there when it is ready, "
                  "reloading and stopping."),
            ".SH FILES",
            ".TP", ".I /run/corenet\\-resolver/control",
            _roff("The control socket (a daemon not run as root uses "
                  "$XDG_RUNTIME_DIR/corenet-resolver/control)."),
            ".TP", ".I /dev/log",
            _roff("The syslog socket, with use-syslog."),
            ".TP", ".I docs/corenet\\-resolver.toml",
            _roff("A sample config listing every setting with its default."),
            ".SH SIGNALS",
            ".TP", ".BR SIGTERM ", " SIGINT",
            _roff("Stop: the listeners close, queries in flight get shutdown-grace seconds to "
                  "finish, then the daemon exits 0."),
            ".TP", ".B SIGHUP",
            _roff("Reload, as the reload command: the config file is read again (the caches "
                  "are kept) and the log file reopened. The file is read by a child process "
                  "(python -m resolver.daemon.config_reader, at nice 19), started at the "
                  "first reload and kept until the daemon stops, so that reading it does not "
                  "hold up the answers."),
            ".SH EXIT STATUS",
            ".TP", ".B 0",
            _roff("serve stopped by a signal; a command or check that succeeded."),
            ".TP", ".B 1",
            _roff("serve could not listen, start its control socket or drop its privileges, or "
                  "a worker died; a control command that failed."),
            ".TP", ".B 2",
            _roff("A bad option, config value or config file."),
            ".SH SEE ALSO",
            ".BR corenet\\-resolver.toml (5),",
            ".BR unbound (8),",
            ".BR unbound\\-control (8),",
            ".BR dig (1)"]
    return "\n".join(out) + "\n"


def write() -> list[str]:
    """Writes the documents into the source tree; returns the paths written."""
    written = []
    for path, maker in DOCUMENTS.items():
        target = ROOT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(globals()[maker]())
        written.append(str(target))
    return written


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        print("\n".join(write()))
    else:
        print(reference(), end="")
