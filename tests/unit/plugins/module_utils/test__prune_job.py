"""prune's job: the request its options make (checked before the engine is contacted), and its result through the real
runner on a stub engine, with community.docker.docker_prune's keys."""

from __future__ import annotations

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from snapshot_helpers import NOW, hid, make_snapshot
from stub_engine import DOCKER_HOST, StubEngine, run

from ansible_collections.reclaim.docker.plugins.module_utils._prune_job import PruneJob
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem

# Two dangling images, one unused tagged image with two tags, one image of a stopped container.
HOST = [("d1", [], ["base", "d1"], None), ("d2", [], ["base", "d2"], None),
        ("app", ["lab/app:1", "lab/app:2"], ["base", "a"], None), ("used", ["lab/used:1"], ["u"], None)]
STOPPED = [("job", "used", "exited", 40)]


def host():
    return make_snapshot(HOST, STOPPED)


def job(check_mode=False, **args):
    validated = ArgumentSpecValidator(PruneJob.argument_spec().argument_spec).validate(
        dict(args, docker_host=DOCKER_HOST)).validated_parameters
    return PruneJob(validated, check_mode, NOW)


@pytest.mark.parametrize("args, message", [
    (dict(builder_cache=True, builder_cache_keep_storage="1GB", approved=["r1"]),
     "builder_cache_keep_storage cannot be used with approved"),
    (dict(builder_cache=True, builder_cache_filters={"id": "r2"}, approved=["r1"]),
     "builder_cache_filters.id cannot be used with approved"),
    (dict(images=True, assume_deleted=[hid("a")[:-1]]), "assume_deleted takes full image IDs"),
    (dict(builder_cache=True, builder_cache_keep_storage="lots"), "builder_cache_keep_storage"),
])
def test_options_that_cannot_work_are_refused(args, message):
    with pytest.raises(ValueProblem, match=message):
        job(**args)


def test_an_approved_plan_is_refused_only_where_buildkit_would_choose():
    assert job(builder_cache=False, builder_cache_keep_storage="1GB", approved=["r1"]).approval.restricts
    assert job(builder_cache=True, builder_cache_keep_storage="1GB").request.keep_storage == 2 ** 30


def test_the_switched_off_types_options_are_ignored_with_a_warning():
    configured = job(images=False, images_filters={"reference": "x"}, builder_cache_all=True, networks=True)
    assert configured.request.types == ["networks"]
    assert [w.split(" is ignored")[0] for w in configured.warnings] == ["images_filters", "builder_cache_all"]
    assert job(images=True, images_filters={"dangling": False}).warnings == []


def test_the_build_cache_is_pruned_up_to_the_stricter_of_until_and_min_age():
    assert job(builder_cache=True).request.build_cache_until is None
    assert job(builder_cache=True, min_age="48h").request.build_cache_until == NOW - 48 * 3600
    stricter_until = job(builder_cache=True, min_age="1h", builder_cache_filters={"until": "24h"})
    assert stricter_until.request.build_cache_until == NOW - 24 * 3600
    stricter_min_age = job(builder_cache=True, min_age="72h", builder_cache_filters={"until": "24h"})
    assert stricter_min_age.request.build_cache_until == NOW - 72 * 3600


def test_only_a_check_run_assumes_images_deleted():
    deleted = [hid("d1")]
    assert list(job(check_mode=True, images=True, assume_deleted=deleted).request.assume_deleted) == deleted
    assert not job(images=True, assume_deleted=deleted).request.assume_deleted


def test_the_result_has_docker_prunes_keys_of_what_took_effect(tmp_path):
    result = run(PruneJob, StubEngine(host()), {"containers": True, "images": True,
                                                "images_filters": {"dangling": False}}, tmp_path)
    assert result["containers"] == [c.id for c in host().containers.values()]
    assert result["containers_space_reclaimed"] == 40
    assert sorted(result["images"]) == sorted(hid(n) for n in ("d1", "d2", "app", "used"))
    assert result["untagged"] == ["lab/app:1", "lab/app:2", "lab/used:1"]
    assert result["images_space_reclaimed"] == 5000 and result["reclaimed_bytes"] == 5040
    assert (result["networks"], result["volumes"], result["builder_cache_space_reclaimed"]) == ([], [], 0)
    assert "builder_cache_prediction" not in result and "usage_before" not in result
    assert result["check_mode"] is False and result["skipped_items"] == []


def test_a_race_leaves_the_image_out_of_what_took_effect(tmp_path):
    refused = {"lab/app:2": (409, "conflict: image is being used by container c")}
    result = run(PruneJob, StubEngine(host(), refuse=refused), {"images": True, "images_filters": {"dangling": False}},
                 tmp_path)
    # The dangling images went; of the tagged one, only the untag before the refused deletion took effect.
    assert sorted(result["images"]) == sorted([hid("d1"), hid("d2")]) and result["untagged"] == ["lab/app:1"]
    assert result["images_space_reclaimed"] == 2000
    assert {s["id"]: s["reason"].split(" ")[0] for s in result["skipped_items"]} == {hid("used"): "in",
                                                                                     hid("app"): "changed"}


def test_a_build_cache_prune_that_removes_nothing_predicted_nothing_and_changes_nothing(tmp_path):
    result = run(PruneJob, StubEngine(host()), {"builder_cache": True}, tmp_path)
    assert result["builder_cache_prediction"] == dict(bytes=0, records=0, exact=True)
    assert result["builder_cache_caches_deleted"] == [] and result["changed"] is False


def test_a_prune_with_usage_reads_it_before_and_predicts_it_after(tmp_path):
    result = run(PruneJob, StubEngine(host()), {"images": True, "usage": True}, tmp_path, check=True)
    before, after = result["usage_before"], result["usage_after"]
    assert before["images_bytes"] == sum(host().layer_sizes.values())
    assert after["images_bytes"] == before["images_bytes"] - result["images_space_reclaimed"] < before["images_bytes"]
    assert after["filesystem"]["free"] - before["filesystem"]["free"] == result["reclaimed_bytes"]
