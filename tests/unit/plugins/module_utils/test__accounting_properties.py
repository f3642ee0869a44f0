"""The linear accounting against its simple definition (accounting_oracle), on random layer graphs, and the bytes of
a real run re-priced from the actions that took effect."""

from __future__ import annotations

import hashlib

from accounting_oracle import OracleAccounting
from hypothesis import given
from hypothesis import strategies as st
from test__plan_properties import SETTINGS, oracle_bytes, requests, snapshots

from ansible_collections.reclaim.docker.plugins.module_utils._apply import reprice
from ansible_collections.reclaim.docker.plugins.module_utils._image_plan import plan_image_removal
from ansible_collections.reclaim.docker.plugins.module_utils._model import Accounting, Container, Image, Snapshot


def _hex(seed):
    return hashlib.sha256(seed.encode()).hexdigest()


@st.composite
def layer_graphs(draw):
    """Images over a shared pool of layers (some never inspected: one pseudo-layer of their Size), containers of
    listed images and of image records already gone (orphan holders), any of them removable in any order."""
    pool = ["sha256:" + _hex(f"layer{i}") for i in range(draw(st.integers(1, 10)))]
    sizes = {key: draw(st.integers(0, 5000)) for key in pool}
    images, layers = [], {}
    for i in range(draw(st.integers(0, 8))):
        image_id = "sha256:" + _hex(f"image{i}")
        images.append(Image(image_id, size=draw(st.integers(0, 3000))))
        if draw(st.integers(0, 4)):
            layers[image_id] = tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=5, unique=True)))
    gone = ["sha256:" + _hex(f"gone{i}") for i in range(draw(st.integers(0, 2)))]
    for image_id in gone:
        layers[image_id] = tuple(draw(st.lists(st.sampled_from(pool), max_size=4, unique=True)))
    holders = [i.id for i in images] + gone
    containers = []
    if holders:
        for i in range(draw(st.integers(0, 5))):
            containers.append(Container("c" * 63 + str(i), f"c{i}", draw(st.sampled_from(holders)),
                                        size_rw=draw(st.integers(0, 100))))
    snapshot = Snapshot({"image_store": "overlay2"}, images, containers, layers, sizes)
    removals = draw(st.lists(st.one_of(
        st.tuples(st.just("image"), st.sampled_from([i.id for i in images] or ["sha256:" + "0" * 64])),
        st.tuples(st.just("container"), st.sampled_from([c.id for c in containers] or ["none"])),
        st.tuples(st.just("held"), st.sampled_from([i.id for i in images] or ["sha256:" + "0" * 64])),
    ), max_size=12))
    return snapshot, removals


@st.composite
def content_graphs(draw):
    """Engine states of either store (the containerd store's with content: indexes, platform manifests shared by
    several images, blobs shared by several manifests, platforms present in whole, in part or not at all), and
    removals of images, containers and platforms in any order."""
    snapshot = draw(snapshots())
    manifests = sorted({m["digest"] for i in snapshot.images.values() for m in i.manifests}) or ["sha256:" + "0" * 64]
    removals = draw(st.lists(st.one_of(
        st.tuples(st.just("image"), st.sampled_from(sorted(snapshot.images))),
        st.tuples(st.just("container"), st.sampled_from(sorted(snapshot.containers) or ["none"])),
        st.tuples(st.just("held"), st.sampled_from(sorted(snapshot.images))),
        st.tuples(st.just("platform"), st.sampled_from(manifests)),
    ), max_size=12))
    return snapshot, removals


@SETTINGS
@given(st.one_of(layer_graphs(), content_graphs()))
def test_every_step_frees_what_the_definition_says(case):
    snapshot, removals = case
    fast, oracle = Accounting(snapshot), OracleAccounting(snapshot)
    for kind, target in removals:
        if kind == "held":
            if target in snapshot.images:
                assert fast.held_by_containers_only(target) == oracle.held_by_containers_only(target)
            continue
        if kind == "image":
            if target not in snapshot.images or target in oracle.deleted_images:
                continue  # the planners delete listed images, each once
            assert fast.delete_image(target) == oracle.delete_image(target)
        elif kind == "platform":
            assert fast.delete_platform(target) == oracle.delete_platform(target)
        else:
            if target not in snapshot.containers or target in oracle.removed_containers:
                continue
            assert fast.remove_container(target) == oracle.remove_container(target)
        assert fast.total == oracle.freed_bytes()


@st.composite
def plans_with_outcomes(draw):
    snapshot = draw(snapshots())
    request = draw(requests(snapshot))
    plan = plan_image_removal(snapshot, **request)
    # Each action took effect, was skipped, or found its object removed by someone else first (a 404).
    fates = [draw(st.sampled_from(["done", "skipped", "gone"] if a["action"] in ("delete_image", "remove_container")
                                  else ["done", "skipped"])) for a in plan.actions]
    return snapshot, plan, fates


@SETTINGS
@given(plans_with_outcomes())
def test_a_real_run_is_priced_by_what_took_effect(case):
    """Any subset of a plan's actions failing, or finding their object removed by someone else: the bytes reported
    are the definition's for what took effect, and a skipped action leaves no layer counted by another."""
    snapshot, plan, fates = case
    outcomes = [dict(action, status="done" if fate == "done" else "skipped", bytes=action["bytes"] * (fate == "done"))
                for action, fate in zip(plan.actions, fates)]
    gone = [a for a, fate in zip(plan.actions, fates) if fate == "gone"]
    repriced = reprice(snapshot, outcomes, {a.get("container") or a["image"] for a in gone})
    before, after = type(plan)(), type(plan)()
    before.actions = gone
    after.actions = gone + [a for a in repriced if a["status"] == "done"]
    # What the engine frees in our run: everything gone at its end, less what someone else had removed first.
    assert sum(a["bytes"] for a in repriced) == oracle_bytes(snapshot, after) - oracle_bytes(snapshot, before)
    if all(fate == "done" for fate in fates):
        assert [a["bytes"] for a in repriced] == [a["bytes"] for a in plan.actions]
