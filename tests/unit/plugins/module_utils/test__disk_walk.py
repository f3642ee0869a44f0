"""The walk counts what du -sx counts: allocated blocks, a hard-linked file once, by units that add up to the total."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.reclaim.docker.plugins.module_utils._disk_walk import walk, walk_unit


def du(path):
    return int(subprocess.run(["du", "-sx", "--block-size=1", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


@pytest.fixture
def tree(tmp_path):
    top = tmp_path / "top"
    (top / "a" / "deep").mkdir(parents=True)
    (top / "b").mkdir()
    (top / "a" / "deep" / "data").write_bytes(os.urandom(50_000))
    (top / "b" / "shared").write_bytes(os.urandom(20_000))
    os.link(top / "b" / "shared", top / "a" / "shared-too")  # one inode, two units
    (top / "b" / "own").write_bytes(os.urandom(9_000))
    os.link(top / "b" / "own", top / "b" / "own-too")  # one inode, both links in b
    os.symlink("a/deep/data", top / "link")
    (top / "file").write_bytes(b"x" * 100)
    return top


def test_units_add_up_to_du(tree):
    found = walk(str(tree), lambda parts: parts == ())
    assert found.bytes == du(tree) and found.problems == []
    assert set(found.units) == {"", "a", "b", "link", "file"}


def test_a_hard_link_counts_once_and_frees_only_where_all_its_links_are(tree):
    found = walk(str(tree), lambda parts: parts == ())
    blocks = {name: os.lstat(tree / name).st_blocks * 512 for name in ("a", "a/deep", "a/deep/data", "b", "b/shared",
                                                                       "b/own")}
    a, b = found.units["a"], found.units["b"]
    # Counted once in all, where the walk met it first.
    assert a.bytes + b.bytes == blocks["a"] + blocks["a/deep"] + blocks["a/deep/data"] + blocks["b"] \
        + blocks["b/shared"] + blocks["b/own"]
    # Removing b frees its own file (both links inside), not the one a links too; and the other way round.
    assert b.freeable == walk_unit(str(tree / "b")).freeable == blocks["b"] + blocks["b/own"]
    assert a.freeable == blocks["a"] + blocks["a/deep"] + blocks["a/deep/data"]


def test_descending_makes_each_entry_a_unit(tree):
    found = walk(str(tree), lambda parts: parts in ((), ("a",)))
    assert {"a", "a/deep", "a/shared-too"} <= set(found.units)
    assert found.bytes == du(tree)
    assert found.units["a"].bytes == os.lstat(tree / "a").st_blocks * 512  # its own inode only


def test_newest_change_is_the_latest_mtime_or_ctime_inside(tree):
    unit = walk_unit(str(tree / "a"))
    newest = max(max(os.lstat(p).st_mtime, os.lstat(p).st_ctime)
                 for p in (tree / "a", tree / "a" / "deep", tree / "a" / "deep" / "data", tree / "a" / "shared-too"))
    assert unit.newest == newest


def test_an_unreadable_directory_is_a_problem_not_a_failure(tree, monkeypatch):
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("/b"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)
    monkeypatch.setattr(os, "scandir", scandir)
    found = walk(str(tree), lambda parts: parts == ())
    assert found.problems == [f"{tree}/b: Permission denied"]
    with pytest.raises(OSError):
        walk_unit(str(tree / "b"))
