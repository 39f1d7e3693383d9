"""dnslab: a DNS hierarchy on loopback for testing a recursive resolver.

``Lab.start(tmpdir)`` runs real NSD servers for a root, TLDs and second-level zones on
127.0.0.x addresses sharing one port (``lab.port``); a resolver started with
``root_hints=lab.root_hints, port=lab.port`` resolves from the lab's root. ``cases.CASES``
lists the names per case with their expected data; ``dnslab.fake`` is a scriptable
authoritative server for faults NSD cannot produce.
"""
from . import zones
from .cases import CASES, FAST_CASES, Case, bulk_names, many_zone_names
from .lab import Lab
from .nsd import LabError

__all__ = ["CASES", "FAST_CASES", "Case", "Lab", "LabError", "bulk_names", "many_zone_names", "zones"]
