"""The job runner's sequence, through real jobs on a stub engine: options refused before the engine is contacted, the
lock of a real run, the approved plan's engine, check mode as the real run's prediction, the failure policy (failed
and unanswered actions, races per job), a job that only reads."""

from __future__ import annotations

import json
import os
from unittest import mock

import pytest
from snapshot_helpers import hid, make_snapshot
from stub_engine import ENGINE_ID, StubEngine, run

from ansible_collections.reclaim.docker.plugins.module_utils import _runner
from ansible_collections.reclaim.docker.plugins.module_utils._disk_usage_job import DiskUsageJob
from ansible_collections.reclaim.docker.plugins.module_utils._image_remove_job import ImageRemoveJob
from ansible_collections.reclaim.docker.plugins.module_utils._lock import EngineLock, lock_file_name
from ansible_collections.reclaim.docker.plugins.module_utils._prune_job import PruneJob
from ansible_collections.reclaim.docker.plugins.module_utils._retention_job import RetentionJob

# Two dangling images, one unused tagged image, one image of a stopped container.
HOST = [("d1", [], ["base", "d1"], None), ("d2", [], ["base", "d2"], None), ("app", ["lab/app:1"], ["base", "a"], None),
        ("used", ["lab/used:1"], ["u"], None)]
STOPPED = [("job", "used", "exited", 40)]


def host():
    return make_snapshot(HOST, STOPPED)


class Unreachable:
    """A connect that must not happen: the options were to be refused first."""

    def __call__(self, params):
        raise AssertionError("the engine was contacted")


@pytest.mark.parametrize("job, args, message", [
    (PruneJob, {"images": True, "images_filters": {"reference": "x"}}, "images_filters: unknown filter 'reference'"),
    (PruneJob, {"images": True, "assume_deleted": ["lab/x:1"]}, "assume_deleted takes full image IDs"),
    (RetentionJob, {"keep_last": -1}, "keep_last must be 0 or more"),
    (RetentionJob, {"high_watermark": 80, "low_watermark": 70, "docker_host": "tcp://192.0.2.1:2376"},
     "high_watermark needs the filesystem under Docker's root dir"),
    (ImageRemoveJob, {"name": ["lab/app:1"], "tag": "a b"}, "tag 'a b' is not a tag"),
    (PruneJob, {"images": True, "lock_timeout": -1}, "lock_timeout must be 0 or more"),
])
def test_bad_options_are_refused_before_the_engine_is_contacted(monkeypatch, tmp_path, job, args, message):
    monkeypatch.setattr(_runner, "connect", Unreachable())
    result = run(job, None, args, tmp_path)
    assert result["failed"] is True and result["msg"].startswith(message), result["msg"]


def test_check_mode_predicts_the_real_run_and_changes_nothing(tmp_path):
    args = {"containers": True, "images": True, "images_filters": {"dangling": False}}
    checked = StubEngine(host())
    predicted = run(PruneJob, checked, args, tmp_path, check=True)
    assert not [c for c in checked.calls if c[0] != "GET"]
    engine = StubEngine(host())
    real = run(PruneJob, engine, args, tmp_path)
    for key in ("images", "containers", "untagged", "reclaimed_bytes", "images_space_reclaimed", "skipped_items",
                "plan", "changed"):
        assert predicted[key] == real[key], key
    assert [{k: v for k, v in a.items() if k not in ("status", "engine_response")} for a in real["actions"]] == \
        predicted["actions"]
    assert sorted(real["images"]) == sorted([hid("d1"), hid("d2"), hid("app"), hid("used")])
    assert real["plan"]["engine_id"] == ENGINE_ID and real["check_mode"] is False and predicted["check_mode"] is True
    assert [c for c in engine.calls if c[0] == "DELETE"]


def test_a_real_run_holds_the_engine_lock_and_check_mode_takes_none(tmp_path):
    (tmp_path / "locks").mkdir(mode=0o700)
    held = EngineLock(str(tmp_path / "locks"), ENGINE_ID, engine_label=ENGINE_ID)
    held.acquire(0)
    blocked = run(PruneJob, StubEngine(host()), {"images": True, "lock_timeout": 0}, tmp_path)
    assert blocked["failed"] is True and "holds the lock of engine" in blocked["msg"]
    assert run(PruneJob, StubEngine(host()), {"images": True, "lock_timeout": 0}, tmp_path, check=True)["changed"]
    held.release()
    assert run(PruneJob, StubEngine(host()), {"images": True}, tmp_path)["changed"] is True
    # The lock file holds no run now: released at the end.
    with open(os.path.join(tmp_path, "locks", lock_file_name(ENGINE_ID)), encoding="utf-8") as handle:
        assert not handle.read().strip() or json.loads(handle.read() or "{}") == {}


def test_a_plan_approved_on_another_engine_is_refused_before_the_snapshot(tmp_path):
    engine = StubEngine(host())
    result = run(PruneJob, engine, {"images": True, "approved": [hid("d1")], "approved_engine_id": "OTHER"}, tmp_path)
    assert result["failed"] is True and "a plan applies only to the engine it was made on" in result["msg"]
    assert ("GET", "/images/json") not in engine.calls


def test_an_approved_plan_removes_only_what_it_approves(tmp_path):
    result = run(PruneJob, StubEngine(host()), {"images": True, "approved": [hid("d1")], "approved_engine_id": ENGINE_ID},
                 tmp_path)
    assert result["images"] == [hid("d1")]
    assert [n["id"] for n in result["not_approved"]] == [hid("d2")]


def test_a_race_is_a_reported_skip_for_prune_and_a_failure_for_image_remove(tmp_path):
    refused = {hid("d2"): (409, "conflict: unable to delete (must be forced) - image is being used by container c")}
    pruned = run(PruneJob, StubEngine(host(), refuse=refused), {"images": True}, tmp_path)
    assert pruned.get("failed") is not True and pruned["images"] == [hid("d1")]
    assert [(s["id"], s["reason"].split(":")[0]) for s in pruned["skipped_items"]] == [
        (hid("d2"), "changed since the run read the engine")]
    refused = {"lab/app:1": (409, "conflict: image is in use")}
    removed = run(ImageRemoveJob, StubEngine(host(), refuse=refused), {"name": ["lab/app:1"]}, tmp_path)
    assert removed["failed"] is True and "lab/app:1: conflict: image is in use" in removed["msg"]
    gone = {"lab/app:1": (404, "No such image: lab/app:1")}
    assert run(ImageRemoveJob, StubEngine(host(), refuse=gone), {"name": ["lab/app:1"]}, tmp_path).get("failed") \
        is not True


def test_a_call_without_an_answer_is_unknown_and_fails_the_task_with_its_bytes_apart(tmp_path):
    engine = StubEngine(host(), silent={hid("d2")})
    result = run(PruneJob, engine, {"images": True}, tmp_path)
    statuses = {a["image"]: a["status"] for a in result["actions"]}
    assert statuses[hid("d1")] == "done" and statuses[hid("d2")] == "unknown"
    assert result["failed"] is True and result["unknown_bytes"] > 0 and result["changed"] is True
    assert "(status unknown)" in result["msg"] and "a rerun reads the engine afresh" in result["msg"]


def test_a_job_that_only_reads_plans_nothing_and_changes_nothing(tmp_path):
    engine = StubEngine(host())
    result = run(DiskUsageJob, engine, {}, tmp_path)
    assert result["changed"] is False and result["engine"]["id"] == ENGINE_ID
    assert result["disk_usage"]["images"]["count"] == 4 and "actions" not in result
    assert all(method == "GET" for method, _path in engine.calls)


# ---------------------------------------------------------------- finish: what a stopped apply says

IMAGE = "sha256:" + "a" * 64


def delete(reference="lab/a:1"):
    return dict(action="delete_image", reference=reference, image=IMAGE, force=False, bytes=100, untags=[reference])


class Exited(Exception):
    def __init__(self, failed, result):
        super().__init__(result.get("msg"))
        self.failed, self.result = failed, result


def finish(actions):
    """The runner's finish on ACTIONS of a prune: (failed, result)."""
    def exit_with(failed):
        def exit_json(**result):
            raise Exited(failed, result)
        return exit_json
    module = mock.Mock(check_mode=False)
    module.fail_json.side_effect = exit_with(True)
    module.exit_json.side_effect = exit_with(False)
    runner = _runner._Runner(module, PruneJob, None)  # pylint: disable=protected-access
    run_state = _runner.Run(module, None, None, actions, None)
    with pytest.raises(Exited) as exited:
        runner._finish(PruneJob, run_state, {}, [], None)  # pylint: disable=protected-access
    return exited.value.failed, exited.value.result


def test_an_unknown_action_fails_the_task_naming_it_with_its_bytes_apart():
    actions = [dict(delete("lab/a:1"), status="done", bytes=100),
               dict(delete("lab/b:1"), status="unknown", bytes=50,
                    engine_reason="no answer from the engine: timed out; it was still there when checked afterwards"),
               dict(delete("lab/c:1"), status="not_run", bytes=0, engine_reason="not attempted")]
    failed, result = finish(actions)
    assert failed and result["changed"] is True
    assert result["reclaimed_bytes"] == 100 and result["unknown_bytes"] == 50
    assert result["msg"].startswith("Could not prune (1 of 3 actions took effect, freeing 100 bytes; 1 got no answer "
                                    "and may still take effect, freeing up to 50 bytes more (status unknown, "
                                    "unknown_bytes): see actions; a rerun reads the engine afresh, which settles them")
    assert "lab/b:1 (status unknown): no answer from the engine" in result["msg"]
    assert "1 more action(s) not started" in result["msg"]


def test_unknown_alone_may_have_changed_the_engine():
    failed, result = finish([dict(delete(), status="unknown", bytes=100, engine_reason="no answer")])
    assert failed and result["changed"] is True and result["reclaimed_bytes"] == 0 and result["unknown_bytes"] == 100


def test_a_run_that_answered_everything_has_no_unknown_bytes():
    failed, result = finish([dict(delete(), status="done", bytes=100)])
    assert not failed and result["unknown_bytes"] == 0 and result["reclaimed_bytes"] == 100
    check_failed, predicted = finish([delete()])  # check mode: the plan's actions, no status
    assert not check_failed and predicted["unknown_bytes"] == 0 and predicted["reclaimed_bytes"] == 100
