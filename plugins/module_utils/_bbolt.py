# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""A read-only reader of bbolt databases (go.etcd.io/bbolt), the key-value files containerd and BuildKit keep their
metadata in: containerd's meta.db, its snapshotters' metadata.db, BuildKit's snapshots.db.

A bbolt file is a B+tree of fixed-size pages. Pages 0 and 1 are meta pages; the valid one with the higher transaction
ID names the root bucket. A bucket is a B+tree of branch and leaf pages, or an inline page inside its parent's value;
a leaf element flagged as a bucket holds a nested bucket. Everything is little-endian on the hosts Docker runs on.

The owner (containerd, dockerd) writes while we read, without a reader's lock. A committed transaction never
overwrites the pages its meta page reaches, and pages are reused only after a later commit; so the whole file is read
at once and accepted only when its meta page still is the newest afterwards (otherwise it is read again).

Standard library only, Python 3.9 and later (it runs on the Docker host's Python).
"""

from __future__ import annotations

import os
import struct
import time

MAGIC = 0xED0CDAED
VERSION = 2
BRANCH_PAGE, LEAF_PAGE, META_PAGE = 0x01, 0x02, 0x04
BUCKET_LEAF = 0x01
PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
META = struct.Struct("<IIII QQ QQQ Q")  # magic, version, page size, flags, root (pgid, sequence), freelist, pgid, txid,
# checksum
BRANCH_ELEMENT = struct.Struct("<IIQ")  # pos, ksize, pgid
LEAF_ELEMENT = struct.Struct("<IIII")  # flags, pos, ksize, vsize
BUCKET_HEADER = struct.Struct("<QQ")  # root pgid (0: inline), sequence
CHECKSUMMED = 56  # the meta's bytes before its checksum
# A file changing under every read is being rewritten as fast as we read: give up rather than loop.
READ_ATTEMPTS = 5
RETRY_PAUSE = 0.1  # seconds, times the attempt's number: 1 s of pauses in all
# Deeper trees than this are not what bbolt writes (it is balanced); a loop in a corrupt file must end.
MAX_DEPTH = 64


class BoltError(Exception):
    """The file is not a bbolt database this reader understands, or it changed under every read; the message says
    why, as the end of a sentence."""


def _fnv64a(data):
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def _meta(data, offset):
    if len(data) < offset + PAGE_HEADER.size + META.size:
        return None
    fields = META.unpack_from(data, offset + PAGE_HEADER.size)
    magic, version, page_size, _flags, root, _sequence, _freelist, _pgid, txid, checksum = fields
    body = data[offset + PAGE_HEADER.size:offset + PAGE_HEADER.size + CHECKSUMMED]
    if magic != MAGIC or version != VERSION or _fnv64a(body) != checksum:
        return None
    return dict(page_size=page_size, root=root, txid=txid)


def newest_meta(data):
    """The valid meta page with the higher transaction ID: {page_size, root, txid}. BoltError when neither is valid."""
    first = _meta(data, 0)
    # The second meta page sits one page in; the first tells the page size (if it is damaged, try the usual sizes).
    sizes = [first["page_size"]] if first else [4096, 8192, 16384, 65536]
    candidates = [first] + [_meta(data, size) for size in sizes]
    valid = [m for m in candidates if m]
    if not valid:
        raise BoltError("it is not a bbolt database (no valid meta page)")
    return max(valid, key=lambda m: m["txid"])


class Bucket:
    """One bucket of a database read into memory: keys to values (bytes) and keys to nested buckets."""

    def __init__(self, values, buckets):
        self.values = values
        self.buckets = buckets

    def bucket(self, *path):
        """The nested bucket at PATH (names as str or bytes), or None."""
        found = self
        for name in path:
            found = found.buckets.get(name.encode() if isinstance(name, str) else name)
            if found is None:
                return None
        return found

    def text(self, key):
        """The value of KEY as text, or None."""
        value = self.values.get(key.encode() if isinstance(key, str) else key)
        return value.decode("utf-8", "replace") if value is not None else None


class _Reader:
    def __init__(self, data, page_size):
        self.data = data
        self.page_size = page_size

    def page(self, pgid):
        offset = pgid * self.page_size
        if offset + PAGE_HEADER.size > len(self.data):
            raise BoltError(f"page {pgid} lies beyond the end of the file")
        return offset

    def bucket(self, root, inline_page=None, depth=0):
        values, buckets = {}, {}
        for flags, key, value in self._elements(root, inline_page, depth):
            if flags & BUCKET_LEAF:
                if len(value) < BUCKET_HEADER.size:
                    raise BoltError(f"bucket {key!r} has a short header")
                child_root, _sequence = BUCKET_HEADER.unpack_from(value)
                inline = value[BUCKET_HEADER.size:] if child_root == 0 else None
                buckets[key] = self.bucket(child_root, inline, depth + 1)
            else:
                values[key] = value
        return Bucket(values, buckets)

    def _elements(self, pgid, inline_page, depth):
        """(flags, key, value) of every leaf element under page PGID (or of INLINE_PAGE), in key order."""
        if depth > MAX_DEPTH:
            raise BoltError("its buckets nest deeper than any bbolt database")
        data, offset = (inline_page, 0) if inline_page is not None else (self.data, self.page(pgid))
        if len(data) < offset + PAGE_HEADER.size:
            raise BoltError("a page header is cut short")
        _id, flags, count, _overflow = PAGE_HEADER.unpack_from(data, offset)
        elements = offset + PAGE_HEADER.size
        if flags & LEAF_PAGE:
            for i in range(count):
                at = elements + i * LEAF_ELEMENT.size
                element_flags, pos, ksize, vsize = LEAF_ELEMENT.unpack_from(data, at)
                start = at + pos
                if start + ksize + vsize > len(data):
                    raise BoltError("a leaf element lies beyond its page")
                yield element_flags, bytes(data[start:start + ksize]), bytes(data[start + ksize:start + ksize + vsize])
        elif flags & BRANCH_PAGE and inline_page is None:
            for i in range(count):
                _pos, _ksize, child = BRANCH_ELEMENT.unpack_from(data, elements + i * BRANCH_ELEMENT.size)
                yield from self._elements(child, None, depth + 1)
        else:
            raise BoltError(f"page {pgid} is neither a branch nor a leaf page (flags {flags:#x})")


def parse(data):
    """The root bucket of the database whose whole file is DATA (bytes). BoltError when it is not one."""
    meta = newest_meta(data)
    try:
        return _Reader(memoryview(data), meta["page_size"]).bucket(meta["root"])
    except (struct.error, RecursionError) as exc:
        raise BoltError(f"it is damaged ({exc})") from exc


def read(path):
    """The root bucket of the bbolt database at PATH, read whole while its owner may be writing it: accepted when its
    newest meta page is the same after the read as in what was read. OSError when it cannot be read; BoltError when it
    is not a database or kept changing."""
    for attempt in range(READ_ATTEMPTS):
        if attempt:
            time.sleep(RETRY_PAUSE * attempt)  # let a burst of commits pass
        with open(path, "rb") as handle:
            data = handle.read()
            head = os.pread(handle.fileno(), 2 * newest_meta(data)["page_size"], 0) if data else b""
        if not data:
            raise BoltError("the file is empty")
        if head == data[:len(head)]:
            return parse(data)
    raise BoltError(f"it changed during each of {READ_ATTEMPTS} reads")
