"""Properties of the image-removal planner on random engine states and random requests.

The bytes oracle is written from the definition, independently of _model.Accounting (accounting_oracle): the bytes a
plan frees are the sizes of the layers and content blobs that something held before it and nothing holds after it,
plus the own layers of the containers it removes.
"""

from __future__ import annotations

from accounting_oracle import oracle_bytes
from hypothesis import given
from snapshot_helpers import remove_images
from strategies import RUNNING, SETTINGS, cases

from ansible_collections.reclaim.docker.plugins.module_utils._model import Snapshot


def plan_of(snapshot, request):
    return remove_images(snapshot, **request)


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
