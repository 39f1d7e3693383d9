"""dnspython's ``dns.dnssec``, imported here, where it is needed (RFC 5011 anchors, dig's key
comments), without the warning its import gives: dnspython's DSA support names the classes
cryptography 46 and later deprecate, and cryptography says so, eight lines on stderr at every
start of a daemon with ``auto-trust-anchor-file``. DSA (algorithms 3 and 6) is not validated
here (``resolver.dnssec.sig.SUPPORTED_ALGORITHMS``). Import ``dnssec`` from this module; a
daemon that needs neither never loads it (nor dnspython's cryptography)."""
from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    from dns import dnssec

__all__ = ["dnssec"]
