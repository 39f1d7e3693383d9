"""dnslab: a DNS hierarchy on loopback for testing a recursive resolver.

``Lab.start(tmpdir)`` runs real NSD servers for a root, TLDs and second-level zones on
127.0.0.x addresses sharing one port (``lab.port``); a resolver started with
``root_hints=lab.root_hints, port=lab.port`` resolves from the lab's root. ``cases.CASES``
lists the names per case with their expected data; ``dnslab.fake`` is a scriptable
authoritative server for faults NSD cannot produce.
"""
import os
import sys

# tests/ holds procs.py (stopping child processes), shared with the other test areas; pytest
# has it on sys.path already, benchmarks and ``python -m dnslab`` get it here.
_TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _TESTS not in sys.path:
    sys.path.append(_TESTS)

from . import zones  # noqa: E402
from .cases import CASES, FAST_CASES, Case, bulk_names, many_zone_names  # noqa: E402
from .lab import Lab  # noqa: E402
from .nsd import LabError  # noqa: E402

__all__ = ["CASES", "FAST_CASES", "Case", "Lab", "LabError", "bulk_names", "many_zone_names", "zones"]
