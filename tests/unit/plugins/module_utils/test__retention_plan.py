"""The retention planner on hand-made and generated snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from accounting_oracle import oracle_bytes
from snapshot_helpers import (
    DAY,
    FLAVOURS,
    NOW,
    PREFIX,
    expected,
    hid,
    policy,
    recorded,
    snapshot_with_ages,
)
from strategies import SETTINGS, pressures, retention_cases

from ansible_collections.reclaim.docker.plugins.module_utils._model import Snapshot, repository_of
from ansible_collections.reclaim.docker.plugins.module_utils._retention_plan import plan_retention


APPS = [
    ("a1", ["app:1"], ["base", "a1"], 40, {}),
    ("a2", ["app:2"], ["base", "a2"], 30, {}),
    ("a3", ["app:3"], ["base", "a3"], 20, {}),
    ("two", ["app:old", "tools:1"], ["two"], 50, {}),
    ("keep", ["app:keep"], ["keep"], 90, {"keep": "1"}),
]


def test_keep_last_counts_an_image_in_every_repository():
    plan = plan_retention(snapshot_with_ages(APPS), policy(keep_last=2, protect={"labels": ["keep"]}))
    assert set(plan.violations) == {hid("a1"), hid("two")}
    # tools:1 is within the last 2 of tools: only app:old goes, nothing is freed by it.
    assert plan.violations[hid("two")]["action"] == "untag"
    assert plan.violations[hid("two")]["untag"] == {"app:old"}
    assert plan.kept[hid("keep")]["reason"] == "protected"
    assert plan.violations[hid("a1")]["bytes"] == 1000  # base stays with a2 and a3


def test_max_age_applies_outside_the_keep_last_floor_and_min_age_wins():
    plan = plan_retention(snapshot_with_ages(APPS), policy(keep_last=2, max_age=25 * DAY, min_age="35d"))
    # app by age: a3 (20 d), a2 (30 d) are its last 2: the floor, however old. Outside it a1 (40 d), two (50 d) and keep
    # (90 d) are older than max_age; two stays in tools, whose only image it is.
    assert set(plan.violations) == {hid("a1"), hid("two"), hid("keep")}
    assert plan.violations[hid("a1")]["reasons"] == ["not among the last 2 of app", "older than max_age"]
    assert plan.violations[hid("two")]["action"] == "untag" and plan.violations[hid("two")]["untag"] == {"app:old"}
    # min_age keeps a2 and a3 as well; the floor's own category is for images that nothing else holds.
    assert plan.kept[hid("a2")]["reason"] == "too_young"


def test_max_age_never_takes_one_of_the_keep_last_newest():
    """The issue's case: four unused images of one repository, all older than max_age; keep_last 2 keeps two."""
    four = [(f"v{n}", [f"app:{n}"], ["base", f"v{n}"], 40 + 10 * (4 - n), {}) for n in range(1, 5)]
    plan = plan_retention(snapshot_with_ages(four), policy(keep_last=2, max_age=30 * DAY))
    assert set(plan.violations) == {hid("v1"), hid("v2")}
    assert {i: k["reason"] for i, k in plan.kept.items()} == {hid("v3"): "keep_last", hid("v4"): "keep_last"}
    assert plan.kept[hid("v4")]["detail"] == "among the last 2 of app"


def test_outside_the_floor_an_image_within_max_age_stays_within_the_policy():
    plan = plan_retention(snapshot_with_ages(APPS), policy(keep_last=1, max_age=35 * DAY))
    # a3 is app's last; a2 (30 d) is outside the floor but not older than max_age.
    assert plan.kept[hid("a3")]["reason"] == "keep_last"
    assert plan.kept[hid("a2")] == dict(reason="within_policy", detail="not older than max_age")
    assert set(plan.violations) == {hid("a1"), hid("two"), hid("keep")}


def test_images_in_use_are_kept_whatever_the_policy():
    plan = plan_retention(snapshot_with_ages(APPS, containers=[("svc", "a1", "exited", 0)]),
                          policy(keep_last=1, max_age=1 * DAY))
    assert plan.kept[hid("a1")]["reason"] == "in_use"
    assert hid("a1") not in {a["image"] for a in plan.actions}


def test_pressure_evicts_least_recently_used_until_the_low_mark():
    snapshot = snapshot_with_ages(APPS, sizes={"a1": 5000, "a2": 3000, "a3": 4000, "two": 2000})
    used = 100_000
    plan = plan_retention(snapshot, policy(protect={"labels": ["keep"]},
                                           pressure=dict(used=used, high=95_000, low=93_500, mark="test")))
    # LRU by creation: two (50 d, 2000), a1 (40 d, 5000): 7000 freed reaches 93,000 <= 93,500; a2 stays.
    evicted = [a["image"] for a in plan.actions if a["action"] == "delete_image"]
    assert evicted == [hid("two"), hid("a1")]
    assert plan.reclaimed_bytes == 7000


def test_no_pressure_below_the_high_mark():
    plan = plan_retention(snapshot_with_ages(APPS), policy(pressure=dict(used=10, high=20, low=5, mark="test")))
    assert plan.actions == []
    assert plan.eviction["over_high_mark"] is False and plan.eviction["short_by_bytes"] == 0


def test_pressure_never_evicts_the_floor_and_says_how_far_short_it_stops():
    snapshot = snapshot_with_ages(APPS, sizes={"a1": 5000, "a2": 3000, "a3": 4000, "two": 2000})
    plan = plan_retention(snapshot, policy(keep_last=2, max_age=35 * DAY, protect={"labels": ["keep"]},
                                           pressure=dict(used=100_000, high=95_000, low=80_000, mark="test")))
    # a1 (40 d) is outside app's last 2 and older than max_age; a2 and a3 are the floor; two stays in tools.
    assert [a["image"] for a in plan.actions if a["action"] == "delete_image"] == [hid("a1")]
    assert not any(v["reasons"][0].startswith("disk pressure") for v in plan.violations.values())
    assert plan.eviction == dict(mark="test", over_high_mark=True, low_mark_bytes=80_000, usage_after_bytes=95_000,
                                 short_by_bytes=15_000,
                                 held=dict(protected=1, in_use=0, too_young=0, keep_last=2, dangling_excluded=0))


def test_pressure_evicts_outside_the_floor_least_recently_used_first():
    snapshot = snapshot_with_ages(APPS, sizes={"a1": 5000, "a2": 3000, "a3": 4000, "two": 2000})
    plan = plan_retention(snapshot, policy(keep_last=1, max_age=45 * DAY, protect={"labels": ["keep"]},
                                           pressure=dict(used=100_000, high=96_000, low=95_000, mark="test")))
    # two is older than max_age outside app's floor, untagged there (tools keeps it); a1 and a2 are within the policy
    # outside the floor: a1 is the least recently used, and its 5000 bytes reach the low mark.
    evicted = [i for i, v in plan.violations.items() if v["reasons"] == ["disk pressure: over test"]]
    assert evicted == [hid("a1")] and plan.kept[hid("a2")]["reason"] == "within_policy"
    assert plan.eviction["short_by_bytes"] == 0 and plan.eviction["usage_after_bytes"] == 95_000


# ---------------------------------------------------------------- recorded snapshots

def recorded_as(flavour, repository_of_d3_and_d4=None):
    """A recorded snapshot, every image 60 days old (they are from 2020); with REPOSITORY_OF_D3_AND_D4, d3 and d4 are
    one repository's builds 1 and 2, d4 the newer (their references renamed, nothing else: the bytes stay the
    engine's)."""
    data = recorded(flavour).to_dict()
    ids = expected(flavour)["spec_ids"]
    for image in data["images"]:
        image["created"] = NOW - 60 * DAY
        for build, name in ((1, "d3"), (2, "d4")):
            if repository_of_d3_and_d4 and image["id"] == ids[name]:
                image["created"] += build
                image["repo_tags"] = [f"{repository_of_d3_and_d4}:{build}"]
                image["repo_digests"] = [d.replace(f"{PREFIX}lab/{name}@", f"{repository_of_d3_and_d4}@")
                                         for d in image["repo_digests"]]
    return Snapshot.from_dict(data), ids


def unused_tagged(snapshot):
    return {i for i, image in snapshot.images.items() if image.repo_tags and not snapshot.containers_of(i)}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_on_recorded_engines_the_newest_of_each_repository_stays_however_old(flavour):
    snapshot, ids = recorded_as(flavour)
    plan = plan_retention(snapshot, policy(keep_last=1, max_age=30 * DAY))
    # Every tagged image is the only one of its repositories: only the dangling one goes, freeing what the engine freed.
    assert set(plan.violations) == {ids["dang"]}
    assert plan.reclaimed_bytes == expected(flavour)["removals"]["dangling_by_id"]["layers_size_drop"]
    assert plan.kept[ids["run"]]["reason"] == plan.kept[ids["stop"]]["reason"] == "in_use"
    assert {i for i, k in plan.kept.items() if k["reason"] == "keep_last"} == unused_tagged(snapshot)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("options", [dict(keep_last=1), dict(keep_last=1, max_age=30 * DAY)])
def test_on_recorded_engines_an_older_build_outside_the_floor_goes_with_the_bytes_the_engine_freed(flavour, options):
    snapshot, ids = recorded_as(flavour, repository_of_d3_and_d4=f"{PREFIX}lab/d")
    plan = plan_retention(snapshot, policy(dangling=False, **options))
    assert set(plan.violations) == {ids["d3"]}
    assert plan.violations[ids["d3"]]["reasons"][0] == f"not among the last 1 of {PREFIX}lab/d"
    assert plan.kept[ids["d4"]] == dict(reason="keep_last", detail=f"among the last 1 of {PREFIX}lab/d")
    # X stays with d4: what deleting d3 alone freed on the engine.
    assert plan.reclaimed_bytes == expected(flavour)["removals"]["d3_only"]["layers_size_drop"]
    assert plan_retention(snapshot, policy(keep_last=2, max_age=30 * DAY, dangling=False)).actions == []


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_on_recorded_engines_a_budget_stops_at_the_floor(flavour):
    snapshot, ids = recorded_as(flavour, repository_of_d3_and_d4=f"{PREFIX}lab/d")
    used = 50_000_000
    plan = plan_retention(snapshot, policy(keep_last=1, dangling=False,
                                           pressure=dict(used=used, high=1, low=1, mark="max_images_bytes (1 bytes)")))
    freed = expected(flavour)["removals"]["d3_only"]["layers_size_drop"]
    assert set(plan.violations) == {ids["d3"]} and plan.reclaimed_bytes == freed
    assert plan.eviction["short_by_bytes"] == used - freed - 1
    floor = unused_tagged(snapshot) - {ids["d3"]}
    assert plan.eviction["held"] == dict(protected=0, in_use=2, too_young=0, keep_last=len(floor), dangling_excluded=1)


def the_keep_last_newest(snapshot, keep_last):
    """The definition: per repository, the KEEP_LAST images with a tag in it created last (the ID breaks a tie)."""
    by_repository = {}
    for image in snapshot.images.values():
        for tag in image.repo_tags:
            by_repository.setdefault(repository_of(tag), []).append(image)
    return {(repository, image.id) for repository, images in by_repository.items()
            for image in sorted(images, key=lambda i: (-i.created, i.id))[:keep_last]}


@SETTINGS
@given(retention_cases())
def test_retention_invariants(case):
    snapshot, options = case
    before = snapshot.to_dict()
    plan = plan_retention(snapshot, policy(protect={"labels": ["keep"]}, **options))
    assert snapshot.to_dict() == before
    touched = {a["image"] for a in plan.actions}
    for image_id in touched:
        image = snapshot.images[image_id]
        assert "keep" not in image.labels, "a protected image was touched"
        assert not snapshot.containers_of(image_id), "an image in use was touched"
        if options["min_age"]:
            assert image.created <= NOW - 72 * 3600, "a too young image was touched"
    assert not any(a["action"] in ("remove_container", "force_untag") for a in plan.actions)
    assert all(not a.get("force") for a in plan.actions), "retention never forces"
    assert plan.reclaimed_bytes == oracle_bytes(snapshot, plan)


@SETTINGS
@given(retention_cases(keep_last=st.integers(0, 3)), pressures())
def test_no_policy_deletes_or_untags_one_of_the_keep_last_newest(case, pressure):
    snapshot, options = case
    plan = plan_retention(snapshot, policy(protect={"labels": ["keep"]}, pressure=pressure, **options))
    deleted = {a["image"] for a in plan.actions if a["action"] == "delete_image"}
    untagged = {(repository_of(a["reference"]), a["image"]) for a in plan.actions if a["action"] == "untag"}
    for repository, image_id in the_keep_last_newest(snapshot, options["keep_last"]):
        assert image_id not in deleted, f"one of the last {options['keep_last']} of {repository} is deleted"
        assert (repository, image_id) not in untagged, f"one of the last {options['keep_last']} of {repository} is untagged"
    if pressure and plan.eviction["short_by_bytes"]:
        # Eviction stopped short only because everything left is held: nothing within the policy stays.
        assert "within_policy" not in {k["reason"] for k in plan.kept.values()}
