"""Properties of the image-removal planner on random engine states and random requests.

The bytes oracle is written from the definition, independently of _model.Accounting (accounting_oracle): the bytes a
plan frees are the sizes of the layers and content blobs that something held before it and nothing holds after it,
plus the own layers of the containers it removes.
"""

from __future__ import annotations

import hashlib
import os

from accounting_oracle import OracleAccounting
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.reclaim.docker.plugins.module_utils._image_plan import plan_image_removal
from ansible_collections.reclaim.docker.plugins.module_utils._model import Container, Image, Snapshot, blob_key

# CI replays the same examples every run (a landing must not hinge on luck); local runs keep exploring.
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=bool(os.environ.get("CI")))
REPOS = ("a", "b", "lab/c", "docker.io/library/d")
TAGS = ("1", "2", "latest")
STATES = ("running", "exited", "created", "paused", "restarting", "dead")
RUNNING = {"running", "paused", "restarting"}
PLATFORMS = ("linux/amd64", "linux/arm64")


def _hex(seed):
    return hashlib.sha256(seed.encode()).hexdigest()


@st.composite
def snapshots(draw):
    store = draw(st.sampled_from(["overlay2", "containerd"]))
    pool = [("sha256:" + _hex(f"layer{i}"), draw(st.integers(0, 10_000))) for i in range(draw(st.integers(1, 8)))]
    n_images = draw(st.integers(1, 7))
    chains, parents = [], []
    for i in range(n_images):
        parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        base = list(chains[parent]) if parent is not None else []
        extra = draw(st.lists(st.sampled_from(pool), max_size=3, unique=True))
        chain = base + [layer for layer in extra if layer not in base]
        if not chain:
            chain = [draw(st.sampled_from(pool))]
        chains.append(tuple(chain))
        # A legacy-built child links its parent; a BuildKit-built one shares the layers but has no link.
        parents.append(parent if parent is not None and draw(st.booleans()) else None)
    ids = ["sha256:" + _hex(f"image{i}/{chains[i]}") for i in range(n_images)]
    # Every possible tag goes to at most one image; some images are dangling (untagged legacy parents...).
    tags = {i: [] for i in range(n_images)}
    dangling = {i for i in range(n_images) if draw(st.integers(0, 2)) == 0}
    for repo in REPOS:
        for tag in TAGS:
            owner = draw(st.one_of(st.none(), st.integers(0, n_images - 1)))
            if owner is not None and owner not in dangling:
                tags[owner].append(f"{repo}:{tag}".replace("docker.io/library/", ""))
    images, layers, layer_sizes, content = [], {}, {}, {}
    manifest_pool = draw(manifest_pools()) if store == "containerd" else []
    for i in range(n_images):
        # The containerd store holds repo@<image ID> for the repository of every tag (docs/engine-notes.md); overlay2
        # a digest for a repository pulled or pushed, here the first.
        if store == "containerd":
            digests = [f"{repo}@{ids[i]}" for repo in sorted({t.rsplit(':', 1)[0] for t in tags[i]})]
        elif tags[i] and draw(st.booleans()):
            digests = [f"{tags[i][0].rsplit(':', 1)[0]}@sha256:{_hex('digest' + ids[i])}"]
        else:
            digests = []
        inspected = draw(st.integers(0, 4)) > 0  # now and then an image never inspected: its own Size
        size = sum(s for _key, s in chains[i])
        listed, index_size = [], 0
        if manifest_pool and draw(st.integers(0, 4)):  # now and then the content store was not read
            listed, index_size, content[ids[i]] = draw(image_content(ids[i], manifest_pool, size))
            layer_sizes.update((key, blob_size) for m in manifest_pool for key, blob_size in m["blobs"])
            if index_size:
                layer_sizes[blob_key(ids[i])] = index_size
        images.append(Image(ids[i], repo_tags=tags[i], repo_digests=digests,
                            parent_id=ids[parents[i]] if parents[i] is not None else "", size=size,
                            shared_size=-1, manifests=listed, index_size=index_size))
        if inspected:
            layers[ids[i]] = tuple(key for key, _size in chains[i])
            layer_sizes.update(dict(chains[i]))
    containers = []
    for j in range(draw(st.integers(0, 4))):
        image = draw(st.integers(0, n_images - 1))
        size_rw = draw(st.integers(0, 5_000))
        # The containerd store's SizeRootFs: the writable layer, an init snapshot, the image's layers.
        size_root_fs = size_rw + draw(st.integers(0, 100)) + sum(s for _key, s in chains[image]) \
            if store == "containerd" and draw(st.booleans()) else 0
        containers.append(Container(_hex(f"container{j}"), f"ctr{j}", ids[image], state=draw(st.sampled_from(STATES)),
                                    size_rw=size_rw, size_root_fs=size_root_fs))
    return Snapshot({"image_store": store}, images, containers, layers, layer_sizes, content=content)


@st.composite
def manifest_pools(draw):
    """Platform manifests that images list, some listed by several; each with its blobs (keys and sizes, itself
    first), some blobs in several manifests, and how much of it the store has: all, the manifest blob only, none."""
    blobs = [(blob_key("sha256:" + _hex(f"blob{i}")), draw(st.integers(0, 3_000)))
             for i in range(draw(st.integers(1, 6)))]
    pool = []
    for i in range(draw(st.integers(1, 5))):
        digest = "sha256:" + _hex(f"manifest{i}")
        named = draw(st.lists(st.sampled_from(blobs), min_size=1, max_size=3, unique=True))
        present = draw(st.sampled_from(["all", "manifest", "none"]))
        own = [(blob_key(digest), draw(st.integers(100, 900)))]
        pool.append(dict(digest=digest, platform=draw(st.sampled_from(PLATFORMS)),
                         blobs=own + (named if present == "all" else []) if present != "none" else [],
                         available=present == "all"))
    return pool


@st.composite
def image_content(draw, image_id, manifest_pool, layers_size):
    """An image's listed manifests, index size and content (see Snapshot.content), from MANIFEST_POOL."""
    manifests = draw(st.lists(st.sampled_from(manifest_pool), min_size=1, max_size=3, unique_by=lambda m: m["digest"]))
    present = [m for m in manifests if m["blobs"]]
    unpacked = draw(st.sampled_from([None] + [m["digest"] for m in present]))
    listed = [dict(digest=m["digest"], kind="image", available=m["available"], platform=m["platform"],
                   manifest_size=m["blobs"][0][1] if m["blobs"] else 0, content=sum(size for _k, size in m["blobs"]),
                   unpacked=layers_size if m["digest"] == unpacked else 0) for m in manifests]
    index_size = draw(st.integers(100, 900)) if draw(st.booleans()) else 0
    return listed, index_size, dict(index=(blob_key(image_id),) if index_size else (), unpacked=unpacked,
                                    manifests={m["digest"]: tuple(key for key, _size in m["blobs"]) for m in present})


@st.composite
def requests(draw, snapshot):
    images = sorted(snapshot.images.values(), key=lambda i: i.id)
    candidates = ["nope:1", "12", "1", "ffffff", "sha256:" + "f" * 64, "b@sha256:" + "e" * 64]
    for image in images:
        candidates += list(image.repo_tags) + list(image.repo_digests)
        candidates += [image.id, image.id[7:19], image.id[7:13]]
        candidates += ["docker.io/library/" + t for t in image.repo_tags if "/" not in t]
    names = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=6))
    platform = draw(st.sampled_from((None,) + PLATFORMS)) if snapshot.containerd_store else None
    return dict(names=names, force=draw(st.booleans()), prune_parents=draw(st.booleans()),
                remove_stopped_containers=draw(st.booleans()), platform=platform)


@st.composite
def cases(draw):
    snapshot = draw(snapshots())
    return snapshot, draw(requests(snapshot))


# ---------------------------------------------------------------- the oracle

def oracle_bytes(snapshot, plan):
    deleted = {a["image"] for a in plan.actions
               if a["action"] == "delete_image" or a["action"] == "force_untag" and a["record_deleted"]}
    removed = {a["container"] for a in plan.actions if a["action"] == "remove_container"}
    platforms = {m for a in plan.actions if a["action"] == "delete_platform" for m in a["manifests"]}
    return OracleAccounting(snapshot).freed_bytes(deleted, removed, platforms)


def plan_of(snapshot, request):
    return plan_image_removal(snapshot, **request)


def as_data(plan):
    return (plan.actions, plan.refusals, plan.not_found, plan.orphaned)


# ---------------------------------------------------------------- properties

@SETTINGS
@given(cases())
def test_reclaimed_bytes_equal_the_brute_force_oracle(case):
    snapshot, request = case
    plan = plan_of(snapshot, request)
    assert plan.reclaimed_bytes == oracle_bytes(snapshot, plan)


@SETTINGS
@given(cases())
def test_running_containers_and_their_images_are_never_touched(case):
    snapshot, request = case
    plan = plan_of(snapshot, request)
    running_images = {c.image_id for c in snapshot.containers.values() if c.state in RUNNING}
    for action in plan.actions:
        if action["action"] in ("delete_image", "force_untag"):
            assert action["image"] not in running_images, action
        if action["action"] == "remove_container":
            assert snapshot.containers[action["container"]].state not in RUNNING, action


@SETTINGS
@given(cases())
def test_removed_containers_are_stopped_and_use_a_deleted_image(case):
    snapshot, request = case
    plan = plan_of(snapshot, request)
    deleted = {a["image"] for a in plan.actions if a["action"] == "delete_image"}
    removed = [a["container"] for a in plan.actions if a["action"] == "remove_container"]
    assert len(removed) == len(set(removed))
    for container_id in removed:
        container = snapshot.containers[container_id]
        assert container.state not in RUNNING
        assert container.image_id in deleted
    if removed:
        assert request["remove_stopped_containers"]


@SETTINGS
@given(cases())
def test_no_image_is_deleted_while_a_container_keeps_using_it(case):
    snapshot, request = case
    plan = plan_of(snapshot, request)
    removed = set()
    for action in plan.actions:
        if action["action"] == "remove_container":
            removed.add(action["container"])
        elif action["action"] == "delete_image":
            assert {c.id for c in snapshot.containers.values() if c.image_id == action["image"]} <= removed


@SETTINGS
@given(cases())
def test_children_are_deleted_before_parents_on_graphdriver(case):
    snapshot, request = case
    plan = plan_of(snapshot, request)
    if snapshot.containerd_store:
        return
    deleted = []
    for action in plan.actions:
        # On overlay2, rmi -f of an image only stopped containers use deletes its record (the layers stay
        # held by the containers), so the engine no longer counts it as the parent's child.
        if action["action"] == "force_untag" and action["record_deleted"]:
            deleted.append(action["image"])
        if action["action"] == "delete_image":
            children = {i.id for i in snapshot.images.values() if i.parent_id == action["image"]}
            assert children <= set(deleted), action
            deleted.append(action["image"])


@SETTINGS
@given(cases())
def test_bytes_per_action_are_non_negative_and_untags_free_nothing(case):
    snapshot, request = case
    plan = plan_of(snapshot, request)
    for action in plan.actions:
        assert action["bytes"] >= 0
        # A force untag frees only the content of a record it deletes (containerd store): containers keep the layers.
        if action["action"] == "untag" or action["action"] == "force_untag" and not (
                action["record_deleted"] and snapshot.containerd_store):
            assert action["bytes"] == 0
    assert all(orphan["bytes"] >= 0 for orphan in plan.orphaned)
    if plan.orphaned or any(a["action"] == "force_untag" for a in plan.actions):
        assert request["force"]
    deleted = [a["image"] for a in plan.actions if a["action"] == "delete_image"
               or a["action"] == "force_untag" and a["record_deleted"]]
    assert len(deleted) == len(set(deleted))


@SETTINGS
@given(cases())
def test_each_reference_goes_once_and_a_deleted_image_loses_every_one_it_had(case):
    """`untags` of the actions on an image (what `untagged` reports): each reference once, and all of an image's
    references, digests too, once it is deleted or force-untagged (which takes what is left)."""
    snapshot, request = case
    plan = plan_of(snapshot, request)
    lost = {}
    for action in plan.actions:
        if action["action"] in ("untag", "delete_image", "force_untag"):
            image_lost = lost.setdefault(action["image"], set())
            assert not image_lost & set(action["untags"]), action
            image_lost.update(action["untags"])
            assert image_lost <= set(snapshot.images[action["image"]].references), action
        if action["action"] in ("delete_image", "force_untag"):
            assert lost[action["image"]] == set(snapshot.images[action["image"]].references), action


@SETTINGS
@given(cases())
def test_every_name_gets_one_outcome_at_most(case):
    snapshot, request = case
    plan = plan_of(snapshot, request)
    assert len(plan.refusals) + len(plan.not_found) <= len(request["names"])
    assert {r["name"] for r in plan.refusals} <= set(request["names"])


@SETTINGS
@given(cases())
def test_planning_is_deterministic_and_does_not_mutate_the_snapshot(case):
    snapshot, request = case
    before = snapshot.to_dict()
    first = as_data(plan_of(snapshot, request))
    assert snapshot.to_dict() == before
    assert as_data(plan_of(snapshot, request)) == first
    assert as_data(plan_of(Snapshot.from_dict(before), dict(request))) == first
