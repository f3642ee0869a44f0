"""The planners' shared context: the hold chain in its order (protection, in use, approval), and decide(), the one place
a candidate that stays is recorded, once."""

from __future__ import annotations

import pytest
from snapshot_helpers import NOW, hid, make_snapshot

from ansible_collections.reclaim.docker.plugins.module_utils._approval import Approval
from ansible_collections.reclaim.docker.plugins.module_utils._model import Container
from ansible_collections.reclaim.docker.plugins.module_utils._plan import UNKNOWN_TIME, Hold
from ansible_collections.reclaim.docker.plugins.module_utils._planning import Planning
from ansible_collections.reclaim.docker.plugins.module_utils._protection import Protection

IMAGE = hid("a")
USERS = [Container("c2", "zeta", IMAGE, state="running"), Container("c1", "alpha", IMAGE, state="exited")]
OLD = NOW - 30 * 86400


def planning(approved=None, protect=None, min_age=None):
    snapshot = make_snapshot([("a", ["lab/a:1"], ["x"], None)])
    approval = Approval({i: {"id": i} for i in approved}) if approved is not None else None
    return Planning(snapshot, approval, Protection(protect, min_age, NOW))


def test_protection_comes_before_in_use_and_in_use_before_approval():
    everything = planning(approved=[], protect={"labels": ["keep"]})
    hold = everything.hold(IMAGE, labels={"keep": "1"}, created=OLD, references=["lab/a:1"], users=USERS)
    assert hold == Hold("protected", "protected: label keep")
    hold = everything.hold(IMAGE, labels={}, created=OLD, references=["lab/a:1"], users=USERS)
    assert hold.category == "in_use"
    assert everything.hold(IMAGE, labels={}, created=OLD, references=["lab/a:1"]) == \
        Hold("not_approved", "not in the approved plan")


def test_in_use_names_the_containers_by_name():
    hold = planning().hold(IMAGE, created=OLD, users=USERS)
    assert hold.category == "in_use" and hold.detail.index("alpha") < hold.detail.index("zeta")


def test_a_hold_the_caller_already_asked_leaves_protection_out():
    young = planning(approved=[IMAGE], min_age="24h")
    assert young.hold(IMAGE, created=NOW - 60) == Hold("too_young", "too young: created less than min_age ago")
    assert young.hold(IMAGE, created=NOW - 60, protected=False) is None
    assert young.hold(IMAGE, created=None, protected=False, users=USERS[:1]).category == "in_use"


def test_an_approved_object_with_a_new_reference_stays_as_changed():
    approval = Approval({IMAGE: {"id": IMAGE, "references": ["lab/a:1"]}})
    plan = Planning(make_snapshot([("a", ["lab/a:1"], ["x"], None)]), approval)
    assert plan.hold(IMAGE, references=["lab/a:1"]) is None
    assert plan.hold(IMAGE, references=["lab/a:1", "lab/a:2"]).category == "changed"


def test_no_approval_and_no_protection_hold_nothing():
    bare = Planning(make_snapshot([("a", [], ["x"], None)]))
    assert bare.hold(IMAGE, labels={"keep": "1"}, created=None) is None


def never_asked():
    raise AssertionError("hold() was asked of an object not selected, or of one an unknown time already keeps")


@pytest.mark.parametrize("selected", [False, UNKNOWN_TIME])
def test_an_object_not_selected_asks_no_hold(selected):
    context = planning()
    assert context.decide("image", IMAGE, "lab/a:1", selected, never_asked) is False
    expected = [] if selected is False else [dict(type="image", id=IMAGE, name="lab/a:1", reason=str(UNKNOWN_TIME))]
    assert context.plan.skipped == expected


def test_a_selected_object_that_stays_is_recorded_once_with_its_reason():
    context = planning(protect={"labels": ["keep"]})
    asked = []

    def hold():
        asked.append(1)
        return context.hold(IMAGE, labels={"keep": "1"}, created=OLD)

    assert context.decide("image", IMAGE, "lab/a:1", True, hold) is False
    assert asked == [1]
    assert context.plan.skipped == [dict(type="image", id=IMAGE, name="lab/a:1", reason="protected: label keep")]
    assert context.decide("image", IMAGE, "lab/a:1", True, lambda: None) is True
    assert len(context.plan.skipped) == 1 and context.plan.actions == []  # decide adds no action: the planner does


def test_an_object_not_approved_is_no_skip():
    context = planning(approved=[])
    assert context.decide("volume", "v1", "data", True, lambda: context.hold("v1")) is False
    assert context.plan.skipped == []  # _approval.complete lists it in not_approved
    context.skip("volume", "v1", "data", Hold("changed", "changed since the plan was approved"))
    assert [s["reason"] for s in context.plan.skipped] == ["changed since the plan was approved"]


def test_the_simulator_plans_into_the_contexts_plan():
    context = planning()
    context.images.delete(context.snapshot.images[IMAGE], "lab/a:1", "test")
    assert [a["action"] for a in context.plan.actions] == ["delete_image"] and context.plan.reclaimed_bytes == 1000
