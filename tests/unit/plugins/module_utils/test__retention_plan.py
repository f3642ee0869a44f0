"""The retention planner on hand-made and generated snapshots."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from snapshot_helpers import hid, make_snapshot
from test__plan_properties import SETTINGS, oracle_bytes, snapshots

from ansible_collections.reclaim.docker.plugins.module_utils._filters import Protection
from ansible_collections.reclaim.docker.plugins.module_utils._retention_plan import RetentionPolicy, plan_retention

NOW = 1_800_000_000.0
DAY = 86400.0


def snapshot_with_ages(images, containers=(), sizes=None):
    """IMAGES: [(name, tags, layers, age in days, labels)]."""
    snapshot = make_snapshot([(n, t, l, None) for n, t, l, _a, _lb in images], containers, sizes)
    for name, _tags, _layers, age, labels in images:
        snapshot.images[hid(name)].created = NOW - age * DAY
        snapshot.images[hid(name)].labels = labels
    return snapshot


def policy(**kwargs):
    protection = Protection(kwargs.pop("protect", None), kwargs.pop("min_age", None), NOW)
    return RetentionPolicy(NOW, protection, **kwargs)


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


def test_max_age_overrides_keep_last_and_min_age_wins():
    plan = plan_retention(snapshot_with_ages(APPS), policy(keep_last=5, max_age=25 * DAY, min_age="35d"))
    # a1 (40 d) and two (50 d) are old enough to violate; keep (90 d) too; a2 (30 d) is too young for min_age.
    assert set(plan.violations) == {hid("a1"), hid("two"), hid("keep")}
    assert plan.kept[hid("a2")]["reason"] == "too_young"


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


@st.composite
def retention_cases(draw):
    snapshot = draw(snapshots())
    for image in snapshot.images.values():
        image.created = NOW - draw(st.integers(0, 100)) * DAY
        if draw(st.booleans()):
            image.labels["keep"] = "1"
    return snapshot, dict(
        keep_last=draw(st.one_of(st.none(), st.integers(0, 3))),
        max_age=draw(st.one_of(st.none(), st.integers(1, 90).map(lambda d: d * DAY))),
        min_age=draw(st.sampled_from([None, "72h"])),
        dangling=draw(st.booleans()),
    )


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
