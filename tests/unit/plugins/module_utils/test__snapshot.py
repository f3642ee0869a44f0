"""read_snapshot's image names against image inspect, on what the engines answered (snapshots/repo_digests.json,
recorded by tests/unit/record_repo_digests.py): every image's RepoDigests as inspect gives them, from the list alone."""

from __future__ import annotations

import json

import pytest
from unit.plugins.module_utils.snapshot_helpers import FLAVOURS, SNAPSHOTS

from ansible_collections.reclaim.docker.plugins.module_utils._snapshot import read_snapshot, repo_digests

RECORDED = json.loads((SNAPSHOTS / "repo_digests.json").read_text())


class ListingClient:
    """An engine that answers the list calls of read_snapshot with what FLAVOUR's engine listed, and nothing else."""

    def __init__(self, flavour):
        self.recorded = RECORDED[flavour]
        self.uses_containerd_store = self.recorded["containerd_store"]
        self.api_version = self.recorded["api_version"]
        self.paths = []

    def supports(self, minimum_api):
        return tuple(map(int, self.api_version.split("."))) >= tuple(map(int, minimum_api.split(".")))

    def facts(self):
        return dict(id="ENGINE", image_store="containerd" if self.uses_containerd_store else "overlay2")

    def get_json(self, path, params=None):
        self.paths.append(path)
        return [image["list"] for image in self.recorded["images"]] if path == "/images/json" else []


def inspected(flavour):
    return {image["list"]["Id"]: image["inspect"] for image in RECORDED[flavour]["images"]}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_image_has_the_digests_and_references_inspect_gives(flavour):
    client = ListingClient(flavour)
    snapshot = read_snapshot(client)
    assert client.paths == ["/images/json", "/containers/json"]  # no call per image
    assert set(snapshot.images) == set(inspected(flavour))
    for image_id, inspect in inspected(flavour).items():
        image = snapshot.images[image_id]
        assert sorted(image.repo_digests) == sorted(inspect["RepoDigests"]), image_id
        assert sorted(image.references) == sorted(set(inspect["RepoTags"] + inspect["RepoDigests"])), image_id


def test_the_containerd_store_lists_one_digest_where_inspect_gives_one_per_repository():
    """What the recorded cases show (docs/engine-notes.md): the list's RepoTags name every image record, its
    RepoDigests one record's repository only; overlay2 lists what inspect gives (20.10 with <none> placeholders for a
    dangling image)."""
    short = {}
    for image in RECORDED["28.5-containerd"]["images"]:
        listed, inspect = image["list"], image["inspect"]
        assert sorted(listed["RepoTags"] or []) == sorted(inspect["RepoTags"])
        assert len(listed["RepoDigests"] or []) == min(len(inspect["RepoDigests"]), 1)
        short[listed["Id"]] = len(inspect["RepoDigests"]) > 1
    assert sum(short.values()) >= 7  # tags in two repositories, a tag and a digest, two digests, an index
    for flavour in ("20.10", "28.5"):
        for image in RECORDED[flavour]["images"]:
            listed, inspect = image["list"], image["inspect"]
            placeholders = {"<none>:<none>", "<none>@<none>"}
            assert sorted(set(listed["RepoDigests"] or []) - placeholders) == sorted(inspect["RepoDigests"])


def test_on_the_containerd_store_each_name_gives_its_repositorys_digest():
    raw = {"Id": "sha256:" + "a" * 64, "RepoTags": ["app:1", "app:2", "registry.example:5000/team/app:1",
                                                    "mirror/app@sha256:" + "a" * 64],
           "RepoDigests": ["app@sha256:" + "a" * 64]}
    assert repo_digests(raw, containerd_store=True) == [
        "app@sha256:" + "a" * 64, "registry.example:5000/team/app@sha256:" + "a" * 64, "mirror/app@sha256:" + "a" * 64]
    # A name outside the reference grammar (made with ctr, say) is listed as it is; inspect gives no digest for it.
    assert repo_digests(dict(raw, RepoTags=["Not A Name"], RepoDigests=None), containerd_store=True) == []
    assert repo_digests(dict(raw, RepoTags=None, RepoDigests=None), containerd_store=True) == []


def test_overlay2_digests_are_the_lists():
    raw = {"Id": "sha256:" + "b" * 64, "RepoTags": ["local/app:1"], "RepoDigests": None}
    assert repo_digests(raw, containerd_store=False) == []  # a tag made here has no digest on overlay2
