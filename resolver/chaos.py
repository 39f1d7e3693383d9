"""The CHAOS-class answers a resolver gives about itself, as Unbound's (its worker's
``answer_chaos``): a TXT or ANY question of class CH for ``id.server.`` or
``hostname.bind.`` is answered with the resolver's identity, one for ``version.server.`` or
``version.bind.`` with its version, each only when it is not hidden (Unbound's
``hide-identity``, ``hide-version``); every other CH question is REFUSED. The answer is one
TXT record, TTL 0, without AA (``response.pyx`` ``begin`` writes it)."""
from __future__ import annotations

IDENTITY_NAMES = (b"\x02id\x06server\x00", b"\x08hostname\x04bind\x00")
VERSION_NAMES = (b"\x07version\x06server\x00", b"\x07version\x04bind\x00")


def txt(text: str) -> bytes:
    """``text`` as the rdata of one TXT record (one string, cut to 255 bytes as Unbound
    cuts it)."""
    data = text.encode("utf-8", "replace")[:255]
    return bytes([len(data)]) + data


def answers(identity: str | None, version: str | None) -> dict[bytes, bytes]:
    """The question names (lower-case wire format) answered, each with its TXT rdata:
    ``identity`` and ``version`` None are hidden."""
    out: dict[bytes, bytes] = {}
    for names, text in ((IDENTITY_NAMES, identity), (VERSION_NAMES, version)):
        if text is not None:
            out.update((name, txt(text)) for name in names)
    return out
