"""The containerd store's content, read from a content store recorded from a real engine (record_snapshots.py), and
where it cannot be read, said so."""

from __future__ import annotations

import json
import os

import pytest
from snapshot_helpers import SNAPSHOTS, by_tag, recorded

from ansible_collections.reclaim.docker.plugins.module_utils import _content_store, _snapshot
from ansible_collections.reclaim.docker.plugins.module_utils._content_store import (
    BLOBS_UNDER_ROOT,
    DOCKERD_CONTAINERD_ROOT,
    ContentUnreadable,
    containerd_roots,
    find_blobs_dir,
    read_manifest,
)
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import LayerCache
from ansible_collections.reclaim.docker.plugins.module_utils._model import image_keys, image_layers
from ansible_collections.reclaim.docker.plugins.module_utils._snapshot import load_content

RECORDED_ROOT = SNAPSHOTS / "28.5-containerd.root"
P = "rec/"


class EngineClient:
    """What load_content asks of the client."""

    def __init__(self, local=True, api_version="1.51"):
        self.is_local = local
        self.base_url = "unix:///run/docker.sock" if local else "tcp://docker1.example.com:2376"
        self.api_version = api_version

    def supports(self, minimum_api):
        return tuple(map(int, self.api_version.split("."))) >= tuple(map(int, minimum_api.split(".")))


def unread(docker_root_dir=RECORDED_ROOT):
    """The recorded snapshot as read_snapshot and the layer reads leave it: content not read yet."""
    snap = recorded("28.5-containerd")
    expected = (snap.content, {k: v for k, v in snap.layer_sizes.items() if k.startswith("blob:")})
    snap.content = {}
    snap.layer_sizes = {k: v for k, v in snap.layer_sizes.items() if not k.startswith("blob:")}
    snap.engine["docker_root_dir"] = str(docker_root_dir)
    return snap, expected


def test_the_recorded_store_reads_as_the_engine_counted_it():
    """Every manifest's blobs as read add up to the engine's own count of that platform's content, the platform
    pulled in part included (its manifest only); the platform not pulled at all holds nothing."""
    snap, (content, blob_sizes) = unread()
    assert load_content(EngineClient(), snap, LayerCache(None)) == []
    assert snap.content == content
    assert {k: v for k, v in snap.layer_sizes.items() if k.startswith("blob:")} == blob_sizes
    part = by_tag(snap, P + "lab/part:1")
    held = {m["platform"]: len(snap.content[part.id]["manifests"].get(m["digest"], ())) for m in part.manifests}
    assert held == {"linux/amd64": 3, "linux/arm64": 1, "linux/s390x": 0}
    assert snap.content[part.id]["index"] == ("blob:" + part.id,) and part.index_size > 0


def test_a_manifest_is_read_once_then_the_cache_answers(tmp_path, monkeypatch):
    snap, (content, _sizes) = unread()
    cache = LayerCache.for_engine(str(tmp_path), "engine")
    load_content(EngineClient(), snap, cache)
    cache.save(set(snap.images))

    def no_reads(blobs_dir, digest):
        raise AssertionError(f"read {digest}")

    monkeypatch.setattr(_snapshot, "read_manifest", no_reads)
    again, _expected = unread()
    assert load_content(EngineClient(), again, LayerCache.for_engine(str(tmp_path), "engine")) == []
    assert again.content == content


@pytest.mark.parametrize("client, reason", [
    (EngineClient(local=False), "the engine is not on this host (tcp://docker1.example.com:2376)"),
    (EngineClient(api_version="1.46"), "API 1.46 lists no image manifests"),
])
def test_where_the_store_cannot_be_read_images_hold_their_snapshots_and_the_reason_is_given(client, reason):
    snap, _expected = unread()
    [problem] = load_content(client, snap, LayerCache(None))
    assert reason in problem and "not their content blobs" in problem
    for image_id in snap.images:
        assert image_keys(snap, image_id) <= set(image_layers(snap, image_id))


def test_a_root_without_the_images_blobs_is_not_the_engines(tmp_path):
    snap, _expected = unread(docker_root_dir=tmp_path)
    [problem] = load_content(EngineClient(), snap, LayerCache(None))
    assert "content store was not found" in problem and str(tmp_path) in problem


def test_what_is_read_is_checked_against_the_engines_count():
    snap, _expected = unread()
    image = by_tag(snap, P + "lab/d3:1")
    image.manifests[0]["content"] += 1
    [problem] = load_content(EngineClient(), snap, LayerCache(None))
    assert image.id[7:19] in problem and "by the engine's count" in problem


# Finding containerd's root

def blob_at(root, digest):
    blobs = os.path.join(root, BLOBS_UNDER_ROOT)
    os.makedirs(blobs, exist_ok=True)
    with open(os.path.join(blobs, digest[7:]), "w", encoding="utf-8") as handle:
        handle.write("{}")
    return blobs


DIGEST = "sha256:" + "a" * 64


def test_dockerds_own_containerd_is_under_dockers_root_dir(tmp_path):
    blobs = blob_at(tmp_path / DOCKERD_CONTAINERD_ROOT, DIGEST)
    assert find_blobs_dir(str(tmp_path), DIGEST, config_path=str(tmp_path / "none.toml")) == blobs


def test_a_system_containerds_root_comes_from_its_config(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('version = 2\nroot = "%s" # moved\n[plugins]\n  root = "/elsewhere"\n' % (tmp_path / "ctd"))
    blobs = blob_at(tmp_path / "ctd", DIGEST)
    assert containerd_roots(str(tmp_path / "docker"), str(config))[-1] == str(tmp_path / "ctd")
    assert find_blobs_dir(str(tmp_path / "docker"), DIGEST, config_path=str(config)) == blobs


def test_without_a_config_the_system_root_is_the_default(tmp_path):
    assert containerd_roots("/var/lib/docker", str(tmp_path / "none.toml")) == [
        "/var/lib/docker/containerd/daemon", "/var/lib/containerd"]


def test_no_permission_says_so(tmp_path, monkeypatch):
    blob_at(tmp_path / DOCKERD_CONTAINERD_ROOT, DIGEST)

    def refuse(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(_content_store.os, "stat", refuse)
    with pytest.raises(ContentUnreadable, match="no permission to read containerd's content store"):
        find_blobs_dir(str(tmp_path), DIGEST, config_path=str(tmp_path / "none.toml"))


# Reading a manifest

@pytest.mark.parametrize("document", [
    {"schemaVersion": 2, "manifests": [{"digest": DIGEST, "size": 1}]},   # an index, not a manifest
    {"config": {"digest": DIGEST, "size": -1}, "layers": []},
    {"config": {"digest": "sha256:abc", "size": 1}, "layers": []},
    {"config": {"digest": DIGEST, "size": 1}, "layers": [{"digest": DIGEST, "size": True}]},
    [],
    "not JSON",
])
def test_a_blob_that_is_no_manifest_is_unreadable(tmp_path, document):
    manifest = "sha256:" + "b" * 64
    (tmp_path / manifest[7:]).write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(ContentUnreadable):
        read_manifest(str(tmp_path), manifest)


def test_a_missing_manifest_is_unreadable(tmp_path):
    with pytest.raises(ContentUnreadable, match="cannot be read"):
        read_manifest(str(tmp_path), DIGEST)
