"""The ACL's check of a peer address given as text (TCP, TLS and HTTP connections): only a
well-formed numeric address can be allowed, checked on the bytes it stands for."""
from __future__ import annotations

import pytest

from resolver.daemon.acl import ACL


@pytest.mark.parametrize("host, allowed", [
    ("10.1.2.3", True),
    ("10.255.255.255", True),
    ("11.0.0.1", False),
    ("010.1.2.3", False),              # leading zeros: not a dotted-quad address
    ("10.1.2", False),
    ("10.1.2.3.4", False),
    ("10.1.2.3\0", False),             # a NUL does not cut the text short
    ("10.1.2.3 ", False),
    ("::ffff:10.9.8.7", True),         # IPv4-mapped: the IPv4 address it carries
    ("::ffff:11.9.8.7", False),
    ("::10.9.8.7", False),             # IPv4-compatible is not mapped
    ("2001:db8:0:1::53", True),
    ("2001:DB8::1", True),
    ("2001:db8:1::1", False),
    ("fe80::1%eth0", True),            # a scope suffix is not part of the address
    ("fe80::1%", True),
    ("fe81::1", True),
    ("fec0::1", False),
    ("1ȷ.0.0.1", False),               # not ASCII
    ("", False),
    (None, False),
])
def test_the_acl_checks_the_address_a_text_names(host, allowed):
    acl = ACL(["10.0.0.0/8", "2001:db8:0::/48", "fe80::/10"])
    assert acl.allows(host) is allowed


def test_an_empty_acl_allows_nothing_and_a_host_route_one_address():
    assert not ACL([]).allows("127.0.0.1")
    one = ACL(["192.0.2.7", "::1"])
    assert one.allows("192.0.2.7") and not one.allows("192.0.2.6")
    assert one.allows("::1") and not one.allows("::2")
    assert not one.allows("::ffff:0.0.0.1")


def test_the_longest_prefix_decides_and_the_last_word_on_a_network_holds():
    acl = ACL([("10.0.0.0/8", True), ("10.9.0.0/16", False), ("10.9.8.0/24", True),
               ("::/0", False), ("2001:db8::/32", True), "192.0.2.0/24",
               ("192.0.2.0/24", False)])
    assert acl.allows("10.1.2.3") and not acl.allows("10.9.1.1") and acl.allows("10.9.8.7")
    assert acl.allows("::ffff:10.9.8.7") and not acl.allows("::ffff:10.9.7.7")
    assert acl.allows("2001:db8::1") and not acl.allows("2001:db9::1")
    assert not acl.allows("192.0.2.1")             # refused: given last
    assert not acl.allows("11.0.0.1")              # held by no network
    assert len(acl) == 6
