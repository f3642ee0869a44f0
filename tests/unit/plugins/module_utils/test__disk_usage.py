"""Disk usage as `docker system df` reports it: the CLI's arithmetic over /system/df answers (recorded engines' through
the stub engine, and hand-made ones with the sizes an engine leaves uncomputed), the filesystem as df(1) shows it, and
the usage a check run predicts."""

from __future__ import annotations

import os
from collections import namedtuple

import pytest
from snapshot_helpers import FLAVOURS, recorded
from stub_engine import StubEngine

from ansible_collections.reclaim.docker.plugins.module_utils import _disk_usage
from ansible_collections.reclaim.docker.plugins.module_utils._disk_usage import (
    USAGE_TYPES,
    df_types,
    filesystem_usage,
    image_usage,
    predicted_usage,
    summarize,
)

DF = {
    "LayersSize": 10_000,
    "Images": [dict(Size=4000, SharedSize=1000, Containers=2), dict(Size=3000, SharedSize=-1, Containers=1),
               dict(Size=2000, SharedSize=0, Containers=0), dict(Size=-1, SharedSize=-1, Containers=0)],
    "Containers": [dict(State="running", SizeRw=100), dict(State="paused", SizeRw=20),
                   dict(State="restarting", SizeRw=3), dict(State="exited", SizeRw=400),
                   dict(State="created", SizeRw=-1), dict(State="dead")],
    "Volumes": [dict(UsageData=dict(Size=50, RefCount=1)), dict(UsageData=dict(Size=70, RefCount=0)),
                dict(UsageData=dict(Size=-1, RefCount=-1)), dict(UsageData=None)],
    "BuildCache": [dict(Size=5, InUse=True, Shared=False), dict(Size=7, InUse=False, Shared=False),
                   dict(Size=11, InUse=False, Shared=True), dict(Size=-1, InUse=False, Shared=False)],
}


def test_the_cli_arithmetic_with_the_sizes_an_engine_did_not_compute():
    summary = summarize(DF, USAGE_TYPES)
    # Images: in use, each image's own bytes (Size - SharedSize) are used; one without SharedSize counts none.
    assert summary["images"] == dict(count=4, active=2, size=10_000, reclaimable=10_000 - 3000)
    # Paused and restarting containers are active, as the CLI counts them; -1 and missing sizes are 0.
    assert summary["containers"] == dict(count=6, active=3, size=523, reclaimable=400)
    assert summary["volumes"] == dict(count=4, active=1, size=120, reclaimable=70)
    # Shared records are the images' bytes: neither in size nor reclaimable.
    assert summary["build_cache"] == dict(count=4, active=1, size=12, reclaimable=7)


def test_only_the_types_asked_for_and_nothing_listed_is_zero():
    assert list(summarize(DF, ["volumes", "images"])) == ["images", "volumes"]
    empty = summarize({"Images": None, "LayersSize": -1}, USAGE_TYPES)
    assert all(usage == dict(count=0, active=0, size=0, reclaimable=0) for usage in empty.values())


def test_reclaimable_images_never_go_below_zero():
    # An engine whose LayersSize lags its images' sizes (the containerd store's unpacked and content bytes).
    df = {"LayersSize": 100, "Images": [dict(Size=500, SharedSize=0, Containers=1)]}
    assert summarize(df, ["images"])["images"]["reclaimable"] == 0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_recorded_engines_summaries_count_their_objects(flavour):
    snapshot = recorded(flavour)
    summary = summarize(StubEngine(snapshot).system_df(df_types(USAGE_TYPES)), USAGE_TYPES)
    used = {c.image_id for c in snapshot.containers.values()}
    assert summary["images"]["count"] == len(snapshot.images)
    assert summary["images"]["active"] == len(used & set(snapshot.images)) > 0
    assert summary["images"]["size"] == sum(snapshot.layer_sizes.values())
    # The images in use keep their own bytes, where the engine computed them (20.10's list has no SharedSize).
    computed = any(snapshot.images[i].shared_size >= 0 for i in used if i in snapshot.images)
    assert 0 < summary["images"]["reclaimable"] <= summary["images"]["size"]
    assert (summary["images"]["reclaimable"] < summary["images"]["size"]) is computed
    stopped = [c.size_rw for c in snapshot.containers.values() if not c.running]
    assert summary["containers"] == dict(count=len(snapshot.containers), active=len(snapshot.containers) - len(stopped),
                                         size=sum(c.size_rw for c in snapshot.containers.values()),
                                         reclaimable=sum(stopped))


def test_df_types_are_the_apis_names_in_a_set_order():
    assert df_types(["build_cache", "images"]) == ["image", "build-cache"]
    assert df_types(USAGE_TYPES) == ["image", "container", "volume", "build-cache"]


StatVFS = namedtuple("StatVFS", "f_blocks f_bfree f_bavail f_frsize")


def test_the_filesystem_as_df_shows_it_without_roots_reserve(monkeypatch):
    # 1000 blocks of 4096: 300 free, of which 250 for non-root users (50 reserved for root).
    monkeypatch.setattr(os, "statvfs", lambda path: StatVFS(1000, 300, 250, 4096))
    usage = filesystem_usage("/var/lib/docker")
    assert usage == dict(path="/var/lib/docker", total=4_096_000, used=2_867_200, free=1_024_000,
                         used_percent=round(100 * 700 / 950, 2))
    monkeypatch.setattr(os, "statvfs", lambda path: StatVFS(0, 0, 0, 4096))
    assert filesystem_usage("/empty")["used_percent"] == 0.0


def test_image_usage_reads_the_filesystem_only_on_the_docker_host(monkeypatch):
    snapshot = recorded("28.5")
    monkeypatch.setattr(_disk_usage, "filesystem_usage", lambda path: dict(path=path))
    local = StubEngine(snapshot)
    assert image_usage(local) == dict(images_bytes=sum(snapshot.layer_sizes.values()), filesystem=dict(path="/"))
    local.is_local = False
    assert image_usage(local)["filesystem"] is None


def test_a_prediction_moves_the_freed_bytes_from_used_to_free():
    before = dict(images_bytes=5000, filesystem=dict(path="/d", total=10_000, used=6000, free=3000, used_percent=66.67))
    after = predicted_usage(before, 1000, 1500)
    assert after == dict(images_bytes=4000, filesystem=dict(path="/d", total=10_000, used=4500, free=4500,
                                                            used_percent=50.0))
    assert before["filesystem"]["used"] == 6000  # the usage read before stays as read
    assert predicted_usage(dict(images_bytes=5000, filesystem=None), 1000, 1500) == dict(images_bytes=4000,
                                                                                         filesystem=None)
