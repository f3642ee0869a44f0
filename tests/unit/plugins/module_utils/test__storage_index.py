"""The storage index read from a root dir laid out as the engines lay it out (layer database, short links, containers),
and from containerd's databases recorded from a real engine."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from ansible_collections.reclaim.docker.plugins.module_utils._storage_index import (
    META_DB,
    SNAPSHOTS,
    SNAPSHOTTER_DB,
    read_index,
)

STORAGE = Path(__file__).resolve().parent / "storage"
CONTAINER = "c" * 64


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_layer_database_names_layers_containers_and_unfinished_deletions(tmp_path):
    layerdb = tmp_path / "image" / "overlay2" / "layerdb"
    write(layerdb / "sha256" / ("1" * 64) / "cache-id", "layerdir")
    write(layerdb / "mounts" / CONTAINER / "mount-id", "rwdir")
    write(layerdb / "mounts" / CONTAINER / "init-id", "rwdir-init")
    removing = f"{'2' * 64}-{'3' * 64}-removing"
    write(layerdb / "sha256" / removing / "cache-id", "gonedir")
    write(tmp_path / "containers" / CONTAINER / "config.v2.json", json.dumps({"Name": "/web"}))
    write(tmp_path / "containers" / CONTAINER / "hostconfig.json", json.dumps({"LogConfig": {"Type": "local"}}))
    (tmp_path / "overlay2" / "l").mkdir(parents=True)
    os.symlink("../layerdir/diff", tmp_path / "overlay2" / "l" / "SHORT")
    os.symlink("/elsewhere", tmp_path / "overlay2" / "l" / "ODD")
    index = read_index(str(tmp_path))
    assert index.claims == {"overlay2/layerdir": "images", "overlay2/rwdir": "containers",
                            "overlay2/rwdir-init": "containers"}
    assert index.leftovers == {f"image/overlay2/layerdb/sha256/{removing}": "removing", "overlay2/gonedir": "removing"}
    assert index.links == {"overlay2/l/SHORT": "overlay2/layerdir", "overlay2/l/ODD": None}
    assert index.containers == {CONTAINER: {"name": "web", "log_driver": "local"}}
    assert index.problems == [] and index.stores == ("overlay2",)


def test_a_cache_id_naming_no_plain_directory_makes_the_index_incomplete(tmp_path):
    write(tmp_path / "image" / "overlay2" / "layerdb" / "sha256" / ("1" * 64) / "cache-id", "../../etc")
    index = read_index(str(tmp_path))
    assert index.claims == {} and len(index.problems) == 1


def test_containerd_snapshots_and_blobs_by_namespace(tmp_path):
    for name, relative in (("meta.db", META_DB), ("snapshotter.db", SNAPSHOTTER_DB)):
        target = tmp_path.joinpath(*relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.decompress((STORAGE / f"28.5-containerd.{name}.gz").read_bytes()))
    tmp_path.joinpath(*SNAPSHOTS).mkdir()
    recorded = json.loads((STORAGE / "28.5-containerd.json").read_text())["index"]
    for container in recorded["containers"]:  # a snapshot keyed by a container's ID is that container's
        (tmp_path / "containers" / container).mkdir(parents=True)
    index = read_index(str(tmp_path))
    snapshot_claims = {p: c for p, c in index.claims.items() if "/snapshots/" in p}
    assert snapshot_claims == {p: c for p, c in recorded["claims"].items() if "/snapshots/" in p}
    assert {c for p, c in index.claims.items() if "/blobs/" in p} <= {"images", "build_cache"}
    assert index.problems == [] and "containerd" in index.stores


def test_a_damaged_containerd_database_makes_the_index_incomplete(tmp_path):
    target = tmp_path.joinpath(*META_DB)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\0" * 8192)
    tmp_path.joinpath(*SNAPSHOTS).mkdir(parents=True)
    index = read_index(str(tmp_path))
    assert index.problems and "containerd's metadata cannot be read" in index.problems[0]
