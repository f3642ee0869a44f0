"""The cleanup role's controller arithmetic (reclaim.docker.cleanup_steps and cleanup_result): the steps' module
arguments from the role's settings, and one host's cleanup_result from its steps' registered results, as plain
functions and through their filter plugins."""

from __future__ import annotations

import os

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.reclaim.docker.plugins.filter.cleanup_result import FilterModule as ResultFilters
from ansible_collections.reclaim.docker.plugins.filter.cleanup_steps import FilterModule as StepsFilters
from ansible_collections.reclaim.docker.plugins.plugin_utils._fleet import cleanup_result, cleanup_steps, normalise

SETTINGS = settings(max_examples=200, deadline=None, derandomize=bool(os.environ.get("CI")))
cleanup_steps_filter = StepsFilters().filters()["cleanup_steps"]
cleanup_result_filter = ResultFilters().filters()["cleanup_result"]

ENGINE = "ABCD:EFGH"
IMG = {n: "sha256:" + str(n) * 64 for n in range(1, 6)}
FS = {"path": "/var/lib/docker", "total": 100_000, "used": 60_000, "free": 40_000, "used_percent": 60.0}
BEFORE = {"images_bytes": 9_000, "filesystem": FS}
RESULT_KEYS = {"mode", "status", "profile", "reclaimed_bytes", "removed", "usage_before", "usage_after",
               "filesystem_delta_bytes", "skipped", "engine_id", "plan", "not_approved", "approval", "root_dir", "error"}


def plan_item(n, step=None, size=1_000):
    item = {"type": "image", "id": IMG[n], "name": f"app:{n}", "bytes": size, "references": [f"app:{n}"]}
    return dict(item, step=step) if step else item


def prune_run(check_mode=True, images=(1,), bytes_each=1_000, usage_before=None, usage_after=None, **extra):
    usage_before = usage_before or BEFORE
    objects = [plan_item(n, size=bytes_each) for n in images]
    freed = bytes_each * len(images)
    result = {"changed": bool(images), "check_mode": check_mode, "containers": [], "images": [IMG[n] for n in images],
              "untagged": [], "networks": [], "volumes": [], "images_space_reclaimed": freed, "reclaimed_bytes": freed,
              "builder_cache_caches_deleted": [], "builder_cache_prediction": {"bytes": 0, "records": 2, "exact": True},
              "skipped_items": [], "plan": {"engine_id": ENGINE, "objects": objects}, "not_approved": [],
              "usage_before": usage_before, "usage_after": usage_after or usage_before}
    result.update(extra)
    return result


def retention_run(images=(2,), bytes_each=500):
    return {"changed": True, "deleted": [IMG[n] for n in images], "untagged": [], "skipped_items": [],
            "reclaimed_bytes": bytes_each * len(images), "usage_before": BEFORE,
            "plan": {"engine_id": ENGINE, "objects": [plan_item(n, size=bytes_each) for n in images]},
            "not_approved": []}


SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False", "false_condition": "x"}


# ---------------------------------------------------------------- cleanup_steps

@pytest.mark.parametrize("profile, containers, dangling, networks, retention", [
    ("conservative", False, True, False, True), ("standard", True, True, True, True),
    ("aggressive", True, False, True, False),
])
def test_each_profile_prunes_what_the_readme_says(profile, containers, dangling, networks, retention):
    steps = cleanup_steps_filter(profile, retention={"keep_last": 3}, protect={"references": ["db:*"], "labels": []})
    prune = steps["prune"]
    assert (prune["containers"], prune["images_filters"]["dangling"], prune["networks"]) == (containers, dangling, networks)
    assert prune["images"] is True and prune["builder_cache"] is True and prune["usage"] is True
    assert prune["protect"] == {"references": ["db:*"], "labels": []} and prune["min_age"] == "1h"
    assert (steps["retention"] is not None) == retention
    assert "volumes_filters" not in prune and prune["volumes"] is False
    assert "approved" not in prune and steps["approved_plan"] == {}


def test_the_standard_profile_counts_a_day_from_when_a_container_stopped():
    assert cleanup_steps("standard")["prune"]["containers_filters"] == {"stopped_for": "24h"}
    assert cleanup_steps("conservative")["prune"]["builder_cache_filters"] == {"until": "168h"}


def test_retention_merges_its_protect_with_cleanup_protect_and_leaves_dangling_images_to_the_prune():
    steps = cleanup_steps("standard", retention={"keep_last": 2, "max_age": "30d", "protect": {"references": ["a:*", "b:*"]}},
                          protect={"references": ["b:*"], "labels": ["keep=1"]}, min_age="2h")
    assert steps["retention"] == {"keep_last": 2, "max_age": "30d", "dangling": False, "min_age": "2h",
                                  "protect": {"references": ["b:*", "a:*"], "labels": ["keep=1"]}}
    assert cleanup_steps("standard", retention={})["retention"] is None


def test_volumes_only_when_asked_and_named_ones_only_when_asked_twice():
    assert cleanup_steps("standard", prune_volumes=True)["prune"]["volumes"] is True
    named = cleanup_steps("standard", prune_volumes=True, prune_named_volumes=True)["prune"]
    assert named["volumes_filters"] == {"all": True}
    with pytest.raises(AnsibleFilterError, match="cleanup_prune_named_volumes needs cleanup_prune_volumes"):
        cleanup_steps_filter("standard", prune_named_volumes=True)


def test_an_approved_plan_gives_each_step_its_own_objects_and_the_engine():
    plan = {"engine_id": ENGINE, "objects": [plan_item(1, "retention"), plan_item(2, "prune"), plan_item(3)]}
    steps = cleanup_steps("standard", retention={"keep_last": 1}, approved_plan=plan)
    assert [o["id"] for o in steps["retention"]["approved"]] == [IMG[3], IMG[1]]
    assert [o["id"] for o in steps["prune"]["approved"]] == [IMG[3], IMG[2]]
    assert steps["retention"]["approved_engine_id"] == steps["prune"]["approved_engine_id"] == ENGINE
    assert steps["approved_plan"] == plan


@pytest.mark.parametrize("plan", [{"engine_id": None, "objects": []}, {"objects": [plan_item(1, "prune")]}])
def test_a_plan_without_an_engine_id_leaves_the_check_out_but_still_restricts(plan):
    prune = cleanup_steps("conservative", approved_plan=plan)["prune"]
    assert "approved_engine_id" not in prune and prune["approved"] == plan["objects"]


@pytest.mark.parametrize("plan", [None, {}, "", "null"])
def test_no_approved_plan_restricts_nothing(plan):
    steps = cleanup_steps("conservative", approved_plan=plan)
    assert "approved" not in steps["prune"] and steps["approved_plan"] == {}


def test_an_unknown_profile_is_refused_by_name():
    with pytest.raises(AnsibleFilterError, match="cleanup_profile: 'extreme'"):
        cleanup_steps_filter("extreme")


# ---------------------------------------------------------------- cleanup_result

def test_an_audit_without_retention_predicts_the_usage_after_from_the_prune():
    result = cleanup_result_filter({"retention": SKIPPED, "prune": prune_run(images=(1, 3))}, profile="conservative",
                                   approved_plan={})
    assert set(result) == RESULT_KEYS
    assert result["mode"] == "audit" and result["status"] == "ok" and result["error"] is None
    assert result["reclaimed_bytes"] == 2_000
    assert result["removed"]["images"] == [IMG[1], IMG[3]] and result["removed"]["build_cache_records"] == 2
    assert result["usage_before"] == BEFORE
    assert result["usage_after"] == {"images_bytes": 7_000, "filesystem": dict(
        FS, used=58_000, free=42_000, used_percent=58.0)}
    assert result["filesystem_delta_bytes"] is None  # an audit measures no delta
    assert result["plan"] == {"engine_id": ENGINE, "objects": [plan_item(1, "prune"), plan_item(3, "prune")]}
    assert result["engine_id"] == ENGINE and result["approval"] is None and result["not_approved"] == []
    assert result["root_dir"] is None  # no walk asked for


def log(n, size):
    return {"container": f"{n:064x}", "name": f"c{n}", "driver": "json-file", "path": f"/d/containers/{n}.log",
            "bytes": size}


WALK = {"path": "/var/lib/docker", "bytes": 50_000, "unexplained_bytes": 100, "exact": True,
        "categories": {"images": 30_000, "containers": 1_000, "container_logs": 12_900, "volumes": 0,
                       "build_cache": 0, "engine_metadata": 1_000, "leaked": 5_000, "other": 0},
        "unexplained": [{"path": "x", "bytes": 100}],
        "container_logs": [log(n, size) for n, size in enumerate([3_000, 1_000, 4_000, 100, 2_000, 2_000, 800])]}


def walk_run(root_dir=None):
    """disk_usage_info's registered result with root_dir: true (only the walk asked for)."""
    return {"changed": False, "disk_usage": {}, "filesystem": None, "engine": {"id": ENGINE},
            "root_dir": root_dir or WALK}


def test_the_prune_is_not_asked_to_walk():
    # The walk is disk_usage_info's, a step of its own before the others.
    assert "root_dir" not in cleanup_steps("conservative")["prune"]


def test_a_walked_root_dir_keeps_its_categories_and_names_the_largest_logs():
    result = cleanup_result({"root_dir": walk_run(), "retention": SKIPPED, "prune": prune_run()})
    root_dir = result["root_dir"]
    assert root_dir["categories"] == WALK["categories"] and root_dir["bytes"] == 50_000
    assert (root_dir["path"], root_dir["unexplained_bytes"], root_dir["exact"]) == ("/var/lib/docker", 100, True)
    assert root_dir["inexact_reason"] is None and "unexplained" not in root_dir and "container_logs" not in root_dir
    # The five largest, largest first; the tie keeps the walk's order.
    assert [log["name"] for log in root_dir["largest_container_logs"]] == ["c2", "c0", "c4", "c5", "c1"]
    assert root_dir["largest_container_logs"][0] == log(2, 4_000)
    # The report normalises it again: the summary stays as it is.
    assert normalise(result)["root_dir"] == root_dir
    inexact = cleanup_result({"root_dir": walk_run(dict(WALK, exact=False, inexact_reason="cannot read x")),
                              "prune": prune_run()})
    assert (inexact["root_dir"]["exact"], inexact["root_dir"]["inexact_reason"]) == (False, "cannot read x")
    # A walk that was skipped (cleanup_root_dir false) or left out is no walk.
    assert cleanup_result({"root_dir": SKIPPED, "prune": prune_run()})["root_dir"] is None
    assert cleanup_result_filter({"root_dir": None, "prune": prune_run()})["root_dir"] is None
    # A host that failed afterwards reports no bytes of its own, the walk's neither.
    failed = cleanup_result({"root_dir": walk_run(), "prune": dict(prune_run(), failed=True)}, failed={"msg": "boom"},
                            mode="audit")
    assert failed["root_dir"] is None


def test_an_audit_with_retention_counts_both_steps_from_the_usage_retention_read():
    result = cleanup_result({"retention": retention_run(images=(2, 4)), "prune": prune_run(images=(1,))})
    assert result["reclaimed_bytes"] == 2_000
    assert result["removed"]["images"] == [IMG[2], IMG[4], IMG[1]]
    # The prune alone predicted 8,000 from its own (pre-retention) read; both steps free 2,000 of images.
    assert result["usage_after"]["images_bytes"] == 7_000
    assert result["usage_after"]["filesystem"]["used"] == 58_000
    assert [o["step"] for o in result["plan"]["objects"]] == ["retention", "retention", "prune"]


def test_a_cleanup_takes_the_usage_the_prune_read_after_its_run():
    after = {"images_bytes": 8_100, "filesystem": dict(FS, used=59_000, free=41_000, used_percent=59.0)}
    prune = prune_run(check_mode=False, images=(1,), usage_after=after, builder_cache_caches_deleted=["r1"])
    result = cleanup_result({"retention": SKIPPED, "prune": prune}, profile="standard")
    assert result["mode"] == "cleanup" and result["usage_after"] == after
    assert result["filesystem_delta_bytes"] == 1_000 and result["removed"]["build_cache_records"] == 1


def test_no_filesystem_off_the_docker_host():
    usage = {"images_bytes": 9_000, "filesystem": None}
    result = cleanup_result({"prune": prune_run(usage_before=usage)})
    assert result["usage_after"] == {"images_bytes": 8_000, "filesystem": None}
    assert cleanup_result({"prune": prune_run(False, usage_before=usage)})["filesystem_delta_bytes"] is None


def test_an_approved_plan_is_counted_approved_applied_not_approved_and_skipped():
    approved = {"engine_id": ENGINE, "objects": [plan_item(1, "prune"), plan_item(3, "prune", 700)]}
    late = dict(plan_item(5), step="prune")
    prune = prune_run(False, images=(1,), not_approved=[plan_item(5)],
                      skipped_items=[{"type": "image", "id": IMG[3], "name": "app:3", "reason": "in use"}])
    result = cleanup_result({"prune": prune}, approved_plan=approved)
    assert result["not_approved"] == [late]
    assert result["approval"] == {"approved": {"count": 2, "bytes": 1_700}, "applied": {"count": 1, "bytes": 1_000},
                                  "not_approved": {"count": 1, "bytes": 1_000}, "skipped": {"count": 1, "bytes": 700}}
    # The report normalises it again: the approval it has stays.
    assert normalise(dict(result, approved_plan=None))["approval"] == result["approval"]


def test_a_failed_run_keeps_the_usage_read_before_the_failure():
    failed = {"failed": True, "msg": "a plan applies only to the engine it was made on"}
    result = cleanup_result_filter({"retention": dict(retention_run(), failed=True, msg="boom")}, profile="standard",
                                   approved_plan={}, failed=failed, mode="cleanup")
    assert result["status"] == "failed" and result["error"] == failed["msg"] and result["mode"] == "cleanup"
    assert result["usage_before"] == result["usage_after"] == BEFORE and result["reclaimed_bytes"] == 0
    nothing = cleanup_result({"retention": None}, failed={"failed": True}, mode="audit")
    assert nothing["error"] == "failed: no error message"
    assert nothing["usage_before"] == {"images_bytes": 0, "filesystem": None}
    assert nothing["mode"] == "audit" and nothing["plan"] is None


def test_a_host_without_a_result_is_unreachable():
    assert normalise(None) == {
        "mode": None, "status": "unreachable", "profile": None, "reclaimed_bytes": 0,
        "removed": {"containers": [], "images": [], "untagged": [], "networks": [], "volumes": [],
                    "build_cache_records": 0},
        "usage_before": {"images_bytes": 0, "filesystem": None}, "usage_after": {"images_bytes": 0, "filesystem": None},
        "filesystem_delta_bytes": None, "skipped": [], "engine_id": None, "plan": None, "not_approved": [],
        "approval": None, "root_dir": None, "error": "unreachable: no result"}


def test_a_hand_made_result_takes_the_defaults():
    result = normalise({"status": "weird", "reclaimed_bytes": "12", "removed": {"images": ["x"]}, "mode": "other"})
    assert result["status"] == "failed" and result["error"] == "failed: no error message"
    assert result["reclaimed_bytes"] == 12 and result["removed"]["images"] == ["x"] and result["mode"] is None
    assert normalise({"filesystem_delta_bytes": ""})["filesystem_delta_bytes"] is None  # 2.17's templated null
    assert normalise({"filesystem_delta_bytes": "0"})["filesystem_delta_bytes"] == 0


@SETTINGS
@given(used=st.integers(0, 10**12), free=st.integers(0, 10**12), images=st.integers(0, 10**11),
       freed=st.lists(st.integers(0, 10**9), max_size=6), retained=st.lists(st.integers(0, 10**9), max_size=4))
def test_an_audit_prediction_keeps_the_filesystem_size(used, free, images, freed, retained):
    capacity = used + free
    fs = {"path": "/d", "total": capacity, "used": used, "free": free,
          "used_percent": round(100.0 * used / capacity, 2) if capacity else 0.0}
    before = {"images_bytes": images, "filesystem": fs}
    prune = prune_run(images=(), usage_before=before, images_space_reclaimed=sum(freed), reclaimed_bytes=sum(freed))
    retention = dict(retention_run(images=()), reclaimed_bytes=sum(retained), usage_before=before)
    result = cleanup_result({"retention": retention, "prune": prune})
    after = result["usage_after"]["filesystem"]
    assert after["used"] + after["free"] == capacity
    assert after["used"] == used - result["reclaimed_bytes"] and result["reclaimed_bytes"] == sum(freed) + sum(retained)
    assert after["used_percent"] == (round(100.0 * after["used"] / capacity, 2) if capacity else 0.0)
    assert result["usage_after"]["images_bytes"] == images - result["reclaimed_bytes"]
