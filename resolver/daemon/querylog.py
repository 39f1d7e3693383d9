"""The per-query logs, each one line per answer sent, shown whatever the verbosity (as
Unbound's are):

- ``log-queries``: on the ``resolver.queries`` logger at INFO, Unbound's format
  (:func:`query_line`)::

    127.0.0.1 www.example.com. A IN

- ``log-replies``: on ``resolver.replies`` at INFO, Unbound's format (:func:`reply_line`)::

    127.0.0.1 www.example.com. A IN NOERROR 0.000412 1 49

  (with ``log-tag-queryreply`` these two say ``query:`` and ``reply:`` for ``info:``)

- ``log-servfail``: on ``resolver.servfail`` at ERROR, each SERVFAIL with its reason, the
  extended DNS error the resolver found (:func:`servfail_line`)::

    SERVFAIL <www.example.com. A IN>: all 2 servers timed out (extended error 22, no reachable authority)

- ``log-local-actions``: on ``resolver.local`` at INFO, each query in a local zone, with the
  zone and its type (:func:`local_line`)::

    example.com. static 127.0.0.1 www.example.com. A IN

:class:`QueryLog` is made only when one of them is on; the listeners then answer every query
on the Python path (their cache hits in C are not logged), so a daemon with them off pays
nothing.
"""
from __future__ import annotations

import logging
import struct

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from resolver.daemon import logs


def question(q: bytes) -> tuple[str, str, str, bytes] | None:
    """The query's name, type and class as text, and its name as wire bytes; None when the
    question cannot be read."""
    try:
        name, used = dns.name.from_wire(q, 12)
        qtype, qclass = struct.unpack_from("!HH", q, 12 + used)
    except (dns.exception.DNSException, struct.error, ValueError, IndexError):
        return None
    return (name.to_text(), dns.rdatatype.to_text(qtype), dns.rdataclass.to_text(qclass),
            name.to_wire())


def _rcode(out: bytes) -> str:
    code = out[3] & 0x0F if len(out) >= 4 else 2
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(code))
    except ValueError:
        return str(code)


def reply_line(client, q: bytes, out: bytes, seconds: float, hit: bool) -> str:
    """Unbound's ``log-replies`` line: client, name, type, class, rcode, seconds, 1 for an
    answer from the cache, size."""
    asked = question(q)
    rcode = _rcode(out)
    if asked is None or rcode == "FORMERR":
        return f"{client or '-'} - - - {rcode} - - -"
    name, qtype, qclass, _ = asked
    return (f"{client or '-'} {name} {qtype} {qclass} {rcode} {seconds:.6f} "
            f"{1 if hit else 0} {len(out)}")


def extended_error(out: bytes) -> tuple[int, str] | None:
    """The first extended DNS error (RFC 8914) in the response ``out``: its code and text."""
    try:
        m = dns.message.from_wire(out, ignore_trailing=True)
    except (dns.exception.DNSException, ValueError, IndexError, struct.error):
        return None
    for option in m.options:
        if isinstance(option, dns.edns.EDEOption):
            return int(option.code), option.text or ""
    return None


def servfail_line(q: bytes, out: bytes, reason: tuple | None = None) -> str:
    """The ``log-servfail`` line for the SERVFAIL ``out``: the question, then ``reason`` (the
    resolution's extended error: code and text), or the extended error the answer carries."""
    asked = question(q)
    what = "-" if asked is None else " ".join(asked[:3])
    code, text = reason if reason is not None else (None, None)
    if code is None and not text:
        code, text = extended_error(out) or (None, None)
    if code is None:
        return f"SERVFAIL <{what}>: {text or 'no reason recorded'}"
    try:
        kind = dns.edns.EDECode(code).name.lower().replace("_", " ")
    except ValueError:
        kind = "unassigned"
    return f"SERVFAIL <{what}>: {text or kind} (extended error {code}, {kind})"


def local_line(zone: bytes, kind: str, client, asked: tuple) -> str:
    """The ``log-local-actions`` line: the local zone (wire), its type, the client, the
    question."""
    return (f"{dns.name.from_wire(zone, 0)[0].to_text()} {kind} {client or '-'} "
            f"{asked[0]} {asked[1]} {asked[2]}")


def query_line(client, q: bytes) -> str:
    """Unbound's ``log-queries`` line: client, name, type, class."""
    asked = question(q)
    if asked is None:
        return f"{client or '-'} - - -"
    name, qtype, qclass, _ = asked
    return f"{client or '-'} {name} {qtype} {qclass}"


class QueryLog:
    """Called by the server for every answer it sends: writes the lines of the logs that
    are on (``cfg``'s ``log-queries``, ``log-replies``, ``log-servfail``,
    ``log-local-actions``; all but the query log off without a ``cfg``). ``zones`` returns
    the resolver's zones (``resolver.zones.Zones`` or None), read at each answer so a reload
    that changes them is seen."""

    def __init__(self, cfg=None, zones=None, logger: logging.Logger | None = None) -> None:
        self.queries = cfg is None or cfg.log_queries
        self.replies = cfg is not None and cfg.log_replies
        # log-tag-queryreply: the lines' word, where others say their level (logs.TAG)
        tagged = cfg is not None and cfg.log_tag_queryreply
        self.query_tag = {logs.TAG: "query"} if tagged else None
        self.reply_tag = {logs.TAG: "reply"} if tagged else None
        self.servfail = cfg is not None and cfg.log_servfail
        self.local_actions = cfg is not None and cfg.log_local_actions and zones is not None
        self.zones = zones
        self.logger = logger or logging.getLogger("resolver.queries")
        self.reply_log = logging.getLogger("resolver.replies")
        self.servfail_log = logging.getLogger("resolver.servfail")
        self.local_log = logging.getLogger("resolver.local")
        for each in (self.logger, self.reply_log, self.local_log):
            each.setLevel(logging.INFO)       # shown whatever the daemon's verbosity

    @staticmethod
    def wanted(cfg) -> bool:
        """Whether ``cfg`` turns on any of the logs."""
        return bool(cfg.log_queries or cfg.log_replies or cfg.log_servfail
                    or cfg.log_local_actions)

    def __call__(self, client, q: bytes, out: bytes, transport: str, seconds: float,
                 hit: bool, reason: tuple | None = None) -> None:
        """One answer: ``reason`` is the resolution's extended error (code, text) when it
        ended in a failure, None when the answer says all there is."""
        if self.queries:
            self.logger.info("%s", query_line(client, q), extra=self.query_tag)
        if self.replies:
            self.reply_log.info("%s", reply_line(client, q, out, seconds, hit),
                                extra=self.reply_tag)
        if self.servfail and len(out) >= 4 and out[3] & 0x0F == 2:
            self.servfail_log.error("%s", servfail_line(q, out, reason))
        if self.local_actions:
            zones = self.zones()
            local = zones.local_zones if zones is not None else None
            asked = question(q) if local is not None else None
            if asked is not None:
                held = local.holder(asked[3], dns.rdatatype.from_text(asked[1]), client)
                if held is not None:    # the client's view's zone, or a global one
                    self.local_log.info("%s", local_line(*held, client, asked))
