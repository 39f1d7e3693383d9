"""Queries to authoritative servers over UDP and TCP, on any asyncio loop: ``udp`` (one UDP
query in C), ``tcp`` (one TCP query), ``exchange`` (a query and its retries) and ``errors``.

Each UDP query gets its own connected socket (so a fresh kernel-chosen random source port) and
a fresh random ID. A datagram is accepted only from the address asked, with that ID, QR set and
the question section byte-for-byte equal to the one sent (case-sensitive, so 0x20 case
randomisation can be switched on later); anything else is counted and ignored while the
query keeps waiting. FORMERR to an EDNS query is retried without EDNS (and remembered);
a truncated answer is retried over TCP with the 2-byte length prefix.
"""
