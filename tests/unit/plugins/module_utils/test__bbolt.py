"""The bbolt reader, on databases recorded from real engines (record_storage.py) and on damaged copies of them."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.reclaim.docker.plugins.module_utils import _bbolt

STORAGE = Path(__file__).resolve().parent / "storage"


def database(name):
    return gzip.decompress((STORAGE / name).read_bytes())


def test_containerd_metadata_is_read_as_containerd_wrote_it():
    root = _bbolt.parse(database("28.5-containerd.meta.db.gz"))
    moby = root.bucket("v1", "moby")
    assert {b"docker.io/rec/rec/used:1", b"docker.io/rec/rec/idle:1", b"docker.io/rec/rec/bk:1"} <= set(
        moby.bucket("images").buckets)
    snapshots = moby.bucket("snapshots", "overlayfs")
    assert all(s.text("name").startswith("moby/") for s in snapshots.buckets.values())
    for digest, blob in moby.bucket("content", "blob").buckets.items():
        assert digest.startswith(b"sha256:") and b"size" in blob.values


def test_the_snapshotter_gives_each_snapshot_an_id():
    snapshots = _bbolt.parse(database("28.5-containerd.snapshotter.db.gz")).bucket("v1", "snapshots")
    assert snapshots.buckets and all(b"id" in s.values for s in snapshots.buckets.values())


def test_buildkit_snapshots_on_the_graph_driver():
    root = _bbolt.parse(database("28.5.buildkit-snapshots.db.gz"))
    assert root.buckets and any(b.text("committed") for b in root.buckets.values())


def test_a_damaged_meta_page_falls_back_to_the_other():
    data = bytearray(database("28.5-containerd.meta.db.gz"))
    newest = _bbolt.newest_meta(bytes(data))
    first = _bbolt._meta(bytes(data), 0)
    damaged_at = 0 if first and first["txid"] == newest["txid"] else newest["page_size"]
    data[damaged_at + 16 + 40] ^= 0xFF  # the txid: the checksum no longer holds
    assert _bbolt.newest_meta(bytes(data))["txid"] == newest["txid"] - 1
    assert _bbolt.parse(bytes(data)).bucket("v1") is not None


def test_no_valid_meta_page_is_no_database():
    with pytest.raises(_bbolt.BoltError, match="not a bbolt database"):
        _bbolt.parse(b"\0" * 8192)


def test_a_page_beyond_the_file_is_refused():
    data = database("28.5-containerd.meta.db.gz")
    with pytest.raises(_bbolt.BoltError):
        _bbolt.parse(data[:3 * 4096])


def test_read_gives_up_on_a_file_that_changes_under_every_read(tmp_path, monkeypatch):
    path = tmp_path / "meta.db"
    path.write_bytes(database("28.5-containerd.meta.db.gz"))
    monkeypatch.setattr(os, "pread", lambda fd, size, offset: b"\1" * size)
    with pytest.raises(_bbolt.BoltError, match="changed during each"):
        _bbolt.read(path)


def test_read_gives_the_database(tmp_path):
    path = tmp_path / "meta.db"
    path.write_bytes(database("28.5-containerd.meta.db.gz"))
    assert _bbolt.read(path).bucket("v1", "moby", "images") is not None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3 * 4096), st.integers(min_value=0, max_value=40))
def test_garbage_raises_bolt_error_only(noise, page):
    data = bytearray(database("28.5.buildkit-snapshots.db.gz"))
    start = min(len(data) - 1, 2 * 4096 + page * 16)
    data[start:start + len(noise)] = noise
    try:
        _bbolt.parse(bytes(data))
    except _bbolt.BoltError:
        pass


def test_struct_sizes_are_bbolts():
    assert (_bbolt.PAGE_HEADER.size, _bbolt.LEAF_ELEMENT.size, _bbolt.BRANCH_ELEMENT.size) == (16, 16, 16)
    assert struct.calcsize("<IIII QQ QQQ") == _bbolt.CHECKSUMMED
