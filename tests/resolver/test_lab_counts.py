"""The lab's query counts (``Lab.queries_received``, NSD's statistics read over its control
socket), which the benchmarks use to count a resolver's upstream queries: exact, per server
and summed, and refused for a lab started without control sockets."""
from __future__ import annotations

import pytest

from dnslab import Lab, LabError
from dnslab import zones as Z

ROOT_AND_GTLD = tuple(s for s in Z.SERVERS if s.address in (Z.ROOT_A, Z.GTLD_A))


def test_queries_received_counts_each_query_a_server_was_asked(tmp_path):
    lab = Lab.start(tmp_path, servers=ROOT_AND_GTLD, control=True)
    try:
        root, gtld = lab.server(Z.ROOT_A), lab.server(Z.GTLD_A)
        r0, g0, t0 = root.queries_received(), gtld.queries_received(), lab.queries_received()
        assert t0 == r0 + g0
        for i in range(3):
            lab.ask(Z.ROOT_A, f"n{i}.example.com.")
        for i in range(2):
            lab.ask(Z.GTLD_A, f"n{i}.example.com.", tcp=i == 1)
        assert root.queries_received() - r0 == 3
        assert gtld.queries_received() - g0 == 2
        assert lab.queries_received() - t0 == 5
    finally:
        lab.stop()


def test_a_lab_without_control_sockets_cannot_count(tmp_path):
    lab = Lab.start(tmp_path, servers=ROOT_AND_GTLD[:1])
    try:
        with pytest.raises(LabError, match="control socket"):
            lab.queries_received()
    finally:
        lab.stop()
