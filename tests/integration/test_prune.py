"""reclaim.docker.prune through Ansible, on real engines of every flavour: check mode, real run, again.

Each test labels its objects `reclaim.test=<prefix>` and selects with that label where it can, since engines are
shared by the tests of a session; the engine's own LayersSize is the judge of the bytes.
"""

from __future__ import annotations

import datetime
import json
import os
import time

import docker
import pytest

from harness import scenario

MODULE = "reclaim.docker.prune"
OLD = "2020-01-01T00:00:00Z"
# Longer than a check run, a real run and one more take on a busy host, so that a container stopped just before them
# stays younger than it throughout.
STOPPED_FOR_SECONDS = 20
# The same for a volume used just before them (volumes_filters.unused_for).
UNUSED_FOR_SECONDS = 20
ANONYMOUS_VOLUME_LABEL = "com.docker.volume.anonymous"


def api(engine):
    return docker.APIClient(base_url=engine.docker_host, version="auto")


def overlay2(engine):
    return engine.flavour != "28.5-containerd"


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def mine(prefix, **labels):
    return {"reclaim.test": prefix, **labels}


def check_then_real(ansible, engine, args):
    predicted, real = ansible.check_then_real(MODULE, args, engine, same=(
        "changed", "containers", "containers_space_reclaimed", "images", "untagged", "images_space_reclaimed",
        "networks", "volumes", "volumes_space_reclaimed", "exact"))
    assert real["exact"] is True, real.get("inexact_reason")
    return predicted, real


def assert_idempotent(ansible, engine, args):
    again = ansible.module(MODULE, args, engine)
    assert again["changed"] is False and again["reclaimed_bytes"] == 0, again["actions"]


def test_dangling_images_exact_bytes(ansible, engine, prefix):
    built = scenario.build(engine.docker_host, {"layers": {"S": 1_000_000, "d1": 400_000, "d2": 300_000, "t": 200_000},
                                                "images": [
        {"name": "tagged", "tags": ["lab/t:1"], "layers": ["S", "t"], "labels": mine(prefix)},
        {"name": "dang1", "tags": [], "layers": ["S", "d1"], "labels": mine(prefix)},
        {"name": "dang2", "tags": [], "layers": ["d2"], "labels": mine(prefix)},
    ]}, prefix=prefix)
    args = {"images": True, "images_filters": {"label": f"reclaim.test={prefix}"}}
    size_before = scenario.layers_size(engine.docker_host)
    _predicted, real = check_then_real(ansible, engine, args)
    assert sorted(real["images"]) == sorted(built.images[n]["id"] for n in ("dang1", "dang2"))
    assert size_before - scenario.layers_size(engine.docker_host) == real["images_space_reclaimed"]
    if overlay2(engine):
        # S stays with the tagged image: only d1 and d2 go.
        assert real["images_space_reclaimed"] == 400_000 + 300_000
    assert_idempotent(ansible, engine, args)


def test_untagged_parents_go_with_their_last_child(ansible, engine, prefix):
    """A legacy-built image's untagged parents are not candidates themselves (they have children); they go with
    the image, children first, as the engine's own prune does."""
    files = {"a": 300_000, "b": 200_000, "c": 100_000}
    built = scenario.build(engine.docker_host, {"classic_builds": [
        {"name": "app", "tags": ["lab/app:1"], "files": files, "labels": mine(prefix)}]}, prefix=prefix)
    app = built.classic_builds["app"]
    args = {"images": True, "images_filters": {"dangling": False, "label": f"reclaim.test={prefix}"}}
    size_before = scenario.layers_size(engine.docker_host)
    _predicted, real = check_then_real(ansible, engine, args)
    assert [a["image"] for a in real["actions"] if a["action"] == "delete_image"] == [app["id"]] + app["parents"]
    assert sorted(real["images"]) == sorted([app["id"]] + app["parents"])
    assert real["images_space_reclaimed"] == size_before - scenario.layers_size(engine.docker_host)
    if overlay2(engine):
        assert real["images_space_reclaimed"] == sum(files.values())
    assert_idempotent(ansible, engine, args)


def test_a_check_mode_chain_predicts_the_real_run(ansible, engine, prefix):
    """An audit of "remove x, then prune dangling" is two check-mode tasks; the prune is told what the first
    deletes (assume_deleted), so the layer the two images share is predicted where the real run frees it."""
    sizes = {"L": 600_000, "x": 200_000, "d": 100_000}
    built = scenario.build(engine.docker_host, {"layers": sizes, "images": [
        {"name": "x", "tags": ["lab/x:1"], "layers": ["L", "x"], "labels": mine(prefix), "base": False},
        {"name": "d", "tags": [], "layers": ["L", "d"], "labels": mine(prefix), "base": False}]}, prefix=prefix)
    remove = {"name": [f"{prefix}/lab/x:1"]}
    prune = {"images": True, "images_filters": {"label": f"reclaim.test={prefix}"}}
    removal = ansible.module("reclaim.docker.image_remove", remove, engine, check=True)
    assert removal["deleted"] == [built.images["x"]["id"]]
    blind = ansible.module(MODULE, prune, engine, check=True)
    told = ansible.module(MODULE, dict(prune, assume_deleted=removal["deleted"]), engine, check=True)
    real_removal = ansible.module("reclaim.docker.image_remove", remove, engine)
    size_before = scenario.layers_size(engine.docker_host)
    real = ansible.module(MODULE, dict(prune, assume_deleted=removal["deleted"]), engine)
    assert told["images"] == real["images"] == [built.images["d"]["id"]]
    assert told["images_space_reclaimed"] == real["images_space_reclaimed"]
    assert removal["reclaimed_bytes"] == real_removal["reclaimed_bytes"]
    assert blind["images_space_reclaimed"] < real["images_space_reclaimed"]  # L looked held by x
    assert real["images_space_reclaimed"] == size_before - scenario.layers_size(engine.docker_host)
    if overlay2(engine):
        assert removal["reclaimed_bytes"] == sizes["x"]
        assert blind["images_space_reclaimed"] == sizes["d"]
        assert real["images_space_reclaimed"] == sizes["d"] + sizes["L"]
    refused = ansible.module(MODULE, dict(prune, assume_deleted=["lab/x:1"]), engine, check=True)
    assert refused["failed"] is True and refused["msg"].startswith("assume_deleted takes full image IDs")


def test_label_negations_all_hold_and_until_uses_creation_time(ansible, engine, prefix):
    fresh = now_iso()
    built = scenario.build(engine.docker_host, {"images": [
        {"name": "plain", "tags": ["lab/plain:1"], "layers": ["p"], "created": OLD, "labels": mine(prefix)},
        {"name": "keep", "tags": ["lab/keep:1"], "layers": ["k"], "created": OLD, "labels": mine(prefix, keep="yes")},
        {"name": "prod", "tags": ["lab/prod:1"], "layers": ["q"], "created": OLD, "labels": mine(prefix, tier="prod")},
        {"name": "dev", "tags": ["lab/dev:1", "lab/dev:2"], "layers": ["v"], "created": OLD,
         "labels": mine(prefix, tier="dev")},
        {"name": "fresh", "tags": ["lab/fresh:1"], "layers": ["f"], "created": fresh, "labels": mine(prefix)},
        {"name": "used", "tags": ["lab/used:1"], "layers": ["u"], "created": OLD, "labels": mine(prefix)},
        {"name": "guarded", "tags": ["lab/guarded:1"], "layers": ["g"], "created": OLD, "labels": mine(prefix)},
    ], "containers": [{"name": "c", "image": "lab/used:1", "state": "exited"}]}, prefix=prefix)
    args = {"images": True, "images_filters": {"dangling": False, "until": "720h", "label": [f"reclaim.test={prefix}"],
                                               "label!": ["keep", "tier=prod"]},
            "protect": {"references": [f"{prefix}/lab/guarded:*"]}}
    _predicted, real = check_then_real(ansible, engine, args)
    ids = {name: image["id"] for name, image in built.images.items()}
    # Both negations hold for plain and dev only; fresh is too new for until; used stays with its container.
    assert sorted(real["images"]) == sorted([ids["plain"], ids["dev"]])
    assert [u for u in real["untagged"] if "@" not in u] == sorted(
        [f"{prefix}/lab/plain:1", f"{prefix}/lab/dev:1", f"{prefix}/lab/dev:2"])
    skipped = {s["id"]: s["reason"] for s in real["skipped_items"]}
    assert skipped[ids["used"]].startswith(f"in use by container(s) {prefix}-c")
    assert skipped[ids["guarded"]].startswith(f"protected: {prefix}/lab/guarded:1")
    assert_idempotent(ansible, engine, args)


def test_engine_label_negation_bug_on_the_containerd_store(ansible, engine, prefix):
    """The containerd store's own prune treats label!=keep=true as 'has keep with another value' (engine-facts §2):
    unlabelled images survive it. Ours removes them."""
    if overlay2(engine):
        pytest.skip("the graphdriver engines evaluate a single label! correctly")
    spec = {"images": [{"name": "other", "tags": [], "layers": ["o"], "labels": mine(prefix, keep="no")},
                       {"name": "none", "tags": [], "layers": ["n"], "labels": mine(prefix)},
                       {"name": "kept", "tags": [], "layers": ["k"], "labels": mine(prefix, keep="true")}]}
    built = scenario.build(engine.docker_host, spec, prefix=prefix)
    engine_answer = api(engine).prune_images(filters={"label": [f"reclaim.test={prefix}"], "label!": ["keep=true"]})
    remaining = {i["Id"] for i in api(engine).images(all=True)}
    assert built.images["none"]["id"] in remaining, engine_answer  # the engine's bug, measured
    args = {"images": True, "images_filters": {"label": f"reclaim.test={prefix}", "label!": "keep=true"}}
    _predicted, real = check_then_real(ansible, engine, args)
    assert real["images"] == [built.images["none"]["id"]]
    assert built.images["kept"]["id"] in {i["Id"] for i in api(engine).images(all=True)}


def test_engines_get_two_label_negations_wrong_and_we_do_not(ansible, engine, prefix):
    """Two label! must both hold (the Docker documentation). Measured: 20.10 and 28.5 on overlay2 OR them (moby
    #40286: only an image with every negated label survives); the containerd store removed nothing at all."""
    def spec(owner):
        return {"images": [{"name": name, "tags": [], "layers": [name], "labels": mine(owner, **labels)} for name, labels in (
            ("keep", {"keep": "yes"}), ("prod", {"tier": "prod"}), ("both", {"keep": "yes", "tier": "prod"}),
            ("none", {}))]}
    negations = {"label!": ["keep", "tier=prod"]}
    theirs = scenario.build(engine.docker_host, spec(prefix + "e"), prefix=prefix + "e")
    api(engine).prune_images(filters={"label": [f"reclaim.test={prefix}e"], **negations})
    left = {i["Id"] for i in api(engine).images(all=True)}
    engine_removed = sorted(name for name, image in theirs.images.items() if image["id"] not in left)
    assert engine_removed == ([] if not overlay2(engine) else ["keep", "none", "prod"]), engine_removed
    ours = scenario.build(engine.docker_host, spec(prefix), prefix=prefix)
    args = {"images": True, "images_filters": {"label": f"reclaim.test={prefix}", **negations}}
    _predicted, real = check_then_real(ansible, engine, args)
    assert real["images"] == [ours.images["none"]["id"]]


def test_system_prune_frees_images_of_removed_containers(ansible, engine, prefix):
    built = scenario.build(engine.docker_host, {"layers": {"job": 600_000}, "images": [
        {"name": "job", "tags": ["lab/job:1"], "layers": ["job"], "labels": mine(prefix)},
        {"name": "svc", "tags": ["lab/svc:1"], "layers": ["svc"], "labels": mine(prefix)}],
        "containers": [
            {"name": "done", "image": "lab/job:1", "state": "exited", "writable_bytes": 100_000, "labels": mine(prefix)},
            {"name": "idle", "image": "lab/svc:1", "state": "exited", "labels": mine(prefix, keep="yes")},
            {"name": "web", "image": "lab/svc:1", "state": "running", "labels": mine(prefix)}],
        "networks": [{"name": "unused", "labels": mine(prefix)}, {"name": "attached", "labels": mine(prefix)}]},
        prefix=prefix)
    api(engine).connect_container_to_network(built.containers["idle"], built.networks["attached"])
    scoped = {"label": f"reclaim.test={prefix}"}
    args = {"containers": True, "containers_filters": dict(scoped, **{"label!": "keep"}),
            "images": True, "images_filters": dict(scoped, dangling=False), "networks": True, "networks_filters": scoped}
    size_rw = {c["Id"]: c.get("SizeRw", 0) for c in scenario.system_df(engine.docker_host)["Containers"]}
    size_before = scenario.layers_size(engine.docker_host)
    _predicted, real = check_then_real(ansible, engine, args)
    assert real["containers"] == [built.containers["done"]]
    assert real["images"] == [built.images["job"]["id"]]
    assert real["networks"] == [f"{prefix}-unused"]
    drop = size_before - scenario.layers_size(engine.docker_host)
    if overlay2(engine):
        assert real["containers_space_reclaimed"] == size_rw[built.containers["done"]]
        assert real["images_space_reclaimed"] == 600_000 == drop
    else:
        # LayersSize counts a container's snapshots there: its writable one (SizeRw) and its init one.
        assert real["containers_space_reclaimed"] > size_rw[built.containers["done"]]
        assert real["containers_space_reclaimed"] + real["images_space_reclaimed"] == drop
    reasons = {s["name"]: s["reason"] for s in real["skipped_items"]}
    assert reasons[f"{prefix}-attached"].startswith(f"in use by container(s) {prefix}-idle")
    assert [a["action"] for a in real["actions"]][:2] == ["remove_container", "untag"] or \
        [a["action"] for a in real["actions"]][:2] == ["remove_container", "delete_image"]
    assert_idempotent(ansible, engine, args)


def test_stopped_for_counts_from_when_a_container_stopped(ansible, engine, prefix):
    """until compares creation, as Docker's does; stopped_for compares when the container stopped (a container that
    never ran counts from its creation)."""
    built = scenario.build(engine.docker_host, {"images": [
        {"name": "job", "tags": ["lab/job:1"], "labels": mine(prefix)}]}, prefix=prefix)
    client = api(engine)

    def create(name):
        return client.create_container(built.images["job"]["id"], command=["true"], name=f"{prefix}-{name}",
                                       labels=mine(prefix))["Id"]

    def run(container_id):
        client.start(container_id)
        assert client.wait(container_id, timeout=60)["StatusCode"] == 0

    stopped_long_ago, never_ran, started_late = create("long"), create("never"), create("late")
    run(stopped_long_ago)
    time.sleep(STOPPED_FOR_SECONDS + 2)
    run(started_late)  # created with the others, stopped just now
    scoped = {"label": f"reclaim.test={prefix}"}
    args = {"containers": True, "containers_filters": dict(scoped, stopped_for=f"{STOPPED_FOR_SECONDS}s")}
    _predicted, real = check_then_real(ansible, engine, args)
    assert sorted(real["containers"]) == sorted([stopped_long_ago, never_ran])
    assert [c["Id"] for c in client.containers(all=True, filters={"label": f"reclaim.test={prefix}"})] == [started_late]
    assert_idempotent(ansible, engine, args)
    by_creation = ansible.module(MODULE, {"containers": True, "containers_filters": dict(scoped, until="2s")}, engine,
                                 check=True)
    assert by_creation["containers"] == [started_late]


def test_volumes_only_when_asked_twice(ansible, engine, prefix):
    # Writing into volumes needs an image to run the writer from.
    built = scenario.build(engine.docker_host, {"images": [{"name": "w", "tags": ["lab/w:1"], "layers": ["w"]}],
                                                "volumes": [{"anonymous": True, "bytes": 70_000},
                                                            {"name": "named", "bytes": 50_000, "labels": mine(prefix)}]},
                           prefix=prefix)
    anonymous = next(name for key, name in built.volumes.items() if key != "named")
    named = built.volumes["named"]
    plain = {"volumes": True}
    _predicted, real = check_then_real(ansible, engine, plain)
    assert anonymous in real["volumes"] and named not in real["volumes"]
    assert real["volumes_space_reclaimed"] >= 70_000
    both = {"volumes": True, "volumes_filters": {"all": True, "label": f"reclaim.test={prefix}"}}
    _predicted, real = check_then_real(ansible, engine, both)
    assert real["volumes"] == [named] and real["volumes_space_reclaimed"] >= 50_000
    # The second ask alone is not the first: without volumes: true no volume prune runs (the filters are ignored,
    # with a warning, as docker_prune ignores them).
    scenario.build(engine.docker_host, {"volumes": [{"name": "named2", "labels": mine(prefix)}]},
                   prefix=prefix)
    ignored = ansible.module(MODULE, {"volumes_filters": {"all": True}}, engine)
    assert ignored.get("failed") is not True and ignored["volumes"] == [] and ignored["changed"] is False
    assert any("volumes_filters is ignored: volumes is false" in w for w in ignored["warnings"])


def anonymous_volume(client, image, prefix, size):
    """An anonymous volume as the engine makes one (its label from API 1.42, 64 hex digits before), labelled for this
    test, with SIZE bytes that a helper container mounting it by name writes and is then removed (a use)."""
    labels = mine(prefix)
    if docker.utils.version_gte(client.version()["ApiVersion"], "1.42"):
        labels[ANONYMOUS_VOLUME_LABEL] = ""
    name = client.create_volume(os.urandom(32).hex(), labels=labels)["Name"]
    writer = client.create_container(image, command=["sh", "-c", f"/bin/busybox head -c {size} /dev/urandom > /v/data"],
                                     network_disabled=True, host_config=client.create_host_config(
                                         network_mode="none", binds=[f"{name}:/v"]))["Id"]
    client.start(writer)
    assert client.wait(writer, timeout=60)["StatusCode"] == 0
    client.remove_container(writer)
    return name


def run_with_rm(client, image, volume):
    """`docker run --rm -v VOLUME:/v IMAGE true`, gone on return: only the engine's events saw it."""
    container = client.create_container(image, command=["true"], network_disabled=True, host_config=client.create_host_config(
        network_mode="none", auto_remove=True, binds=[f"{volume}:/v"]))["Id"]
    client.start(container)
    deadline = time.monotonic() + 60
    while any(c["Id"] == container for c in client.containers(all=True)):
        assert time.monotonic() < deadline, "the --rm container was not removed"
        time.sleep(0.1)


def test_unused_for_keeps_a_volume_a_removed_container_used_and_removes_one_unused_longer(ansible, engine, prefix,
                                                                                          tmp_path):
    """Last use, not creation: the volumes are as old, a `--rm` container used one of them since. The usage ledger
    learnt that use from the engine's events alone (the container is gone before the module runs). A third one's
    container, created with it, ran since and stopped: removed in the same run, it still counts, by when it stopped
    (which the module reads), not by its creation."""
    built = scenario.build(engine.docker_host, {"images": [{"name": "w", "tags": ["lab/w:1"], "layers": ["w"]}]},
                           prefix=prefix)
    client, image = api(engine), built.images["w"]["id"]
    old, recent = anonymous_volume(client, image, prefix, 70_000), anonymous_volume(client, image, prefix, 50_000)
    ran = anonymous_volume(client, image, prefix, 30_000)
    user = client.create_container(image, command=["true"], network_disabled=True, labels=mine(prefix), host_config=(
        client.create_host_config(network_mode="none", binds=[f"{ran}:/v"])))["Id"]
    time.sleep(UNUSED_FOR_SECONDS + 2)
    used = time.time()
    run_with_rm(client, image, recent)
    client.start(user)
    assert client.wait(user, timeout=60)["StatusCode"] == 0
    sizes = {v["Name"]: v["UsageData"]["Size"] for v in client.df()["Volumes"] if v["Name"] in (old, recent)}
    ledger_dir = tmp_path / "ledger"
    args = {"volumes": True, "volumes_filters": {"unused_for": f"{UNUSED_FOR_SECONDS}s", "label": f"reclaim.test={prefix}"},
            "usage_ledger_dir": str(ledger_dir)}
    predicted, real = check_then_real(ansible, engine, args)
    assert real["volumes"] == [old] and real["volumes_space_reclaimed"] == sizes[old] == 70_000
    assert predicted["actions"] == [{k: v for k, v in a.items() if k not in ("status", "engine_response")}
                                    for a in real["actions"]]
    [action] = real["actions"]
    # The writer's events, read by the module: its last use.
    assert action["last_use_source"] == "ledger" and action["last_use"] < datetime.datetime.fromtimestamp(
        used, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert real["plan"]["objects"] == [dict(type="volume", id=old, name=old, bytes=70_000, last_use=action["last_use"],
                                            last_use_source="ledger")]
    assert sorted(v["Name"] for v in client.volumes(filters={"label": f"reclaim.test={prefix}"})["Volumes"]) == sorted(
        [recent, ran])
    [ledger] = ledger_dir.glob("usage-*.json")
    recorded = json.loads(ledger.read_text())
    assert recorded["format"] == 2 and recorded["volumes"][recent] >= used
    # Without the ledger, nothing tells that use: the volume counts from its creation.
    blind = ansible.module(MODULE, dict(args, usage_ledger=False), engine, check=True)
    assert [(a["volume"], a["last_use_source"]) for a in blind["actions"]] == [(recent, "created")]
    assert blind["volumes_space_reclaimed"] == sizes[recent] == 50_000
    # Its container goes in the same run; the volume stays, used when the container stopped (no unknown time kept it).
    with_user = ansible.module(MODULE, dict(args, usage_ledger=False, containers=True,
                                            containers_filters={"label": f"reclaim.test={prefix}"}), engine, check=True)
    assert with_user["containers"] == [user] and with_user["volumes"] == [recent]
    assert with_user["skipped_items"] == []
    client.remove_container(user)
    client.remove_volume(recent)
    client.remove_volume(ran)


def test_build_cache_prediction_and_actual(ansible, engine, prefix):
    scenario.build(engine.docker_host, {"builds": [
        {"name": "b", "tags": ["lab/b:1"], "files": {"a": 200_000, "b": 100_000}}]}, prefix=prefix)
    args = {"builder_cache": True, "builder_cache_all": True}
    predicted = ansible.module(MODULE, args, engine, check=True)
    real = ansible.module(MODULE, args, engine)
    assert predicted["builder_cache_prediction"]["exact"] is True
    assert real["builder_cache_prediction"] == predicted["builder_cache_prediction"]
    assert predicted["builder_cache_space_reclaimed"] == real["builder_cache_space_reclaimed"] > 0
    assert len(real["builder_cache_caches_deleted"]) == predicted["builder_cache_prediction"]["records"]


def test_min_age_keeps_fresh_items(ansible, engine, prefix):
    built = scenario.build(engine.docker_host, {"images": [
        {"name": "new", "tags": [], "layers": ["n"], "created": now_iso(), "labels": mine(prefix)}]}, prefix=prefix)
    result = ansible.module(MODULE, {"images": True, "images_filters": {"label": f"reclaim.test={prefix}"},
                                     "min_age": "1h"}, engine)
    assert result["changed"] is False and result["images"] == []
    assert {s["id"]: s["reason"] for s in result["skipped_items"]}[built.images["new"]["id"]].startswith("too young")


@pytest.mark.parametrize("args, fragment", [
    ({"images": True, "images_filters": {"reference": "x"}}, "images_filters: unknown filter 'reference'"),
    ({"containers": True, "containers_filters": {"until": "30days"}}, "containers_filters.until: '30days'"),
    ({"images": True, "images_filters": {"dangling": "maybe"}}, "images_filters: dangling must be true or false"),
    ({"builder_cache": True, "builder_cache_keep_storage": "ten gigs"}, "builder_cache_keep_storage: 'ten gigs'"),
    ({"builder_cache": True, "builder_cache_filters": {"foo": "1"}}, "builder_cache_filters: unknown filter 'foo'"),
    ({"images": True, "min_age": "-1h"}, "min_age: '-1h' is negative"),
])
def test_bad_values_fail_before_any_change(ansible, engine, args, fragment):
    before = scenario.fingerprint(engine.docker_host)
    result = ansible.module(MODULE, args, engine)
    assert result["failed"] is True and fragment in result["msg"], result["msg"]
    assert scenario.fingerprint(engine.docker_host) == before
