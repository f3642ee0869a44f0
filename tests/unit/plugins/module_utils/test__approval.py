"""Approved plans: a run removes only approved items, reports the rest, and prices them by the plan without approval."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from accounting_oracle import oracle_bytes
from snapshot_helpers import hid, make_snapshot, policy, snapshot_with_ages
from snapshot_helpers import prune as prune_plan
from strategies import SETTINGS, prune_cases

from ansible_collections.reclaim.docker.plugins.module_utils._approval import Approval, complete
from ansible_collections.reclaim.docker.plugins.module_utils._plan import plan_objects
from ansible_collections.reclaim.docker.plugins.module_utils._retention_plan import plan_retention
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem


def approval(items, engine_id=None):
    return Approval.from_params(dict(approved=items, approved_engine_id=engine_id))


def prune(snapshot, approved=None, containers=True, dangling=False, protect_label=None, build_cache=False):
    """A prune of containers and images (and build cache) under APPROVED, completed as the job runner does."""
    types = dict(dict(containers={}) if containers else {}, images={"dangling": dangling},
                 **(dict(builder_cache={}) if build_cache else {}))

    def plan_under(under):
        return prune_plan(snapshot, approval=under, protect={"labels": [protect_label] if protect_label else []},
                          **types)
    under = approval(approved) if approved is not None else Approval()
    plan = plan_under(under)
    if under.restricts:
        complete(snapshot, plan, under, plan_under(under.without()))
    return plan


def removed_ids(snapshot, plan):
    return {i["id"] for i in plan_objects(snapshot, plan.actions)}


# Two unused images over one shared base, a stopped container of a third, one running container's image.
HOST = make_snapshot(
    [("old", ["app:1"], ["base", "old"], None), ("older", ["app:0"], ["base", "older"], None),
     ("job", ["job:1"], ["job"], None), ("web", ["web:1"], ["web"], None)],
    containers=[("batch", "job", "exited", 300), ("site", "web", "running", 10)],
    sizes={"base": 5000, "old": 1000, "older": 2000, "job": 700, "web": 900})


def test_the_plan_lists_each_item_once_with_its_bytes_and_references():
    plan = prune(HOST)
    items = {i["id"]: i for i in plan_objects(HOST, plan.actions)}
    batch = next(c for c in HOST.containers.values() if c.name == "batch")
    assert set(items) == {hid("old"), hid("older"), hid("job"), batch.id}
    assert items[hid("old")]["references"] == ["app:1"] and items[hid("old")]["type"] == "image"
    assert items[batch.id] == dict(type="container", id=batch.id, name="batch", bytes=300)
    assert sum(i["bytes"] for i in items.values()) == plan.reclaimed_bytes == 300 + 5000 + 1000 + 2000 + 700
    assert plan.not_approved == []  # no approved plan: nothing is held back


def test_an_item_not_approved_stays_and_is_priced_by_the_plan_without_approval():
    everything = plan_objects(HOST, prune(HOST).actions)
    approved = [i for i in everything if i["id"] != hid("older")]
    plan = prune(HOST, approved)
    assert removed_ids(HOST, plan) == {i["id"] for i in approved}
    # Without approval, "older" went second (after "old"), freeing the base they share too.
    assert plan.not_approved == [dict(type="image", id=hid("older"), name="app:0", references=["app:0"], bytes=7000)]
    # Approved, "old" now frees only its own layer: "older" keeps the base.
    assert plan.reclaimed_bytes == 300 + 700 + 1000


def test_an_unapproved_container_keeps_its_image_in_use():
    batch = next(c for c in HOST.containers.values() if c.name == "batch")
    plan = prune(HOST, [hid("job"), hid("old"), hid("older")])
    assert removed_ids(HOST, plan) == {hid("old"), hid("older")}
    assert [n["id"] for n in plan.not_approved] == [batch.id]
    reasons = {s["id"]: s["reason"] for s in plan.skipped}
    assert reasons[hid("job")] == f"in use by container(s) batch ({batch.id[:12]}, exited)"


def test_an_image_tagged_since_the_approval_is_a_reported_skip():
    snapshot = make_snapshot([("old", ["app:1", "prod:1"], ["old"], None)])
    plan = prune(snapshot, [dict(type="image", id=hid("old"), name="app:1", references=["app:1"], bytes=1000)],
                 containers=False)
    assert plan.actions == []
    assert plan.skipped == [dict(type="image", id=hid("old"), name=hid("old")[7:19],
                                 reason="changed since the plan was approved: new reference(s) prod:1")]
    assert plan.not_approved == []


def test_an_approved_item_that_is_gone_or_no_longer_selected_is_reported():
    snapshot = make_snapshot([("tagged", ["app:1"], ["t"], None)])
    gone = hid("gone")
    plan = prune(snapshot, [dict(type="image", id=gone, name="app:9"), hid("tagged")], containers=False, dangling=True)
    assert plan.actions == []
    reasons = {s["id"]: s["reason"] for s in plan.skipped}
    assert reasons[gone] == "approved, but gone since the plan was made"
    assert reasons[hid("tagged")].startswith("approved, but no longer selected by this run")


def test_an_empty_approval_removes_nothing_and_lists_everything():
    plan = prune(HOST, [])
    assert plan.actions == []
    assert {n["id"] for n in plan.not_approved} == removed_ids(HOST, prune(HOST))


def test_build_cache_records_are_pruned_one_by_one_by_id_under_approval():
    snapshot = make_snapshot([])
    snapshot.build_cache = [dict(ID="rec1", Size=100, InUse=False, Shared=False, CreatedAt="2020-01-01T00:00:00Z"),
                            dict(ID="rec2", Size=200, InUse=False, Shared=False, CreatedAt="2020-01-01T00:00:00Z"),
                            dict(ID="rec3", Size=400, InUse=True, Shared=False, CreatedAt="2020-01-01T00:00:00Z")]
    unrestricted = prune(snapshot, containers=False, build_cache=True)
    assert [i["id"] for i in plan_objects(snapshot, unrestricted.actions)] == ["rec1", "rec2"]
    plan = prune(snapshot, ["rec2"], containers=False, build_cache=True)
    assert [(a["filters"], a["bytes"], a["records"]) for a in plan.actions] == [({"id": ["rec2"]}, 200, 1)]
    assert plan.not_approved == [dict(type="build_cache", id="rec1", name="rec1", bytes=100)]


def test_retention_under_pressure_passes_over_an_unapproved_image_to_an_approved_one():
    snapshot = snapshot_with_ages([("a1", ["app:1"], ["a1"], 40, {}), ("a2", ["app:2"], ["a2"], 30, {}),
                                   ("a3", ["app:3"], ["a3"], 20, {})], sizes={"a1": 5000, "a2": 5000, "a3": 5000})
    pressure = policy(pressure=dict(used=100_000, high=99_000, low=95_000, mark="test"))
    unrestricted = plan_retention(snapshot, pressure)
    assert [a["image"] for a in unrestricted.actions] == [hid("a1")]  # least recently used first, 5000 is enough
    under = approval([hid("a2")])
    plan = complete(snapshot, plan_retention(snapshot, pressure, under), under, plan_retention(snapshot, pressure))
    assert [a["image"] for a in plan.actions] == [hid("a2")]
    assert [n["id"] for n in plan.not_approved] == [hid("a1")]
    assert hid("a1") in plan.kept and hid("a1") not in plan.violations


@pytest.mark.parametrize("items, message", [
    ([5], "approved[0]: an item ID (a string) or a plan item (a dict with an id), got 5."),
    ([{"name": "x"}], "approved[0]: an item ID"),
    (["ok", {"id": "x", "references": "app:1"}], "approved[1].references: a list of image references"),
    ([{"id": "x", "type": "thing"}], "approved[0].type: one of container, image, network, volume, build_cache"),
])
def test_a_malformed_approval_is_refused_naming_the_element(items, message):
    with pytest.raises(ValueProblem) as refused:
        approval(items)
    assert str(refused.value).startswith(message)


def test_an_engine_id_needs_an_approval_and_another_engine_is_refused():
    with pytest.raises(ValueProblem, match="approved_engine_id is set but approved is not"):
        approval(None, "A")
    assert approval([], "A").engine_problem("A") is None
    assert "made on engine A, this is engine B" in approval([], "A").engine_problem("B")


@SETTINGS
@given(prune_cases(), st.data())
def test_only_approved_items_go_and_approving_the_whole_plan_changes_nothing(case, data):
    snapshot, options = case
    kwargs = dict(containers=options["containers"], dangling=options["dangling"], protect_label=options["protect_label"])
    unrestricted = prune(snapshot, **kwargs)
    items = plan_objects(snapshot, unrestricted.actions)
    # The whole plan approved: the same actions (the oracle is the plan without approval).
    assert prune(snapshot, items, **kwargs).actions == unrestricted.actions
    approved = data.draw(st.lists(st.sampled_from(items), unique_by=lambda i: i["id"])) if items else []
    plan = prune(snapshot, approved, **kwargs)
    approved_ids = {i["id"] for i in approved}
    assert removed_ids(snapshot, plan) <= approved_ids
    assert {n["id"] for n in plan.not_approved} == {i["id"] for i in items} - approved_ids
    assert plan.reclaimed_bytes == oracle_bytes(snapshot, plan)


def test_approved_build_cache_records_go_children_first():
    snapshot = make_snapshot([])
    snapshot.build_cache = [dict(ID="base", Size=1, Parents=None), dict(ID="mid", Size=2, Parents=["base"]),
                            dict(ID="top", Size=4, Parent="mid"), dict(ID="lone", Size=8)]
    plan = prune(snapshot, ["base", "mid", "top", "lone"], containers=False, build_cache=True)
    assert [a["filters"]["id"][0] for a in plan.actions] == ["top", "mid", "base", "lone"]
    # API 1.51 lists no Parents: newest first (a step's record is created after the one it builds on).
    for record, created in zip(snapshot.build_cache, ("2026-01-01T00:00:01Z", "2026-01-01T00:00:02.5Z",
                                                      "2026-01-01T00:00:03Z", "2026-01-01T00:00:00Z")):
        record.update(Parents=None, Parent=None, CreatedAt=created)
    plan = prune(snapshot, ["base", "mid", "top", "lone"], containers=False, build_cache=True)
    assert [a["filters"]["id"][0] for a in plan.actions] == ["top", "mid", "base", "lone"]


def test_an_empty_engine_id_is_refused_rather_than_matching_no_engine():
    with pytest.raises(ValueProblem, match="approved_engine_id: an empty engine ID"):
        approval([], "")


def test_a_dangling_image_approved_and_tagged_since_stays():
    snapshot = make_snapshot([("d", ["app:new"], ["d"], None)])
    plan = prune(snapshot, [dict(type="image", id=hid("d"), name=hid("d")[7:19], references=[], bytes=1000)],
                 containers=False)
    assert plan.actions == []
    assert plan.skipped[0]["reason"] == "changed since the plan was approved: new reference(s) app:new"
    # A bare ID says nothing of references: the image goes with its tag.
    assert removed_ids(snapshot, prune(snapshot, [hid("d")], containers=False)) == {hid("d")}
