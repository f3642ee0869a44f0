"""image_retention's job: the policy its options make (every combination checked before the engine is contacted), the
disk pressure it reads, and its result through the real runner on a stub engine."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from snapshot_helpers import NOW, hid, make_snapshot, snapshot_with_ages
from stub_engine import DOCKER_HOST, StubEngine, run

from ansible_collections.reclaim.docker.plugins.module_utils import _runner
from ansible_collections.reclaim.docker.plugins.module_utils._retention_job import RetentionJob, short_of_the_low_mark
from ansible_collections.reclaim.docker.plugins.module_utils._retention_plan import KEPT_REASONS
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem


def job(**args):
    validated = ArgumentSpecValidator(RetentionJob.argument_spec().argument_spec).validate(
        dict({"docker_host": DOCKER_HOST}, **args)).validated_parameters
    return RetentionJob(validated, False, NOW)


@pytest.mark.parametrize("args, message", [
    (dict(high_watermark=70, low_watermark=80), r"low_watermark \(80.0\) is above high_watermark \(70.0\)"),
    (dict(high_watermark=120, low_watermark=80), "high_watermark is a percent between 0 and 100, got 120"),
    (dict(high_watermark=80, low_watermark=0), "low_watermark is a percent between 0 and 100, got 0"),
    (dict(max_age="1d", min_age="2d"), r"min_age \(2d\) is above max_age \(1d\)"),
    (dict(dangling=False), "image_retention has no policy to enforce"),
    (dict(max_images_bytes="lots"), "max_images_bytes"),
])
def test_values_and_combinations_that_cannot_work_are_refused(args, message):
    with pytest.raises(ValueProblem, match=message):
        job(**args)


def test_pressure_is_the_budget_of_images_or_the_watermarks_of_the_filesystem():
    usage = dict(images_bytes=700, filesystem=dict(path="/d", used=600, free=400))
    assert job(max_images_bytes="500B")._pressure(usage) == dict(  # pylint: disable=protected-access
        used=700, high=500, low=500, mark="max_images_bytes (500 bytes of images)")
    marks = job(high_watermark=80, low_watermark=50)._pressure(usage)  # pylint: disable=protected-access
    assert marks == dict(used=600, high=800, low=500, mark="high_watermark (80.0% of /d)")
    assert job(keep_last=1)._pressure(usage) is None  # pylint: disable=protected-access


def test_the_warning_names_what_holds_the_images_left():
    eviction = dict(mark="max_images_bytes (1 bytes of images)", short_by_bytes=300,
                    held=dict(protected=0, in_use=2, keep_last=1))
    message = short_of_the_low_mark(eviction)
    assert message.startswith("Usage is over max_images_bytes (1 bytes of images), and eviction stops 300 bytes short")
    assert "(2 in use, 1 among the keep_last newest of a repository)" in message
    assert "(no image left)" in short_of_the_low_mark(dict(eviction, held=dict(in_use=0)))


AGED = [("new", ["lab/app:3"], ["n"], 1, {}), ("mid", ["lab/app:2"], ["m"], 20, {}),
        ("old", ["lab/app:1"], ["o"], 40, {}), ("kept", ["lab/keep:1"], ["k"], 50, {"keep": "1"})]


@pytest.fixture
def at_now(monkeypatch):
    """The runner's clock at NOW, the time the ages of snapshot_with_ages count from."""
    monkeypatch.setattr(_runner, "time", SimpleNamespace(time=lambda: NOW))


def test_violations_oldest_first_with_what_enforcing_does(tmp_path, at_now):
    result = run(RetentionJob, StubEngine(snapshot_with_ages(AGED)),
                 {"max_age": "10d", "protect": {"labels": ["keep"]}, "report_kept": True}, tmp_path, check=True)
    assert [(v["image"], v["action"], v["bytes"]) for v in result["violations"]] == [
        (hid("old"), "delete", 1000), (hid("mid"), "delete", 1000)]
    old = result["violations"][0]
    assert old["created"] == "2026-12-06T08:00:00Z" and old["age_days"] == 40.0 and old["repositories"] == ["lab/app"]
    assert result["deleted"] == sorted([hid("old"), hid("mid")]) and result["untagged"] == ["lab/app:1", "lab/app:2"]
    assert set(result["kept"]["counts"]) == set(KEPT_REASONS) and result["kept"]["counts"]["protected"] == 1
    assert {k["image"]: k["reason"] for k in result["kept"]["images"]} == {hid("kept"): "protected",
                                                                           hid("new"): "within_policy"}
    assert result["usage_after"]["images_bytes"] == result["usage_before"]["images_bytes"] - 2000


def test_fail_on_violation_fails_after_enforcing(tmp_path, at_now):
    engine = StubEngine(snapshot_with_ages(AGED))
    result = run(RetentionJob, engine, {"max_age": "30d", "fail_on_violation": True}, tmp_path)
    assert result["failed"] is True and result["msg"] == "Could not enforce: 2 image(s) violate the retention policy"
    assert result["deleted"] == sorted([hid("old"), hid("kept")]) and ("DELETE", "/images/lab/app:1") in engine.calls
    assert "images" not in result["kept"]


def test_retention_says_how_far_short_of_the_mark_the_floor_stops_eviction(tmp_path):
    snapshot = make_snapshot([("d1", [], ["base", "d1"], None), ("d2", [], ["base", "d2"], None),
                              ("app", ["lab/app:1"], ["base", "a"], None), ("used", ["lab/used:1"], ["u"], None)],
                             [("job", "used", "exited", 40)])
    result = run(RetentionJob, StubEngine(snapshot), {"keep_last": 1, "max_images_bytes": "1"}, tmp_path, check=True)
    assert result["eviction"]["short_by_bytes"] == sum(snapshot.layer_sizes.values()) - 1 - 2000  # d1, d2 evicted
    assert result["eviction"]["held"]["keep_last"] == 1 and result["eviction"]["held"]["in_use"] == 1
