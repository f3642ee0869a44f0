"""The plan's vocabulary: every action a planner or job emits has an entry in ACTIONS naming its object, and the plan's
objects, labels, race skips and touched images derived from the actions, on recorded and hand-made snapshots."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from snapshot_helpers import FLAVOURS, hid, make_snapshot, prune, recorded

from ansible_collections.reclaim.docker.plugins.module_utils import _plan
from ansible_collections.reclaim.docker.plugins.module_utils._model import Snapshot
from ansible_collections.reclaim.docker.plugins.module_utils._plan import (
    ACTIONS,
    ITEM_TYPES,
    Hold,
    Plan,
    action_label,
    changed_something,
    plan_objects,
    race_skips,
    touched_images,
)

MODULE_UTILS = Path(_plan.__file__).resolve().parent


def emitted_actions():
    """{action: the keyword fields of each plan.add(action, ...) call} over every module_utils file."""
    found = {}
    for source in MODULE_UTILS.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add" \
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.setdefault(node.args[0].value, []).append({k.arg for k in node.keywords})
    return found


def test_every_action_emitted_is_in_the_table_with_the_field_that_names_its_object():
    emitted = emitted_actions()
    assert set(emitted) == set(ACTIONS)
    for action, calls in emitted.items():
        object_type, key = ACTIONS[action]
        assert object_type in ITEM_TYPES + ("leak",), action
        for fields in calls:
            assert "bytes" in fields and (key or "record_items") in fields, (action, fields)


def test_an_image_untagged_then_deleted_is_one_object_with_the_bytes_of_both():
    snapshot = make_snapshot([("a", ["lab/a:2", "lab/a:1"], ["x", "y"], None), ("d", [], ["z"], None)])
    plan = prune(snapshot, images={"dangling": False})
    assert [a["action"] for a in plan.actions if a["image"] == hid("a")] == ["untag", "delete_image"]
    objects = plan_objects(snapshot, plan.actions)
    # In plan order (the dangling image first), named by the first tag, with every reference it has now.
    assert objects == [dict(type="image", id=hid("d"), name=hid("d")[7:19], bytes=1000, references=[]),
                       dict(type="image", id=hid("a"), name="lab/a:1", bytes=2000, references=["lab/a:1", "lab/a:2"])]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_recorded_objects_are_the_distinct_objects_of_the_actions_with_all_their_bytes(flavour):
    snapshot = recorded(flavour)
    plan = prune(snapshot, containers={}, images={"dangling": False})
    objects = plan_objects(snapshot, plan.actions)
    keys = [(o["type"], o["id"]) for o in objects]
    assert len(keys) == len(set(keys)) and objects
    assert sum(o["bytes"] for o in objects) == plan.reclaimed_bytes
    containers = {a["container"]: a["name"] for a in plan.actions if a["action"] == "remove_container"}
    assert {o["id"]: o["name"] for o in objects if o["type"] == "container"} == containers


def test_an_object_already_gone_from_the_snapshot_is_named_by_its_short_id():
    gone = "sha256:" + "9" * 64
    actions = [dict(action="delete_platform", image=gone, reference=gone, bytes=2),
               dict(action="delete_image", image=gone, reference=gone, bytes=3),
               dict(action="prune_build_cache", bytes=7, records=2,
                    record_items=[dict(id="r1", name="r1", bytes=3), dict(id="r2", name="r2", bytes=4)])]
    assert plan_objects(Snapshot({}, [], []), actions) == [
        dict(type="image", id=gone, name="9" * 12, bytes=5, references=[]),
        dict(type="build_cache", id="r1", name="r1", bytes=3), dict(type="build_cache", id="r2", name="r2", bytes=4)]


@pytest.mark.parametrize("action, label", [
    (dict(action="remove_network", network="n1", name="backend", container="c"), "backend"),
    (dict(action="delete_image", image=hid("a"), reference="lab/a:1"), "lab/a:1"),
    (dict(action="remove_container", container="c1", image=hid("a")), "c1"),
    (dict(action="remove_leak", path="/var/lib/docker/overlay2/x"), "/var/lib/docker/overlay2/x"),
    (dict(action="prune_build_cache", records=3), "prune_build_cache"),
])
def test_a_message_names_an_action_by_its_most_telling_field(action, label):
    assert action_label(action) == label


@pytest.mark.parametrize("action, changed", [
    (dict(action="delete_image", bytes=0), True),  # even freeing nothing, a deletion changed the engine
    (dict(action="prune_build_cache", records=2, caches_deleted=[]), False),  # the engine found nothing to remove
    (dict(action="prune_build_cache", records=0, caches_deleted=["r1"]), True),
    (dict(action="prune_build_cache", records=0), False),  # check mode: the prediction
    (dict(action="prune_build_cache", records=1), True),
])
def test_only_a_build_cache_prune_can_take_effect_and_change_nothing(action, changed):
    assert changed_something(action) is changed


def test_race_skips_are_the_skipped_and_partial_actions_with_the_engines_reason():
    actions = [dict(action="delete_image", image=hid("a"), reference="lab/a:1", status="skipped",
                    engine_reason="image is being used by container x"),
               dict(action="remove_container", container="c1", name="job", status="done"),
               dict(action="remove_volume", volume="data", name="data", status="failed", engine_reason="boom"),
               dict(action="prune_build_cache", records=2, status="partial", engine_reason="1 of 2 records removed"),
               dict(action="remove_network", network="n1", name="front")]
    assert race_skips(actions) == [
        dict(type="image", id=hid("a"), name="lab/a:1",
             reason="changed since the run read the engine: image is being used by container x"),
        dict(type="build_cache", id=None, name="prune_build_cache",
             reason="changed since the run read the engine: 1 of 2 records removed")]


def test_touched_images_are_the_images_deleted_untagged_and_of_removed_containers():
    snapshot = make_snapshot([("a", ["lab/a:1", "lab/a:2"], ["x"], None), ("used", ["lab/u:1"], ["u"], None),
                              ("idle", ["lab/i:1"], ["i"], None)], [("job", "used", "exited", 0)])
    plan = prune(snapshot, containers={}, networks={})
    assert touched_images(plan) == {hid("used")}
    plan.add("untag", reference="lab/a:1", image=hid("a"), bytes=0)
    plan.add("remove_network", network="n", name="n", bytes=0)
    assert touched_images(plan) == {hid("used"), hid("a")}


def test_a_plan_adds_in_order_and_frees_the_sum_of_its_actions():
    plan = Plan()
    entry = plan.add("remove_volume", volume="v", name="v", bytes=10)
    entry["bytes"] = 15  # the entry returned is the one in the plan (the planners complete it)
    plan.add("remove_network", network="n", name="n", bytes=0)
    plan.add("remove_volume", volume="w", name="w", bytes=7)
    plan.refuse("lab/x:1", "in use")
    assert [a["name"] for a in plan.actions] == ["v", "n", "w"] and plan.reclaimed_bytes == 22
    assert plan.refusals == [dict(name="lab/x:1", reason="in use")]


def test_a_hold_reads_as_its_detail_and_counts_by_its_category():
    hold = Hold("in_use", "in use by container(s) web")
    assert str(hold) == "in use by container(s) web" and hold.category == "in_use"
    assert f"kept: {hold}" == "kept: in use by container(s) web"
