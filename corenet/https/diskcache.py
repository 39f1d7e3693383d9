"""The HTTP cache's store in a directory (`AsyncClient(cache=DiskCache(path))`): the same rules
as the in-memory `Cache`, kept across processes.

Each stored response is one file, named after hashes of its URL and of the request fields
its Vary names: a fixed header (magic, the size of the metadata slot, the length of the
metadata, a CRC-32 of the metadata and one of the body), the metadata as JSON (URL,
status, fields, Vary values, times) padded to its slot, then the body. A new file is
written under a temporary name and renamed into place, so a reader never sees half of
one. A 304 changes only the metadata: it is rewritten in its slot when it fits (one
write at the start of the file, the body left alone), else the whole file is replaced. A
file that is short, long, or fails its checks (a torn write included) is treated as a
miss, removed and counted in `corrupt`. The files are indexed when the
directory is opened, least recently used first out past `max_bytes` (file sizes). Reads
and writes are plain blocking file calls, made on the loop's thread: suited to a local
disk, not to a network share.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import time
import zlib
from collections import OrderedDict

from .cache import Cache, Entry
from .headers import Headers

_MAGIC = b"CNHTTPC1"
# magic, metadata slot size, metadata length, metadata CRC-32, body CRC-32
_HEAD = struct.Struct("!8sIIII")
_MAX_META = 1024 * 1024  # fields of one response, well past what a server may send
_SLOT_SPARE = 1024  # room left in the slot for the fields a 304 brings
_TMP = ".tmp-"
_STALE_TMP = 3600.0  # a temporary file this old was left by a writer that died


class CorruptEntry(Exception):
    """A cache file that cannot be read back as it was written."""


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _vary_key(vary: dict[str, str | None]) -> str:
    return json.dumps(sorted(vary.items()))


def _meta(url: str, entry: Entry) -> bytes:
    return json.dumps({
        "url": url, "status": entry.status, "reason": entry.reason.decode("latin-1"),
        "version": entry.version,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in entry.headers],
        "vary": entry.vary, "request_time": entry.request_time,
        "response_time": entry.response_time, "length": len(entry.content),
    }).encode()


def _head(meta: bytes, slot: int, body_crc: int) -> bytes:
    """The file's start: the fixed header and the metadata padded to `slot` bytes."""
    return (_HEAD.pack(_MAGIC, slot, len(meta), zlib.crc32(meta), body_crc)
            + meta + bytes(slot - len(meta)))


def encode_entry(url: str, entry: Entry) -> bytes:
    meta = _meta(url, entry)
    slot = -(-(len(meta) + _SLOT_SPARE) // 512) * 512
    return _head(meta, slot, zlib.crc32(entry.content)) + entry.content


def _read_meta(f) -> tuple[dict, int, int]:
    """(metadata, slot size, body CRC-32); the file is left at the body."""
    head = f.read(_HEAD.size)
    if len(head) != _HEAD.size:
        raise CorruptEntry("short header")
    magic, slot, meta_len, meta_crc, body_crc = _HEAD.unpack(head)
    if magic != _MAGIC or slot > _MAX_META or meta_len > slot:
        raise CorruptEntry("not a cache file")
    raw = f.read(slot)
    if len(raw) != slot or zlib.crc32(raw[:meta_len]) != meta_crc:
        raise CorruptEntry("metadata damaged")
    raw = raw[:meta_len]
    try:
        meta = json.loads(raw)
        if not isinstance(meta, dict) or not isinstance(meta.get("vary"), dict):
            raise CorruptEntry("metadata malformed")
    except ValueError as e:
        raise CorruptEntry("metadata malformed") from e
    return meta, slot, body_crc


def _read_entry(f, meta: dict, body_crc: int) -> Entry:
    try:
        length = int(meta["length"])
        content = f.read(length + 1)
        if len(content) != length or zlib.crc32(content) != body_crc:
            raise CorruptEntry("body damaged")
        entry = Entry.__new__(Entry)
        entry.status = int(meta["status"])
        entry.reason = str(meta["reason"]).encode("latin-1")
        entry.version = str(meta["version"])
        entry.headers = [(str(k).encode("latin-1"), str(v).encode("latin-1"))
                         for k, v in meta["headers"]]
        entry.content = content
        entry.vary = meta["vary"]
        entry.request_time = float(meta["request_time"])
        entry.response_time = float(meta["response_time"])
    except (KeyError, TypeError, ValueError, UnicodeError) as e:
        raise CorruptEntry("metadata malformed") from e
    return entry


class DiskCache(Cache):
    """A directory of cached responses, at most `max_bytes` of files; a body over
    `max_entry_bytes` is not kept. Counts `hits`, `revalidated` and `stored` as `Cache`
    does, plus `corrupt` (unreadable files dropped), `evicted` and `write_errors`."""

    def __init__(self, path: str | os.PathLike, max_bytes: int = 256 * 1024 * 1024,
                 max_entry_bytes: int = 16 * 1024 * 1024) -> None:
        super().__init__(max_entries=0, max_bytes=max_bytes, max_entry_bytes=max_entry_bytes)
        self.path = os.fspath(path)
        os.makedirs(self.path, exist_ok=True)
        self._files: OrderedDict[str, int] = OrderedDict()  # name -> size, LRU first
        self._by_url: dict[str, set[str]] = {}
        self.corrupt = self.evicted = self.write_errors = 0
        # (metadata slot size, body CRC-32) of the files last read: what a 304 rewrites.
        self._slots: dict[str, tuple[int, int]] = {}
        self._scan()

    def _scan(self) -> None:
        found = []
        now = time.time()
        with os.scandir(self.path) as it:
            for de in it:
                if not de.is_file(follow_symlinks=False):
                    continue
                st = de.stat(follow_symlinks=False)
                if de.name.startswith(_TMP):
                    if now - st.st_mtime > _STALE_TMP:
                        self._unlink(de.name)
                    continue
                url_hash, dash, _ = de.name.partition("-")
                if dash and len(url_hash) == 32:
                    found.append((st.st_mtime, de.name, st.st_size))
        for _, name, size in sorted(found):
            self._add(name, size)
        self._bytes = sum(self._files.values())
        self._evict()

    def _add(self, name: str, size: int) -> None:
        self._files[name] = size
        self._by_url.setdefault(name.partition("-")[0], set()).add(name)

    def _drop(self, name: str) -> None:
        size = self._files.pop(name, None)
        self._slots.pop(name, None)
        if size is not None:
            self._bytes -= size
            names = self._by_url.get(name.partition("-")[0])
            if names is not None:
                names.discard(name)
                if not names:
                    del self._by_url[name.partition("-")[0]]
        self._unlink(name)

    def _unlink(self, name: str) -> None:
        try:
            os.unlink(os.path.join(self.path, name))
        except FileNotFoundError:
            pass

    def _evict(self) -> None:
        while self._files and self._bytes > self.max_bytes:
            self._drop(next(iter(self._files)))
            self.evicted += 1

    def __len__(self) -> int:
        return len(self._files)

    def clear(self) -> None:
        for name in list(self._files):
            self._drop(name)
        self._bytes = 0

    def lookup(self, url: str, headers: Headers) -> Entry | None:
        for name in sorted(self._by_url.get(_hash(url), ())):
            try:
                with open(os.path.join(self.path, name), "rb") as f:
                    meta, slot, body_crc = _read_meta(f)
                    if meta.get("url") != url or not all(
                            headers.get(n) == v for n, v in meta["vary"].items()):
                        continue
                    entry = _read_entry(f, meta, body_crc)
            except FileNotFoundError:
                self._drop(name)  # removed by someone else
                continue
            except (CorruptEntry, OSError):
                self.corrupt += 1
                self._drop(name)
                continue
            self._files.move_to_end(name)
            self._slots[name] = (slot, body_crc)
            try:
                os.utime(os.path.join(self.path, name))  # the order survives a reopen
            except OSError:
                pass
            return entry
        return None

    def updated(self, url: str, entry: Entry) -> None:
        name = self._name(url, entry)
        slot, body_crc = self._slots.get(name, (0, 0))
        meta = _meta(url, entry)
        if len(meta) <= slot and name in self._files:
            try:
                fd = os.open(os.path.join(self.path, name), os.O_WRONLY)
                try:
                    os.pwrite(fd, _head(meta, slot, body_crc), 0)
                finally:
                    os.close(fd)
                return
            except OSError:
                self.write_errors += 1
                self._drop(name)
                return
        self._keep(url, entry)

    @staticmethod
    def _name(url: str, entry: Entry) -> str:
        return f"{_hash(url)}-{_hash(_vary_key(entry.vary))}"

    def _keep(self, url: str, entry: Entry) -> bool:
        data = encode_entry(url, entry)
        if len(data) > self.max_bytes:
            return False
        name = self._name(url, entry)
        try:
            fd, tmp = tempfile.mkstemp(prefix=_TMP, dir=self.path)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, os.path.join(self.path, name))
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            self.write_errors += 1
            return False
        old = self._files.pop(name, None)
        self._slots.pop(name, None)
        if old is not None:
            self._bytes -= old
        self._add(name, len(data))
        self._bytes += len(data)
        self._evict()
        return True

    def invalidate(self, url: str) -> None:
        for name in list(self._by_url.get(_hash(url), ())):
            self._drop(name)
