"""Which leaks a run removes (age, mounts), and one removal with its checks, on a root dir laid out as overlay2 lays
it out in a temporary directory."""

from __future__ import annotations

import os
import shutil

import pytest
from root_dirs import overlay2_root

from ansible_collections.reclaim.docker.plugins.module_utils import _storage_leaks
from ansible_collections.reclaim.docker.plugins.module_utils._disk_walk import walk
from ansible_collections.reclaim.docker.plugins.module_utils._root_dir import categorize, descend
from ansible_collections.reclaim.docker.plugins.module_utils._storage_index import read_index
from ansible_collections.reclaim.docker.plugins.module_utils._storage_leaks import (
    parse_mountinfo,
    paths_in_use,
    plan_removals,
    remove,
    used_by_mount,
)

MOUNTINFO = (
    "36 25 0:32 / /var/lib/docker/overlay2/aaa/merged rw,relatime shared:1 - overlay overlay "
    "rw,lowerdir=/var/lib/docker/overlay2/l/LINK1:/var/lib/docker/overlay2/l/LINK2,"
    "upperdir=/var/lib/docker/overlay2/aaa/diff,workdir=/var/lib/docker/overlay2/aaa/work\n"
    "37 25 0:33 / /mnt/with\\040space rw - tmpfs none rw\n"
    "38 25 0:34 / /var/lib/docker/overlay2/bbb/merged rw - overlay overlay rw,lowerdir=l/LINK3,upperdir=bbb/diff,"
    "workdir=bbb/work\n"
)
LAYER = "d" * 64
LEAK = "e" * 64


def test_mountinfo_is_parsed_with_its_escapes():
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m[0] for m in mounts] == ["/var/lib/docker/overlay2/aaa/merged", "/mnt/with space",
                                      "/var/lib/docker/overlay2/bbb/merged"]
    assert mounts[0][2]["upperdir"] == "/var/lib/docker/overlay2/aaa/diff"


def test_overlay_directories_are_in_use_resolved_and_relative_to_the_driver_home():
    links = {"/var/lib/docker/overlay2/l/LINK1": "/var/lib/docker/overlay2/base/diff",
             "/var/lib/docker/overlay2/l/LINK3": "/var/lib/docker/overlay2/ccc/diff"}
    used = paths_in_use(parse_mountinfo(MOUNTINFO), "/var/lib/docker/overlay2", lambda p: links.get(p, p))
    for path in ("/var/lib/docker/overlay2/base", "/var/lib/docker/overlay2/ccc", "/var/lib/docker/overlay2/bbb",
                 "/var/lib/docker/overlay2/aaa", "/mnt/with space"):
        assert used_by_mount(path, used), path
    assert not used_by_mount("/var/lib/docker/overlay2/cc", used)  # a prefix of a name is not the directory
    assert not used_by_mount("/var/lib/docker/overlay2/zzz", used)


def leak(path, newest):
    return dict(path=path, relative_path=path.lstrip("/"), kind="layer_directory", bytes=4096, accounted_bytes=4096,
                newest=newest, links=[])


def test_young_unknown_age_and_mounted_leaks_are_kept():
    now = 1_000_000.0
    leaks = [leak("/r/overlay2/old", now - 90_000), leak("/r/overlay2/young", now - 60), leak("/r/overlay2/nodate", 0),
             leak("/r/overlay2/mounted", now - 90_000)]
    removals, kept = plan_removals(leaks, {"/r/overlay2/mounted/merged"}, now, 86_400)
    assert [r["path"] for r in removals] == ["/r/overlay2/old"] and removals[0]["age"] == 90_000
    assert {k["path"]: k["reason"].split(":")[0] for k in kept} == {
        "/r/overlay2/young": "too young", "/r/overlay2/nodate": "too young",
        "/r/overlay2/mounted": "a mount uses it (/proc/self/mountinfo)"}


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A root dir with one layer the layer database names and one it does not (with its short link)."""
    monkeypatch.setattr(_storage_leaks, "MOUNTINFO", str(tmp_path / "mountinfo"))
    (tmp_path / "mountinfo").write_text("")
    return overlay2_root(tmp_path / "docker", LAYER, [LEAK], links={LAYER: "KEPTLINK", LEAK: "LEAKLINK"})


def planned(root):
    found = walk(str(root), descend)
    _report, leaks = categorize(str(root), {p: u.as_dict() for p, u in found.units.items()}, read_index(str(root)))
    assert [leak["relative_path"] for leak in leaks] == [f"overlay2/{LEAK}"]
    removals, _kept = plan_removals(leaks, set(), leaks[0]["newest"] + 10, 0)
    return removals[0], leaks[0]["newest"], found.bytes


def test_a_leak_is_removed_with_its_link_and_frees_what_was_priced(root):
    removal, newest, before = planned(root)
    assert removal["links"] == ["overlay2/l/LEAKLINK"]
    action = remove(str(root), removal, newest)
    assert action["status"] == "done" and action["bytes"] == removal["bytes"]
    assert not (root / "overlay2" / LEAK).exists() and not os.path.lexists(root / "overlay2" / "l" / "LEAKLINK")
    assert before - walk(str(root), descend).bytes == removal["bytes"]
    assert (root / "overlay2" / LAYER / "diff" / "data").exists()


def test_a_leak_the_layer_database_names_by_now_is_kept(root):
    removal, newest, _before = planned(root)
    chain = root / "image" / "overlay2" / "layerdb" / "sha256" / ("0" * 64)
    chain.mkdir()
    (chain / "cache-id").write_text(LEAK)
    action = remove(str(root), removal, newest)
    assert (action["status"], action["bytes"]) == ("skipped", 0)
    assert "refers to it now" in action["engine_reason"] and (root / "overlay2" / LEAK).exists()


def test_a_leak_that_changed_since_the_walk_is_kept(root):
    removal, newest, _before = planned(root)
    (root / "overlay2" / LEAK / "diff" / "more").write_bytes(b"y" * 10_000)
    action = remove(str(root), removal, newest)
    assert action["status"] == "skipped" and action["engine_reason"] == "it changed since the walk"


def test_a_leak_a_mount_uses_by_now_is_kept(root, tmp_path):
    removal, newest, _before = planned(root)
    (tmp_path / "mountinfo").write_text(
        f"40 25 0:40 / {root}/overlay2/{LEAK}/merged rw - overlay overlay rw,lowerdir=/x\n")
    action = remove(str(root), removal, newest)
    assert action["status"] == "skipped" and action["engine_reason"] == "a mount uses it now"


def test_a_leak_gone_meanwhile_is_a_skip(root):
    removal, newest, _before = planned(root)
    os.unlink(root / "overlay2" / "l" / "LEAKLINK")
    shutil.rmtree(root / "overlay2" / LEAK)
    action = remove(str(root), removal, newest)
    assert action["status"] == "skipped"
