"""The CHAOS-class answers a resolver gives about itself, as Unbound's (its worker's
``answer_chaos``): a TXT or ANY question of class CH for ``id.server.`` or
``hostname.bind.`` is answered with the resolver's identity, one for ``version.server.`` or
``version.bind.`` with its version, and one for ``trustanchor.unbound.`` with the trust
anchors it validates from, each only when it is not hidden (Unbound's ``hide-identity``,
``hide-version``, ``hide-trustanchor``); every other CH question is REFUSED. The answer is
TXT records, TTL 0, without AA (``response.pyx`` ``begin`` writes it)."""
from __future__ import annotations

IDENTITY_NAMES = (b"\x02id\x06server\x00", b"\x08hostname\x04bind\x00")
VERSION_NAMES = (b"\x07version\x06server\x00", b"\x07version\x04bind\x00")
TRUST_ANCHOR_NAME = b"\x0btrustanchor\x07unbound\x00"
#: Unbound's bounds on the trust anchor answer: records (zones), and key tags per zone
MAX_ANCHOR_RECORDS = 16
MAX_ANCHOR_TAGS = 32


def txt(text: str) -> bytes:
    """``text`` as the rdata of one TXT record (one string, cut to 255 bytes as Unbound
    cuts it)."""
    data = text.encode("utf-8", "replace")[:255]
    return bytes([len(data)]) + data


def answers(identity: str | None, version: str | None,
            trust_anchors: bool = False) -> dict:
    """The question names (lower-case wire format) answered, each with its TXT rdata, or
    with a function of the resolver that gives its rdatas when asked (``trust_anchors``:
    those change as RFC 5011 rolls the keys): ``identity`` and ``version`` None are
    hidden, and so are the trust anchors unless ``trust_anchors``."""
    out: dict = {}
    for names, text in ((IDENTITY_NAMES, identity), (VERSION_NAMES, version)):
        if text is not None:
            out.update((name, txt(text)) for name in names)
    if trust_anchors:
        out[TRUST_ANCHOR_NAME] = anchor_texts
    return out


def anchor_texts(resolver) -> list[bytes]:
    """The TXT rdatas of ``trustanchor.unbound.``: one per zone with a trust anchor, in
    canonical order, its name then the key tags of its DS and DNSKEY records in increasing
    order (``. 20326 38696``), as Unbound writes them; none without validation, and none
    for a zone whose anchors name no key (a negative one)."""
    from resolver.dnssec.sig import Key

    validator = getattr(resolver, "dnssec", None)
    if validator is None:
        return []
    out = []
    for anchor in sorted(validator.anchors.values(), key=lambda a: a.name):
        tags = sorted({ds.key_tag for ds in anchor.ds}
                      | {Key(key).tag for key in anchor.dnskey})[:MAX_ANCHOR_TAGS]
        if tags:
            out.append(txt(" ".join([anchor.name.to_text(), *map(str, tags)])))
        if len(out) == MAX_ANCHOR_RECORDS:
            break
    return out
