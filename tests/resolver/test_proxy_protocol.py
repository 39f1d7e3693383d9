"""The PROXY v2 header parser, sans I/O: the specification's examples by hand, every way a
header can be wrong named by its reason, a stream fed a byte at a time, and hypothesis
feeding it anything (a header, or an error, never another exception)."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.daemon import proxy_protocol as pp
from resolver.daemon.proxy_protocol import ProxyHeaderError, parse

QUERY = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01"


def test_an_ipv4_header_written_by_hand_is_read():
    # 12-byte signature, v2 PROXY, AF_INET over DGRAM, 12 bytes of addresses
    raw = (b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a" + b"\x21\x12\x00\x0c"
           + bytes([192, 0, 2, 7, 127, 0, 0, 1]) + struct.pack("!HH", 40000, 53))
    h = parse(raw + QUERY)
    assert (h.command, h.family, h.transport) == (pp.PROXY, pp.INET, pp.DGRAM)
    assert h.source == ("192.0.2.7", 40000) and h.destination == ("127.0.0.1", 53)
    assert h.length == 28 and (raw + QUERY)[h.length:] == QUERY
    assert h.client(("127.0.0.1", 5300)) == ("192.0.2.7", 40000)


def test_ipv6_tlvs_and_local():
    raw = pp.build(("2001:db8::1", 1234), ("::1", 53), pp.STREAM, ((0x04, b""), (0x02, b"ab")))
    h = parse(raw)
    assert h.source == ("2001:db8::1", 1234) and h.transport == pp.STREAM
    assert h.tlvs == ((0x04, b""), (0x02, b"ab")) and h.length == len(raw)
    local = parse(pp.build(None) + QUERY)
    assert local.command == pp.LOCAL and local.source is None
    assert local.client(("127.0.0.1", 5300)) == ("127.0.0.1", 5300)     # the proxy itself
    # LOCAL with an address block: the block is ignored, not misread as TLVs
    raw = pp.SIGNATURE + b"\x20\x11\x00\x0c" + bytes(12)
    assert parse(raw).command == pp.LOCAL and parse(raw).length == 28


@pytest.mark.parametrize("raw, reason", [
    (QUERY, "signature"),
    (pp.SIGNATURE[:5] + b"x" + pp.SIGNATURE[6:] + b"\x21\x12\x00\x00", "signature"),
    (pp.SIGNATURE + b"\x11\x12\x00\x0c" + bytes(12), "version"),
    (pp.SIGNATURE + b"\x23\x12\x00\x0c" + bytes(12), "command"),
    (pp.SIGNATURE + b"\x21\x42\x00\x0c" + bytes(12), "family"),
    (pp.SIGNATURE + b"\x21\x13\x00\x0c" + bytes(12), "family"),
    (pp.SIGNATURE + b"\x21\x12\x00\x08" + bytes(8), "length"),          # INET needs 12
    (pp.SIGNATURE + b"\x21\x21\x00\x10" + bytes(16), "length"),         # INET6 needs 36
    (pp.SIGNATURE + b"\x21\x12\x00\x0e" + bytes(14), "length"),         # a cut TLV
    (pp.SIGNATURE + b"\x21\x12\x00\x0f" + bytes(12) + b"\x05\x00\x09", "length"),
    (pp.SIGNATURE + b"\x21\x12\xff\xff", "too_long"),
    (pp.SIGNATURE + b"\x21\x12\x00\x0c" + bytes(5), "truncated"),
    (pp.SIGNATURE[:7], "truncated"),
])
def test_a_bad_header_is_refused_with_its_reason(raw, reason):
    with pytest.raises(ProxyHeaderError) as e:
        parse(raw, complete=True)
    assert e.value.reason == reason and e.value.reason in pp.REASONS


def test_a_stream_waits_for_the_whole_header():
    raw = pp.build(("198.51.100.9", 5353), ("127.0.0.1", 53), pp.STREAM) + QUERY
    n = len(raw) - len(QUERY)
    for i in range(n):
        assert parse(raw[:i]) is None               # more bytes needed, not an error
    assert parse(raw[:n]).length == n
    with pytest.raises(ProxyHeaderError):
        parse(b"\r\n\r\n\x00X")                     # wrong already: said at once


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_give_a_header_none_or_a_counted_reason(data, complete):
    try:
        h = parse(data, complete=complete)
    except ProxyHeaderError as e:
        assert e.reason in pp.REASONS
        return
    if h is None:
        assert not complete and len(data) < pp.MAX_HEADER
    else:
        assert pp.FIXED <= h.length <= min(len(data), pp.MAX_HEADER)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str)),
       st.integers(0, 65535), st.integers(0, 65535),
       st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=4),
       st.binary(max_size=64), st.integers(0, 20))
def test_built_headers_read_back_and_mutations_never_escape(host, sport, dport, tlvs, payload,
                                                            flip):
    import ipaddress

    dst = "::1" if ipaddress.ip_address(host).version == 6 else "127.0.0.1"
    raw = pp.build((host, sport), (dst, dport), pp.DGRAM, tuple(tlvs))
    h = parse(raw + payload, complete=True)
    assert h.source == (host, sport) and h.destination == (dst, dport)
    assert h.tlvs == tuple(tlvs) and (raw + payload)[h.length:] == payload
    bent = bytearray(raw + payload)
    bent[flip % len(bent)] ^= 0xA5                  # one byte changed anywhere
    try:
        parse(bytes(bent), complete=True)
    except ProxyHeaderError as e:
        assert e.reason in pp.REASONS


def test_a_proxy_protocol_port_must_be_a_listen_port():
    from resolver.daemon.config import ConfigError, build

    cfg = build(None, {"listen": ["127.0.0.1:5300", "127.0.0.1:53"],
                       "proxy_protocol_port": [5300]})
    assert cfg.proxy_protocol_port == (5300,)
    with pytest.raises(ConfigError, match=r"proxy-protocol-port: 5301 is not a port of listen"):
        build(None, {"listen": ["127.0.0.1:5300"], "proxy_protocol_port": [5300, 5301]})
    with pytest.raises(ConfigError, match="proxy-protocol-port"):
        build(None, {"listen": ["127.0.0.1:5300"], "proxy_protocol_port": [70000]})
