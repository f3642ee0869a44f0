"""The root dir explained, from walks and storage indexes recorded on real engines (record_storage.py): every byte in
a category, leaks where the metadata names nothing, and nothing leaked when the metadata could not be read whole."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.reclaim.docker.plugins.module_utils._root_dir import CATEGORIES, categorize, descend
from ansible_collections.reclaim.docker.plugins.module_utils._storage_index import StorageIndex

STORAGE = Path(__file__).resolve().parent / "storage"
FLAVOURS = ("20.10", "28.5", "28.5-containerd")


def recorded(flavour):
    return json.loads((STORAGE / f"{flavour}.json").read_text())


def explain(data, index=None):
    return categorize(data["root"], data["units"], index or StorageIndex.from_dict(data["index"]))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_recorded_byte_has_a_category(flavour):
    data = recorded(flavour)
    report, leaks = explain(data)
    assert report["bytes"] == data["du"]  # the walk counted what du -sx counted on the engine
    assert sum(report["categories"].values()) + report["unexplained_bytes"] == report["bytes"]
    assert report["unexplained_bytes"] == 0 and leaks == []
    assert set(report["categories"]) == set(CATEGORIES)
    for category in ("images", "containers", "volumes", "build_cache", "engine_metadata"):
        assert report["categories"][category] > 0, category
    assert {log["name"] for log in report["container_logs"]} == {"rec-up", "rec-down"}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_store_entry_the_metadata_stops_naming_is_leaked(flavour):
    data = recorded(flavour)
    index = StorageIndex.from_dict(data["index"])
    claimed = sorted((path for path, category in index.claims.items() if category == "images" and path in data["units"]),
                     key=lambda path: -data["units"][path]["bytes"])[0]
    del index.claims[claimed]
    report, leaks = explain(data, index)
    expected_kind = "containerd_snapshot" if "snapshots/" in claimed else (
        "containerd_content" if "blobs/" in claimed else "layer_directory")
    leak = next(leak for leak in leaks if leak["relative_path"] == claimed)
    assert leak["kind"] == expected_kind and leak["path"] == f"{data['root']}/{claimed}"
    # overlay2's short link to that directory goes with it, bytes included.
    links = [path for path, target in index.links.items() if target == claimed]
    assert leak["links"] == links
    assert leak["bytes"] == sum(data["units"][p]["freeable"] for p in [claimed] + links)
    assert report["categories"]["leaked"] == sum(leak["accounted_bytes"] for leak in leaks)
    assert sum(report["categories"].values()) + report["unexplained_bytes"] == report["bytes"]


def test_removing_entries_and_the_directories_they_name_are_leaked():
    data = recorded("28.5")
    index = StorageIndex.from_dict(data["index"])
    layer = next(path for path, category in index.claims.items() if category == "images" and path in data["units"])
    del index.claims[layer]
    entry = "image/overlay2/layerdb/sha256/" + "a" * 64 + "-" + "b" * 64 + "-removing"
    units = dict(data["units"], **{entry: dict(path=entry, is_dir=True, bytes=8192, freeable=8192, newest=1.0)})
    index.leftovers.update({entry: "removing", layer: "removing"})
    report, leaks = categorize(data["root"], units, index)
    kinds = {leak["relative_path"]: leak["kind"] for leak in leaks}
    assert kinds[layer] == kinds[entry] == "removing"
    # The layer's directory is removed before the entry that names it, as the engine does.
    order = [leak["relative_path"] for leak in leaks]
    assert order.index(layer) < order.index(entry)


def test_a_short_link_to_no_directory_is_a_leak_of_its_own():
    data = recorded("28.5")
    index = StorageIndex.from_dict(data["index"])
    link = "overlay2/l/DANGLINGDANGLINGDANGLING00"
    units = dict(data["units"], **{link: dict(path=link, is_dir=False, bytes=4096, freeable=4096, newest=2.0)})
    index.links[link] = "overlay2/" + "c" * 64
    report, leaks = categorize(data["root"], units, index)
    assert [(leak["relative_path"], leak["kind"], leak["bytes"]) for leak in leaks] == [(link, "layer_link", 4096)]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_nothing_is_leaked_when_the_metadata_cannot_be_read_whole(flavour):
    data = recorded(flavour)
    index = StorageIndex.from_dict(data["index"])
    claimed = next(path for path in index.claims if path in data["units"])
    del index.claims[claimed]
    index.problems.append("containerd's metadata cannot be read (a test)")
    report, leaks = explain(data, index)
    assert leaks == [] and report["categories"]["leaked"] == 0
    links = [path for path, target in index.links.items() if target == claimed]  # judged with their directory
    assert report["unexplained_bytes"] == sum(data["units"][p]["bytes"] for p in [claimed] + links)
    assert {"path": claimed, "bytes": data["units"][claimed]["bytes"]} in report["unexplained"]


def test_unknown_files_are_unexplained_and_listed_largest_first():
    data = copy.deepcopy(recorded("28.5"))
    for name, size in (("stray.tar", 40960), ("notes.txt", 4096)):
        data["units"][name] = dict(path=name, is_dir=False, bytes=size, freeable=size, newest=3.0)
    report, _leaks = explain(data)
    assert report["unexplained"] == [{"path": "stray.tar", "bytes": 40960}, {"path": "notes.txt", "bytes": 4096}]
    assert report["unexplained_bytes"] == 45056


def test_logs_are_told_from_the_container_files_and_listed_largest_first():
    data = copy.deepcopy(recorded("28.5"))
    index = StorageIndex.from_dict(data["index"])
    small, large = sorted(index.containers)
    for container, size in ((small, 8192), (large, 3 * 4096)):
        for suffix in ("", ".1", ".2.gz"):
            path = f"containers/{container}/{container}-json.log{suffix}"
            data["units"][path] = dict(path=path, is_dir=False, bytes=size, freeable=size, newest=4.0)
    report, _leaks = explain(data, index)
    logs = report["container_logs"]
    assert [log["container"] for log in logs] == [large, small]
    assert [log["bytes"] for log in logs] == [3 * 3 * 4096, 3 * 8192]
    assert report["categories"]["container_logs"] == sum(log["bytes"] for log in logs)
    assert logs[0]["path"].endswith(f"containers/{large}/{large}-json.log") and logs[0]["driver"] == "json-file"


@pytest.mark.parametrize("parts, descended", [
    ((), False), (("overlay2",), True), (("overlay2", "l"), True), (("overlay2", "abc"), False),
    (("containers", "x"), True), (("containers", "x", "local-logs"), False), (("buildkit",), False),
    (("containerd", "daemon", "io.containerd.content.v1.content", "blobs", "sha256"), True),
])
def test_the_walk_goes_into_the_stores_and_sums_the_rest(parts, descended):
    assert descend(parts) is descended


PATHS = st.sampled_from([
    "", "overlay2", "overlay2/l", "overlay2/l/AAA", "overlay2/l/BBB", "overlay2/x1", "overlay2/x2", "overlay2/x3",
    "image/overlay2/layerdb/sha256/" + "1" * 64, "image/overlay2/layerdb/sha256/" + "2" * 64 + "-removing",
    "containers/c1/c1-json.log", "containers/c1/c1-json.log.1", "containers/c1/config.v2.json", "volumes/v",
    "buildkit", "network", "stray", "containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots/4",
    "containerd/daemon/io.containerd.content.v1.content/blobs/sha256/" + "3" * 64, "tmp", "swarm"])
UNIT = st.builds(lambda size, shared, newest: dict(bytes=size, freeable=max(0, size - shared), newest=newest, is_dir=True),
                 st.integers(0, 10 ** 9), st.integers(0, 4096), st.floats(0, 2e9))
CLAIMS = st.dictionaries(st.sampled_from(["overlay2/x1", "overlay2/x2",
                                          "containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots/4"]),
                         st.sampled_from(["images", "containers", "build_cache"]))
LINKS = st.dictionaries(st.sampled_from(["overlay2/l/AAA", "overlay2/l/BBB"]),
                        st.one_of(st.none(), st.sampled_from(["overlay2/x1", "overlay2/x2", "overlay2/gone"])))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(PATHS, UNIT), CLAIMS, LINKS, st.booleans())
def test_every_byte_is_counted_once_whatever_the_metadata_says(units, claims, links, complete):
    index = StorageIndex(claims=claims, links=links, problems=[] if complete else ["unreadable"],
                         leftovers={"image/overlay2/layerdb/sha256/" + "2" * 64 + "-removing": "removing"})
    report, leaks = categorize("/var/lib/docker", units, index)
    assert sum(report["categories"].values()) + report["unexplained_bytes"] == report["bytes"] \
        == sum(u["bytes"] for u in units.values())
    assert report["categories"]["leaked"] == sum(leak["accounted_bytes"] for leak in leaks)
    assert all(leak["bytes"] <= leak["accounted_bytes"] for leak in leaks)  # a hard link out frees nothing
    assert not any(leak["relative_path"] in claims for leak in leaks)  # what the metadata names is never leaked
    if not complete:
        assert leaks == []
