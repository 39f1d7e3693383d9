"""FrameProtocol driven directly through get_buffer/buffer_updated (no loop, no socket)."""
from __future__ import annotations

import asyncio
import pickle
import tracemalloc

import pytest
from hypothesis import given, settings, strategies as st

from corenet.framing import FrameProtocol, FrameTooLarge, encode_header

from framing_helpers import Collector, encode, feed

HEADERS = [(hs, bo) for hs in (1, 2, 4, 8) for bo in ("big", "little")]


def test_is_a_buffered_protocol():
    p = Collector()
    assert isinstance(p, asyncio.BufferedProtocol)
    assert (p.header_size, p.byteorder, p.max_frame_size) == (4, "big", 16 * 1024 * 1024)


@pytest.mark.parametrize("hs,bo", HEADERS)
def test_header_sizes_and_byte_orders(hs, bo):
    frames = [b"a", b"", b"xyz" * 20, bytes(range(200))]
    p = Collector(hs, bo)
    feed(p, encode(frames, hs, bo))
    assert p.frames == frames


@pytest.mark.parametrize("hs,bo,n,expected", [
    (2, "big", 0x0102, b"\x01\x02"), (2, "little", 0x0102, b"\x02\x01"),
    (4, "big", 5, b"\0\0\0\x05"), (8, "little", 1, b"\x01" + b"\0" * 7),
    (1, "big", 255, b"\xff"),
])
def test_encode_header_layout(hs, bo, n, expected):
    assert encode_header(n, hs, bo) == expected


def test_encode_header_rejects_what_does_not_fit():
    with pytest.raises(ValueError):
        encode_header(256, 1)
    with pytest.raises(ValueError):
        encode_header(65536, 2)
    with pytest.raises(ValueError):
        encode_header(-1)
    assert encode_header(2**32 - 1, 4) == b"\xff" * 4


@pytest.mark.parametrize("kwargs", [{"header_size": 3}, {"byteorder": "middle"},
                                    {"max_frame_size": -1}, {"buffer_size": 8}])
def test_bad_options_raise(kwargs):
    with pytest.raises(ValueError):
        Collector(**kwargs)


def test_split_at_every_point():
    frames = [b"hello", b"", b"world!"]
    data = encode(frames)
    for cut in range(1, len(data)):
        p = Collector()
        feed(p, data, [cut])
        assert p.frames == frames, cut


def test_one_byte_at_a_time():
    frames = [b"x" * 300, b"", b"y"]
    data = encode(frames, 2)
    p = Collector(2, buffer_size=64)
    feed(p, data, range(len(data)))
    assert p.frames == frames


def test_many_frames_in_one_read():
    frames = [bytes([i % 256]) * (i % 7) for i in range(1000)]
    p = Collector()
    calls = []
    orig = p.frame_received
    p.frame_received = lambda f: (calls.append(1), orig(f))
    data = encode(frames)
    buf = p.get_buffer(-1)
    assert len(buf) >= len(data)
    buf[:len(data)] = data
    p.buffer_updated(len(data))
    assert p.frames == frames
    assert len(calls) == 1000  # one call per frame


def test_zero_length_frames_only():
    p = Collector(1)
    feed(p, b"\0" * 50, [7, 13])
    assert p.frames == [b""] * 50


def test_large_frame_gets_a_buffer_of_its_size():
    payload = bytes(range(256)) * 1000  # 256000 bytes, buffer is 4 KiB
    p = Collector(buffer_size=4096)
    data = encode([payload, b"tail"])
    feed(p, data, range(0, len(data), 10000))
    assert p.frames == [payload, b"tail"]
    # first read: the 4 KiB buffer; then exactly what is missing of the frame, shrinking
    # by each read, until the frame is complete and the normal buffer comes back
    missing = len(payload) - (4096 - 4)
    assert p.buffer_sizes[1] == missing
    sizes = p.buffer_sizes[1:]
    big_sizes = sizes[:sizes.index(4096)]
    assert big_sizes == sorted(big_sizes, reverse=True)
    assert all(a - b <= 10000 for a, b in zip(big_sizes, big_sizes[1:]))


def test_large_frame_region_ends_at_frame_end():
    """The kernel can never write the next frame's bytes into the large frame's buffer."""
    p = Collector(buffer_size=64)
    head = encode_header(1000) + b"a" * 60
    feed(p, head)
    buf = p.get_buffer(-1)
    assert len(buf) == 1000 - 60
    buf[:] = b"b" * 940
    p.buffer_updated(940)
    assert p.frames == [b"a" * 60 + b"b" * 940]
    assert len(p.get_buffer(-1)) == 64


def test_frame_that_fits_is_compacted_not_copied_out():
    p = Collector(buffer_size=128)
    frames = [b"a" * 100, b"b" * 100, b"c" * 100]
    feed(p, encode(frames), [50, 120, 230])
    assert p.frames == frames
    assert max(p.buffer_sizes) == 128


def test_too_large_raises_before_reserving_memory():
    p = Collector(8, max_frame_size=1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(FrameTooLarge) as info:
            feed(p, encode_header(1 << 62, 8))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.length == 1 << 62 and info.value.max_frame_size == 1 << 20
    assert isinstance(info.value, ConnectionError)
    assert peak < 1 << 20  # nothing near 2**62 (or even the limit) was allocated
    assert p.frames == []


def test_frames_before_the_oversized_one_are_delivered_and_nothing_after():
    p = Collector(1, max_frame_size=10)
    data = encode([b"ok", b"fine"], 1) + b"\x0b" + b"z" * 11 + encode([b"late"], 1)
    with pytest.raises(FrameTooLarge):
        feed(p, data)
    assert p.frames == [b"ok", b"fine"]
    p.buffer_updated(0)  # after failure, further reads are ignored
    assert p.frames == [b"ok", b"fine"]


def test_exactly_max_frame_size_is_accepted():
    p = Collector(2, max_frame_size=300, buffer_size=64)
    feed(p, encode([b"m" * 300], 2))
    assert p.frames == [b"m" * 300]


def test_buffer_updated_beyond_the_region_is_refused():
    p = Collector()
    buf = p.get_buffer(-1)
    with pytest.raises(ValueError):
        p.buffer_updated(len(buf) + 1)
    q = Collector()
    with pytest.raises(ValueError):
        q.buffer_updated(1)  # no buffer handed out yet


def test_pending_frame_reports_partial_frames():
    p = Collector(buffer_size=64)
    assert p.pending_frame() is None
    feed(p, b"\0\0")
    assert p.pending_frame() == (b"\0\0", None)
    feed(p, b"\0\x05ab")
    assert p.pending_frame() == (b"\0\0\0\x05ab", 9)
    q = Collector(buffer_size=64)
    feed(q, encode_header(100) + b"x" * 70)  # large frame in its own buffer
    assert q.pending_frame() == (encode_header(100) + b"x" * 70, 104)


def test_frame_received_must_be_defined():
    p = FrameProtocol()
    with pytest.raises(NotImplementedError):
        feed(p, encode([b"x"]))


def test_subclass_without_super_init_uses_defaults():
    class Bare(FrameProtocol):
        def __init__(self):  # does not call super().__init__
            self.frames = []

        def frame_received(self, frame):
            self.frames.append(bytes(frame))

    p = Bare()
    feed(p, encode([b"abc"]))
    assert p.frames == [b"abc"]


class Keeper(FrameProtocol):
    """Keeps the views themselves (what the docs say not to do without copying)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.views = []

    def frame_received(self, frame):
        self.views.append(frame)


def test_small_frame_is_a_view_into_the_receive_buffer():
    """A frame that fits the buffer is handed out in place: its memoryview's exporter is the
    very buffer the transport received into, and a byte changed in that buffer during the
    call shows through the frame (a copy would not see it)."""

    class Probe(FrameProtocol):
        def __init__(self):
            super().__init__(buffer_size=4096)
            self.received_into = None
            self.seen = []

        def frame_received(self, frame):
            before = bytes(frame)
            self.received_into[4] = ord("J")  # the first payload byte, in the receive buffer
            self.seen.append((frame.obj, before, bytes(frame)))

    p = Probe()
    data = encode([b"hello"])
    buf = p.get_buffer(-1)
    p.received_into = buf
    buf[:len(data)] = data
    p.buffer_updated(len(data))
    assert len(p.seen) == 1
    exporter, before, after = p.seen[0]
    assert exporter is buf.obj
    assert isinstance(exporter, bytearray) and len(exporter) == 4096
    assert before == b"hello"
    assert after == b"Jello"


def test_kept_views_are_never_retargeted():
    frames = [bytes([i]) * (i + 1) for i in range(50)]
    p = Keeper()
    feed(p, encode(frames))  # one read, no compaction: the memory is still intact
    assert len({id(v) for v in p.views}) == 50
    assert [bytes(v) for v in p.views] == frames


def test_views_holding_an_export_are_not_reused():
    class Exporter(FrameProtocol):
        def __init__(self):
            super().__init__()
            self.held = []
            self.seen = []

        def frame_received(self, frame):
            self.seen.append(id(frame))
            self.held.append(pickle.PickleBuffer(frame))  # takes a buffer export

    p = Exporter()
    frames = [b"one", b"two", b"three"]
    feed(p, encode(frames))
    assert [bytes(h.raw()) for h in p.held] == frames


def test_released_view_is_replaced():
    class Releaser(FrameProtocol):
        def __init__(self):
            super().__init__()
            self.frames = []

        def frame_received(self, frame):
            self.frames.append(bytes(frame))
            frame.release()

    p = Releaser()
    feed(p, encode([b"a", b"bb", b"ccc"]))
    assert p.frames == [b"a", b"bb", b"ccc"]


def test_small_frames_hold_no_memory_per_frame():
    class Counter(FrameProtocol):
        n = 0

        def frame_received(self, frame):
            self.n += len(frame)

    p = Counter()
    data = encode([b"q" * 60] * 2000)
    feed(p, data[:64])  # warm up: buffer and the reusable view exist
    rest = data[64:]
    tracemalloc.start()
    try:
        feed(p, rest)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert p.n == 60 * 2000
    assert peak < 4096  # nothing per frame survives the call (a copy each would be 120 KB+)


@st.composite
def streams(draw):
    hs, bo = draw(st.sampled_from(HEADERS))
    limit = 255 if hs == 1 else 2000
    frames = draw(st.lists(st.binary(max_size=limit), max_size=30))
    data = encode(frames, hs, bo)
    cuts = draw(st.lists(st.integers(0, max(len(data), 1)), max_size=40))
    buffer_size = draw(st.sampled_from([64, 100, 1024, 256 * 1024]))
    return hs, bo, frames, data, cuts, buffer_size


@settings(max_examples=300, deadline=None)
@given(streams())
def test_random_streams_cut_at_random_points(case):
    hs, bo, frames, data, cuts, buffer_size = case
    p = Collector(hs, bo, buffer_size=buffer_size)
    feed(p, data, cuts)
    assert p.frames == frames
    assert p.pending_frame() is None


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=20),
       st.sampled_from(HEADERS))
def test_garbage_never_crashes(data, cuts, header):
    hs, bo = header
    p = Collector(hs, bo, max_frame_size=1000, buffer_size=256)
    try:
        feed(p, data, cuts)
    except FrameTooLarge as exc:
        assert exc.length > 1000
    assert all(len(f) <= 1000 for f in p.frames)


def test_frame_receiver_serves_any_owner():
    """The sans-IO core on its own, as a Cython listener or another protocol would use it."""
    from corenet.framing import FrameReceiver

    class Owner:
        def __init__(self):
            self.frames = []

        def frame_received(self, frame):
            self.frames.append(frame.tobytes())

    owner = Owner()
    r = FrameReceiver(owner, 2, "little", 1000, 64)
    feed(r, encode([b"abc", b"", b"z" * 200], 2, "little"))
    assert owner.frames == [b"abc", b"", b"z" * 200]
    assert r.header_for(b"abc") == b"\x03\x00"
    assert (r.header_size, r.byteorder, r.max_frame_size, r.buffer_size) == (2, "little", 1000, 64)
