"""DNSSEC validation for the resolver: chain of trust, RRSIG checks, denial proofs.

``Validator`` (resolver.dnssec.validator) plugs into the iterator; ``sig`` checks signatures
within the KeyTrap budget; ``denial`` proves NXDOMAIN/NODATA/insecure delegations from
NSEC/NSEC3; ``with_ede`` adds an RFC 8914 Extended DNS Error to a response.
"""
from __future__ import annotations

import struct

from resolver.dnssec.sig import Bogus
from resolver.dnssec.validator import (BOGUS, INSECURE, SECURE, SUSPEND, UNCHECKED, Suspend,
                                       Validator)

EDE_OPTION = 15


def with_ede(wire: bytes, code: int | None, text: str | None = None) -> bytes:
    """``wire`` (a response whose last record is an empty OPT, as ``build_response`` writes
    it) with an Extended DNS Error option carrying ``code`` and ``text``."""
    if code is None or len(wire) < 23 or wire[-2:] != b"\x00\x00" or wire[-11] != 0 \
            or wire[-10:-8] != b"\x00\x29":
        return wire
    extra = (text or "").encode("utf-8", "replace")[:200]
    opt = struct.pack("!HHH", EDE_OPTION, 2 + len(extra), code & 0xFFFF) + extra
    return wire[:-2] + struct.pack("!H", len(opt)) + opt


__all__ = ["Bogus", "Validator", "Suspend", "SUSPEND", "with_ede",
           "UNCHECKED", "INSECURE", "SECURE", "BOGUS"]
