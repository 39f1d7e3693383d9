"""Queries to authoritative servers over UDP and TCP, on any asyncio loop, by callbacks:
``udp`` (one UDP query in C), ``tcp`` (one TCP query) and ``errors``.

Each UDP query gets its own connected socket (so a fresh kernel-chosen random source port) and
a fresh random ID. A datagram is accepted only from the address asked, with that ID, QR set and
the question section byte-for-byte equal to the one sent (case-sensitive: with
``use-caps-for-id`` the name goes out in random case, and a reply echoing it in another case
ends the query with ``CapsMismatch``); anything else is counted and ignored while the query
keeps waiting. What a reply asks for (no EDNS after FORMERR, TCP after truncation) is
decided by the resolution that sent the query (``resolver.resolution``).
"""
