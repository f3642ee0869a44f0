"""reclaim.docker.image_remove through Ansible, on real engines of every flavour.

Each scenario runs as community.docker's targets do: check mode with diff, the real run, then again,
and the engine's own accounting (LayersSize of /system/df, containers' SizeRw) is the judge of the bytes.
"""

from __future__ import annotations

import time

import docker
import pytest

from harness import scenario

MODULE = "reclaim.docker.image_remove"
# containerd collects a removed platform's files about 2 s after the call (LayersSize drops at once; measured).
PLATFORM_COLLECTED = 3
LAYERS = {"S": 3_000_000, "X": 2_500_000, "k1own": 1_500_000, "d1own": 2_000_000, "d4own": 500_000, "own": 700_000}


def api(engine):
    return docker.APIClient(base_url=engine.docker_host, version="auto")


def containerd(engine):
    return engine.flavour == "28.5-containerd"


def exists(engine, reference):
    try:
        api(engine).inspect_image(reference)
        return True
    except docker.errors.NotFound:
        return False


def check_then_real(ansible, engine, args):
    """Check mode with diff, then the real run: the same outcome, failures included, the same actions, and bytes
    priced from the whole layer graph (content blobs included on the containerd store)."""
    predicted, real = ansible.check_then_real(MODULE, args, engine, diff=True, may_fail=True, same=(
        "changed", "untagged", "deleted", "removed_containers", "reclaimed_bytes", "failed", "diff", "exact"))
    assert [a["action"] for a in predicted["actions"]] == [a["action"] for a in real["actions"]]
    assert real["exact"] is True, real.get("inexact_reason")
    return predicted, real


def assert_idempotent(ansible, engine, args):
    again = ansible.module(MODULE, args, engine)
    assert again["changed"] is False and again["reclaimed_bytes"] == 0, again


def test_tag_of_multi_tag_image_only_untags(ansible, engine, prefix):
    built = scenario.build(engine.docker_host, {"layers": LAYERS, "images": [
        {"name": "multi", "tags": ["lab/multi:1", "lab/multi:2"], "layers": ["own"]}]}, prefix=prefix)
    size_before = scenario.layers_size(engine.docker_host)
    args = {"name": [f"{prefix}/lab/multi:1"]}
    predicted, real = check_then_real(ansible, engine, args)
    assert real["changed"] is True
    assert real["untagged"] == [f"{prefix}/lab/multi:1"] and real["deleted"] == []
    assert real["reclaimed_bytes"] == 0
    assert exists(engine, built.images["multi"]["id"]) and exists(engine, f"{prefix}/lab/multi:2")
    assert scenario.layers_size(engine.docker_host) == size_before
    # docker_image_remove's diff of the named image (the containerd store also lists repo@digest for every tagged
    # image, in digests), and the same in images.
    before, after = predicted["diff"]["before"], predicted["diff"]["after"]
    assert before["id"] == built.images["multi"]["id"] and before["exists"] is True
    assert before["tags"] == sorted(built.images["multi"]["tags"])
    assert after["tags"] == [f"{prefix}/lab/multi:2"] and after["digests"] == before["digests"]
    assert [{k: v for k, v in before.items() if k != "images"}] == before["images"]
    assert_idempotent(ansible, engine, args)


def test_last_tag_deletes_and_frees_exact_bytes(ansible, engine, prefix):
    built = scenario.build(engine.docker_host, {"layers": LAYERS, "images": [
        {"name": "k1", "tags": ["lab/k1:1"], "layers": ["S", "k1own"]},
        {"name": "d1", "tags": ["lab/d1:1"], "layers": ["S", "d1own"]},
        {"name": "d3", "tags": ["lab/d3:1"], "layers": ["X"]},
        {"name": "d4", "tags": ["lab/d4:1"], "layers": ["X", "d4own"]},
    ]}, prefix=prefix)
    size_before = scenario.layers_size(engine.docker_host)
    args = {"name": [f"{prefix}/lab/d1:1", f"{prefix}/lab/d3:1", f"{prefix}/lab/d4:1"]}
    _predicted, real = check_then_real(ansible, engine, args)
    assert sorted(real["deleted"]) == sorted(built.images[n]["id"] for n in ("d1", "d3", "d4"))
    drop = size_before - scenario.layers_size(engine.docker_host)
    assert drop == real["reclaimed_bytes"]
    if not containerd(engine):
        # S stays with k1; X, shared only by deleted images, is freed once; never a sum of image Sizes.
        assert real["reclaimed_bytes"] == LAYERS["d1own"] + LAYERS["X"] + LAYERS["d4own"]
    assert exists(engine, built.images["k1"]["id"])
    assert_idempotent(ansible, engine, args)


@pytest.mark.parametrize("prune", [True, False])
def test_last_tag_of_a_classic_build_prunes_its_untagged_parents(ansible, engine, prefix, prune):
    """The legacy builder leaves one untagged parent image per step; `docker rmi` deletes them with the image
    unless --no-prune. A parent that another image builds on stays."""
    files = {"a": 300_000, "b": 200_000, "c": 100_000}
    built = scenario.build(engine.docker_host, {"classic_builds": [
        {"name": "app", "tags": ["lab/app:1"], "files": files},
        # The same first steps hit the build cache: "kin" is a second child of app's parent for a and b.
        {"name": "kin", "tags": ["lab/kin:1"], "files": {"a": 300_000, "b": 200_000}}]}, prefix=prefix)
    app, kin = built.classic_builds["app"], built.classic_builds["kin"]
    assert len(app["parents"]) == 2 and kin["id"] == app["parents"][0], "the build cache was not shared"
    size_before = scenario.layers_size(engine.docker_host)
    args = {"name": [f"{prefix}/lab/app:1"], "prune": prune}
    _predicted, real = check_then_real(ansible, engine, args)
    assert real["deleted"] == [app["id"]]  # its parent is kin itself, tagged: never pruned
    assert exists(engine, kin["id"]) and exists(engine, app["parents"][1])
    assert real["reclaimed_bytes"] == size_before - scenario.layers_size(engine.docker_host)
    if not containerd(engine):
        assert real["reclaimed_bytes"] == files["c"]
    assert_idempotent(ansible, engine, args)

    size_before = scenario.layers_size(engine.docker_host)
    args = {"name": [f"{prefix}/lab/kin:1"], "prune": prune}
    _predicted, real = check_then_real(ansible, engine, args)
    parent = app["parents"][1]
    assert real["deleted"] == sorted([kin["id"], parent] if prune else [kin["id"]])
    assert exists(engine, parent) is not prune
    assert size_before - scenario.layers_size(engine.docker_host) == real["reclaimed_bytes"]
    if not containerd(engine):
        assert real["reclaimed_bytes"] == (300_000 + 200_000 if prune else 200_000)
    assert_idempotent(ansible, engine, args)


def test_id_with_several_tags_needs_force(ansible, engine, prefix):
    built = scenario.build(engine.docker_host, {"layers": LAYERS, "images": [
        {"name": "multi", "tags": ["lab/a:1", "lab/b:1"], "layers": ["own"]}]}, prefix=prefix)
    image_id = built.images["multi"]["id"]
    before = scenario.fingerprint(engine.docker_host)
    refused = ansible.module(MODULE, {"name": [image_id[7:19]]}, engine)
    assert refused["failed"] is True
    assert f"{prefix}/lab/a:1" in refused["msg"] and f"{prefix}/lab/b:1" in refused["msg"] and "force" in refused["msg"]
    assert scenario.fingerprint(engine.docker_host) == before
    args = {"name": [image_id], "force": True}
    _predicted, real = check_then_real(ansible, engine, args)
    assert [r for r in real["untagged"] if "@" not in r] == sorted(built.images["multi"]["tags"])
    assert real["deleted"] == [image_id]
    assert not exists(engine, image_id)
    assert_idempotent(ansible, engine, args)


@pytest.mark.parametrize("force", [False, True])
def test_image_of_running_container_is_never_removed(ansible, engine, prefix, force):
    built = scenario.build(engine.docker_host, {"layers": LAYERS, "images": [
        {"name": "run", "tags": ["lab/run:1"], "layers": ["own"]}],
        "containers": [{"name": "web", "image": "lab/run:1", "state": "running"}]}, prefix=prefix)
    before = scenario.fingerprint(engine.docker_host)
    for name in (f"{prefix}/lab/run:1", built.images["run"]["id"]):
        result = ansible.module(MODULE, {"name": [name], "force": force}, engine, check=True)
        real = ansible.module(MODULE, {"name": [name], "force": force}, engine)
        for outcome in (result, real):
            assert outcome["failed"] is True and outcome["changed"] is False
            container_id = built.containers["web"]
            assert f"{prefix}-web ({container_id[:12]}, running)" in outcome["msg"], outcome["msg"]
    assert scenario.fingerprint(engine.docker_host) == before


def test_image_of_stopped_container(ansible, engine, prefix):
    built = scenario.build(engine.docker_host, {"layers": LAYERS, "images": [
        # Holds the base layer whatever else the engine holds; loaded first, since on the containerd store the image
        # unpacked first keeps a shared snapshot (see docs/engine-notes.md).
        {"name": "keep", "tags": ["lab/keep:1"]},
        {"name": "old", "tags": ["lab/old:1"], "layers": ["d1own"]},
        {"name": "forced", "tags": ["lab/forced:1"], "layers": ["d4own"]}],
        "containers": [{"name": "batch", "image": "lab/old:1", "state": "exited", "writable_bytes": 300_000},
                       {"name": "job", "image": "lab/forced:1", "state": "exited", "writable_bytes": 100_000,
                        "labels": {"reclaim.test": prefix}}]},
        prefix=prefix)
    before = scenario.fingerprint(engine.docker_host)
    refused = ansible.module(MODULE, {"name": [f"{prefix}/lab/old:1"]}, engine)
    assert refused["failed"] is True and "remove_stopped_containers" in refused["msg"]
    assert f"{prefix}-batch ({built.containers['batch'][:12]}, exited)" in refused["msg"]
    assert scenario.fingerprint(engine.docker_host) == before

    size_rw = {c["Id"]: c.get("SizeRw", 0) for c in scenario.system_df(engine.docker_host)["Containers"]}
    size_before = scenario.layers_size(engine.docker_host)
    args = {"name": [f"{prefix}/lab/old:1"], "remove_stopped_containers": True}
    _predicted, real = check_then_real(ansible, engine, args)
    assert real["removed_containers"] == [built.containers["batch"]]
    assert real["deleted"] == [built.images["old"]["id"]]
    assert [a["action"] for a in real["actions"]] == ["remove_container", "delete_image"]
    writable = size_rw[built.containers["batch"]]
    assert writable >= 300_000
    drop = size_before - scenario.layers_size(engine.docker_host)
    if containerd(engine):
        # LayersSize counts a container's snapshots there: its writable one (SizeRw) and its init one.
        assert real["reclaimed_bytes"] == drop and real["actions"][0]["bytes"] > writable
    else:
        assert real["reclaimed_bytes"] == LAYERS["d1own"] + writable
        assert drop == LAYERS["d1own"]
    assert_idempotent(ansible, engine, args)

    # force alone: what docker rmi -f does, reported honestly.
    args = {"name": [f"{prefix}/lab/forced:1"], "force": True}
    size_before = scenario.layers_size(engine.docker_host)
    held = api(engine).inspect_image(f"{prefix}/lab/forced:1")
    _predicted, real = check_then_real(ansible, engine, args)
    # Its last tag goes, and with it every reference (the containerd store's repo@digest too).
    assert real["reclaimed_bytes"] == 0 and real["untagged"] == sorted(held["RepoTags"] + held["RepoDigests"])
    assert f"{prefix}/lab/forced:1" in real["untagged"]
    if containerd(engine):
        # The record stays there, dangling. On overlay2 it goes and LayersSize stops counting the layer the container
        # still holds on disk: LayersSize is no judge of that removal.
        assert scenario.layers_size(engine.docker_host) == size_before
    assert real["orphaned"][0]["image"] == built.images["forced"]["id"]
    assert real["orphaned"][0]["containers"] == [built.containers["job"]]
    if not containerd(engine):
        assert real["orphaned"][0]["bytes"] == LAYERS["d4own"]
    assert any("no space was freed" in w for w in real.get("warnings", []))
    assert api(engine).inspect_container(built.containers["job"])["Image"] == built.images["forced"]["id"]
    if not containerd(engine):
        return
    # The containerd store keeps the record, dangling: by ID, force deletes it and frees its content (the container
    # keeps the snapshots); removing the container then frees those, known from the layer cache since the record is
    # gone.
    args = {"name": [built.images["forced"]["id"]], "force": True}
    size_before = scenario.layers_size(engine.docker_host)
    _predicted, real = check_then_real(ansible, engine, args)
    assert real["deleted"] == [built.images["forced"]["id"]] and real["reclaimed_bytes"] > 0
    assert real["reclaimed_bytes"] == size_before - scenario.layers_size(engine.docker_host)
    prune = {"containers": True, "containers_filters": {"label": f"reclaim.test={prefix}"}}
    size_before = scenario.layers_size(engine.docker_host)
    _predicted, real = ansible.check_then_real("reclaim.docker.prune", prune, engine, same=(
        "containers", "reclaimed_bytes", "exact"))
    assert real["containers"] == [built.containers["job"]] and real["exact"] is True, real.get("inexact_reason")
    assert real["reclaimed_bytes"] == size_before - scenario.layers_size(engine.docker_host)


def test_missing_image_is_ok(ansible, engine, prefix):
    result = ansible.module(MODULE, {"name": [f"{prefix}/nothing:here", "abcdef123456"]}, engine)
    assert result["changed"] is False and result.get("failed") is not True
    assert result["not_found"] == [f"{prefix}/nothing:here", "abcdef123456"]


def test_several_names_do_what_they_can_then_fail(ansible, engine, prefix):
    built = scenario.build(engine.docker_host, {"layers": LAYERS, "images": [
        {"name": "free", "tags": ["lab/free:1"], "layers": ["own"]},
        {"name": "busy", "tags": ["lab/busy:1"], "layers": ["d4own"]}],
        "containers": [{"name": "svc", "image": "lab/busy:1", "state": "running"}]}, prefix=prefix)
    result = ansible.module(MODULE, {"name": [f"{prefix}/lab/busy:1", f"{prefix}/lab/free:1"]}, engine)
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"].startswith("Could not remove: ") and f"{prefix}/lab/busy:1" in result["msg"]
    assert result["deleted"] == [built.images["free"]["id"]]
    assert not exists(engine, built.images["free"]["id"]) and exists(engine, built.images["busy"]["id"])


def test_platform(ansible, engine, prefix):
    if not containerd(engine):
        scenario.build(engine.docker_host, {"layers": LAYERS, "images": [
            {"name": "one", "tags": ["lab/one:1"], "layers": ["own"]}]}, prefix=prefix)
        before = scenario.fingerprint(engine.docker_host)
        result = ansible.module(MODULE, {"name": [f"{prefix}/lab/one:1"], "platform": "linux/arm64"}, engine)
        assert result["failed"] is True and "Nothing was changed" in result["msg"]
        assert ("containerd image store" in result["msg"]) if engine.flavour == "28.5" else ("API 1.50" in result["msg"])
        assert scenario.fingerprint(engine.docker_host) == before
        return
    # mp-amd64's index lists exactly mp's amd64 manifest; mp's arm/v7 was pulled in part (its manifest only), and
    # its s390x not at all.
    built = scenario.build(engine.docker_host, {"multiplatform": [
        {"name": "mp", "tag": "lab/mp:1", "platforms": ["linux/amd64", "linux/arm64", "linux/arm", "linux/s390x"],
         "manifest_only": ["linux/arm"], "missing": ["linux/s390x"]},
        {"name": "mp", "tag": "lab/mp-amd64:1", "platforms": ["linux/amd64"]}]}, prefix=prefix)
    reference = f"{prefix}/lab/mp:1"
    for platform, force in (("linux/arm64", False), ("linux/arm", False), ("linux/amd64", True)):
        args = {"name": [reference], "platform": platform, "force": force}
        size_before = scenario.layers_size(engine.docker_host)
        _predicted, real = check_then_real(ansible, engine, args)
        assert [a["action"] for a in real["actions"]] == ["delete_platform"] and real["reclaimed_bytes"] > 0
        time.sleep(PLATFORM_COLLECTED)
        assert real["reclaimed_bytes"] == size_before - scenario.layers_size(engine.docker_host), platform
        assert_idempotent(ansible, engine, args)
    client = api(engine)
    response = client._get(client._url("/images/{0}/json", reference), params={"manifests": 1})
    manifests = client._result(response, json=True)["Manifests"]
    available = {m["Descriptor"]["platform"]["architecture"]: m["Available"] for m in manifests if m["Kind"] == "image"}
    assert available == {"amd64": False, "arm64": False, "arm": False, "s390x": False}, built
    absent = ansible.module(MODULE, {"name": [reference], "platform": "linux/s390x"}, engine)
    assert absent["changed"] is False and absent["not_found"] == [f"{reference} (linux/s390x)"]
    # What is left of both images: their indexes.
    args = {"name": [reference, f"{prefix}/lab/mp-amd64:1"]}
    size_before = scenario.layers_size(engine.docker_host)
    _predicted, real = check_then_real(ansible, engine, args)
    assert len(real["deleted"]) == 2 and real["reclaimed_bytes"] == size_before - scenario.layers_size(engine.docker_host)
