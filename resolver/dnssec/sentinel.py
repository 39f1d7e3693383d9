"""The root key sentinel (RFC 8509), sans-IO: what a validating resolver answers to an A or
AAAA question whose first label is ``root-key-sentinel-is-ta-NNNNN`` or
``root-key-sentinel-not-ta-NNNNN`` (NNNNN: a key tag, five decimal digits), so that a
user can learn which root keys the resolver trusts.

Only a SECURE answer is touched (RFC 8509 3.2): for ``is-ta`` with a key tag not among the
root's trust anchor keys, and for ``not-ta`` with one among them, the answer becomes SERVFAIL;
every other answer is left as it is. The keys are those of the root trust anchor in use, as
Unbound reads them (``anchor_has_keytag``): the key tags of its DS records and of its DNSKEY
records. ``resolver.resolution`` asks :func:`verdict` where a resolution of an A or AAAA
question ends SECURE and its first label has one of the ``LENGTHS`` (a test in C), so the
daemon and the library answer alike.
"""
from __future__ import annotations

from resolver.dnssec.sig import Key
from resolver.iterator import Result, SERVFAIL

IS_TA = b"root-key-sentinel-is-ta-"
NOT_TA = b"root-key-sentinel-not-ta-"
ROOT = b"\x00"
#: the first label's length for each form: its prefix and the five digits of the key tag
LENGTHS = (len(IS_TA) + 5, len(NOT_TA) + 5)


def sentinel(qname: bytes) -> tuple[bool, int] | None:
    """(is-ta, key tag) of a sentinel first label, or None when the label is not one."""
    if not qname:
        return None
    n = qname[0]
    label = qname[1:1 + n].lower()
    for prefix, is_ta in ((IS_TA, True), (NOT_TA, False)):
        if len(label) == len(prefix) + 5 and label.startswith(prefix):
            digits = label[len(prefix):]
            if digits.isdigit():
                tag = int(digits)
                return (is_ta, tag) if tag <= 0xFFFF else None
    return None


def root_key_tags(anchors: dict) -> frozenset[int]:
    """The key tags of the root's trust anchor (``resolver.dnssec.trust_anchor.load``'s
    dict): its DS records' and its DNSKEY records' (RFC 4034 appendix B)."""
    anchor = anchors.get(ROOT)
    if anchor is None:
        return frozenset()
    return frozenset([ds.key_tag for ds in anchor.ds]
                     + [Key(k).tag for k in anchor.dnskey])


def verdict(qname: bytes, res: Result, anchors: dict) -> Result:
    """``res``, the SECURE result of an A or AAAA question, or SERVFAIL where
    RFC 8509 3.2 says so for a sentinel name."""
    found = sentinel(qname)
    if found is None:
        return res
    is_ta, tag = found
    trusted = tag in root_key_tags(anchors)
    if is_ta == trusted:
        return res
    why = ("is not" if is_ta else "is") + f" a root trust anchor key (tag {tag:05d})"
    return Result(SERVFAIL, reason=f"root key sentinel: the key {why}")
