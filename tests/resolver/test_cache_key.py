"""The message cache's key of a client's question (``resolver.cache.answer.parse_query``, the
door's hit path and the miss's key): the question's name lower-cased exactly as ``bytes.lower``
does (ASCII capitals only; every other byte, 0x80 and up included, kept), then its type and
class and the variant byte; a name the hit path does not take (compressed, longer than 255
bytes, running past the message) gives None."""
from __future__ import annotations

import struct

from hypothesis import given, settings, strategies as st

from resolver.cache.answer import parse_query

HEADER = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
QTYPE_CLASS = struct.pack("!HH", 28, 1)

labels = st.lists(st.binary(min_size=1, max_size=63), min_size=0, max_size=8)


def wire_name(parts: list[bytes]) -> bytes:
    return b"".join(bytes([len(p)]) + p for p in parts) + b"\x00"


@settings(max_examples=400, deadline=None)
@given(labels)
def test_the_key_is_the_name_as_bytes_lower_gives_it(parts):
    name = wire_name(parts)
    got = parse_query(HEADER + name + QTYPE_CLASS)
    if len(name) > 255:
        assert got is None
        return
    key, qend = got
    assert key[: len(name)] == name.lower()
    assert key[len(name): len(name) + 4] == QTYPE_CLASS
    assert len(key) == len(name) + 5
    assert qend == 12 + len(name) + 4


def test_every_byte_value_and_the_letters_edges():
    """Each of the 256 byte values in each position of an eight-byte word and the tail
    (the name is folded eight bytes at a time, then byte by byte)."""
    for value in range(256):
        for size in (1, 7, 8, 9, 17, 63):
            for at in range(size):
                label = bytearray(b"q" * size)
                label[at] = value
                name = wire_name([bytes(label), b"Zz@[`{"])
                key, _ = parse_query(HEADER + name + QTYPE_CLASS)
                assert key[: len(name)] == name.lower(), (value, size, at)


def test_names_the_hit_path_leaves_to_the_engine():
    longest = wire_name([b"a" * 63] * 3 + [b"b" * 61])          # 255 bytes: taken
    assert len(longest) == 255 and parse_query(HEADER + longest + QTYPE_CLASS) is not None
    too_long = wire_name([b"a" * 63] * 3 + [b"b" * 62])         # 256 bytes
    assert parse_query(HEADER + too_long + QTYPE_CLASS) is None
    assert parse_query(HEADER + b"\x03www\xc0\x0c" + QTYPE_CLASS) is None   # compressed
    assert parse_query(HEADER + b"\x40" + b"a" * 64 + b"\x00" + QTYPE_CLASS) is None
    cut = HEADER + wire_name([b"example", b"com"])
    for end in range(12, len(cut) + 4):
        assert parse_query((cut + QTYPE_CLASS)[:end]) is None
