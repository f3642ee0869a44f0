"""Races on real engines: the world changes between a plan and its apply.

A module run reads the engine, plans, then applies; nothing deterministic can change the engine inside one
run, so these tests drive the same snapshot, planner and apply code directly and change the engine between
plan and apply. The engine's real answers (status codes, texts) are what is under test: each must become a
reported skip with the engine's reason, never a crash, never a retry, never force.
"""

from __future__ import annotations

import os
import random
import time

import docker
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.reclaim.docker.plugins.module_utils._apply import apply_plan
from ansible_collections.reclaim.docker.plugins.module_utils._connection import connect, connection_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._filters import Filters
from ansible_collections.reclaim.docker.plugins.module_utils._image_plan import RemovalRequest, plan_image_removal
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import LayerCache
from ansible_collections.reclaim.docker.plugins.module_utils._plan import touched_images
from ansible_collections.reclaim.docker.plugins.module_utils._protection import Protection
from ansible_collections.reclaim.docker.plugins.module_utils._prune_plan import PruneRequest, plan_prune
from ansible_collections.reclaim.docker.plugins.module_utils._snapshot import priced_plan, read_snapshot
from harness import scenario


def engine_client(engine):
    params = ArgumentSpecValidator(connection_argument_spec().argument_spec).validate(
        {"docker_host": engine.docker_host}).validated_parameters
    return connect(params)


def touched(_snapshot, plan):
    return touched_images(plan)


def planned_removal(client, names):
    snapshot = read_snapshot(client)
    request = RemovalRequest(names)
    plan = priced_plan(client, snapshot, lambda snap: plan_image_removal(snap, request), touched, LayerCache(None))
    return snapshot, plan.actions


def planned_prune(client, prefix, kind, **filters):
    now = time.time()
    snapshot = read_snapshot(client, volumes=kind == "volumes")

    named_too = {"all": True} if kind == "volumes" else {}
    request = PruneRequest([kind], {kind: Filters(kind, {"label": f"reclaim.test={prefix}", **named_too, **filters}, now)},
                           Protection({}, None, now))
    plan = priced_plan(client, snapshot, lambda snap: plan_prune(snap, request), touched, LayerCache(None))
    return snapshot, plan.actions


def image_exists(api, reference):
    try:
        api.inspect_image(reference)
        return True
    except docker.errors.NotFound:
        return False


def assert_skipped(outcome, status, fragment):
    assert outcome["status"] == "skipped" and outcome["bytes"] == 0, outcome
    assert outcome["engine_status"] == status and fragment in outcome["engine_reason"].lower(), outcome


def test_image_deleted_since_the_plan(engine, prefix):
    scenario.build(engine.docker_host, {"images": [{"name": "a", "tags": ["lab/a:1"], "layers": ["own"]}]}, prefix=prefix)
    client = engine_client(engine)
    api = scenario.client(engine.docker_host)  # the test's own hand on the engine
    snapshot, actions = planned_removal(client, [f"{prefix}/lab/a:1"])
    assert [a["action"] for a in actions] == ["delete_image"]
    api.remove_image(f"{prefix}/lab/a:1")
    [outcome] = apply_plan(client, snapshot, actions)
    assert_skipped(outcome, 404, "no such image")


def test_container_created_since_the_plan_keeps_the_image(engine, prefix):
    built = scenario.build(engine.docker_host, {"images": [{"name": "b", "tags": ["lab/b:1"], "layers": ["own"]}]},
                           prefix=prefix)
    client = engine_client(engine)
    api = scenario.client(engine.docker_host)  # the test's own hand on the engine
    snapshot, actions = planned_removal(client, [f"{prefix}/lab/b:1"])
    container = api.create_container(f"{prefix}/lab/b:1", command=["/bin/busybox", "true"],
                                     host_config=api.create_host_config(network_mode="none"))["Id"]
    try:
        outcomes = apply_plan(client, snapshot, actions)
        assert_skipped(outcomes[-1], 409, "conflict")
        assert container[:12] in outcomes[-1]["engine_reason"]
        # Never retried with force: the image and its tag are still there.
        assert image_exists(api, f"{prefix}/lab/b:1") and image_exists(api, built.images["b"]["id"])
    finally:
        api.remove_container(container)


def test_container_started_since_the_plan_is_not_removed(engine, prefix):
    scenario.build(engine.docker_host, {"images": [{"name": "c", "tags": ["lab/c:1"], "layers": ["own"]}]}, prefix=prefix)
    client = engine_client(engine)
    api = scenario.client(engine.docker_host)  # the test's own hand on the engine
    container = api.create_container(f"{prefix}/lab/c:1", command=["/bin/busybox", "sleep", "600"],
                                     labels={"reclaim.test": prefix}, stop_signal="SIGKILL",
                                     host_config=api.create_host_config(network_mode="none"))["Id"]
    try:
        snapshot, actions = planned_prune(client, prefix, "containers")
        assert [a["container"] for a in actions] == [container]
        api.start(container)
        [outcome] = apply_plan(client, snapshot, actions)
        assert_skipped(outcome, 409, "running")
        assert api.inspect_container(container)["State"]["Running"] is True
    finally:
        api.remove_container(container, force=True)


def test_volume_used_since_the_plan_is_not_removed(engine, prefix):
    built = scenario.build(engine.docker_host, {
        "images": [{"name": "v", "tags": ["lab/v:1"], "layers": ["own"]}],
        "volumes": [{"name": "data", "labels": {"reclaim.test": prefix}, "bytes": 1000}]}, prefix=prefix)
    client = engine_client(engine)
    api = scenario.client(engine.docker_host)  # the test's own hand on the engine
    snapshot, actions = planned_prune(client, prefix, "volumes")
    assert [a["volume"] for a in actions] == [built.volumes["data"]]
    binds = api.create_host_config(binds=[f"{built.volumes['data']}:/data"], network_mode="none")
    user = api.create_container(f"{prefix}/lab/v:1", command=["/bin/busybox", "true"], host_config=binds)["Id"]
    try:
        [outcome] = apply_plan(client, snapshot, actions)
        assert_skipped(outcome, 409, "in use")
        assert api.inspect_volume(built.volumes["data"])["Name"] == built.volumes["data"]
    finally:
        api.remove_container(user)


def test_bytes_after_a_race_are_priced_from_what_took_effect(engine, prefix):
    """Four images share two layers; a container appears on the first image the plan deletes. The engine refuses
    that one and deletes the rest: the shared layers stay with the refused image, and the bytes reported must be
    what the engine really freed, not the plan's (which priced the shared layers into the last deletion)."""
    spec = {"layers": {"shared": 200_000, "mid": 100_000},
            "images": [{"name": f"s{i}", "tags": [], "layers": ["shared", "mid", f"own{i}"],
                        "labels": {"reclaim.test": prefix}, "created": f"2020-01-0{i + 1}T00:00:00Z"}
                       for i in range(4)]}
    built = scenario.build(engine.docker_host, spec, prefix=prefix)
    client = engine_client(engine)
    api = scenario.client(engine.docker_host)  # the test's own hand on the engine
    snapshot, actions = planned_prune(client, prefix, "images")
    assert [a["image"] for a in actions] == [built.images[f"s{i}"]["id"] for i in range(4)]
    assert actions[-1]["bytes"] > actions[0]["bytes"], "the plan prices the shared layers into the last deletion"
    holder = api.create_container(actions[0]["image"], command=["/bin/busybox", "true"],
                                  host_config=api.create_host_config(network_mode="none"))["Id"]
    # After the container: the containerd store's LayersSize counts its snapshots.
    before = scenario.layers_size(engine.docker_host)
    try:
        outcomes = apply_plan(client, snapshot, actions)
        assert_skipped(outcomes[0], 409, "conflict")
        assert [o["status"] for o in outcomes[1:]] == ["done"] * 3
        dropped = before - scenario.layers_size(engine.docker_host)
        assert snapshot.inexact_reason is None, snapshot.inexact_reason
        assert sum(o["bytes"] for o in outcomes) == dropped > 0
    finally:
        api.remove_container(holder)


# What a round does to a planned image between plan and apply, and what apply must then report.
MUTATIONS = {
    "stopped container": ("skipped", 409),
    "running container": ("skipped", 409),
    "removed by someone else": ("skipped", 404),
    "tagged again": ("partial", None),
}


def mutate(api, action, mutation, tag):
    """Change the engine under ACTION as MUTATION says; return the container made, if any."""
    if mutation == "removed by someone else":
        api.remove_image(action["image"], noprune=True)
        return None
    if mutation == "tagged again":
        api.tag(action["image"], f"{tag}/again", "1")
        return None
    container = api.create_container(action["image"], command=["/bin/busybox", "sleep", "600"], stop_signal="SIGKILL",
                                     host_config=api.create_host_config(network_mode="none"))["Id"]
    if mutation == "running container":
        api.start(container)
    return container


def test_race_rounds(engine, prefix):
    """Rounds of random races (RECLAIM_RACE_ROUNDS, 3 by default; more for a long run): images over shared
    layers, planned for pruning; some are used, removed or tagged again before the apply. Each race must be the
    reported skip or partial it is, an image in use must stay, and the bytes must be what the engine freed."""
    client = engine_client(engine)
    api = scenario.client(engine.docker_host)  # the test's own hand on the engine
    for round_no in range(int(os.environ.get("RECLAIM_RACE_ROUNDS", "3"))):
        rng = random.Random(round_no)
        tag = f"{prefix}r{round_no}"
        spec = {"layers": {"shared": 200_000, "mid": 100_000},
                "images": [{"name": f"i{i}", "tags": [f"lab/i{i}:1"] if i % 2 else [],
                            "layers": ["shared"] + (["mid"] if rng.random() < 0.5 else []) + [f"own{i}"],
                            "labels": {"reclaim.test": tag}, "created": f"2020-01-0{i + 1}T00:00:00Z"}
                           for i in range(6)]}
        scenario.build(engine.docker_host, spec, prefix=tag)
        snapshot, actions = planned_prune(client, tag, "images", dangling=False)
        assert len(actions) == 6 and {a["action"] for a in actions} == {"delete_image"}
        fates = {}
        for action in rng.sample(actions, 3):
            # A new tag on an image planned by its ID would make the engine delete it with the tag: not a race apply
            # can tell from a plan (docker image prune has it too), so only images planned by a tag are tagged again.
            choices = [m for m in MUTATIONS if m != "tagged again" or action["reference"] != action["image"]]
            fates[action["image"]] = rng.choice(choices)
        containers = [c for c in (mutate(api, a, fates[a["image"]], tag) for a in actions if a["image"] in fates)
                      if c]
        try:
            before = scenario.layers_size(engine.docker_host)
            outcomes = apply_plan(client, snapshot, actions)
            dropped = before - scenario.layers_size(engine.docker_host)
            for outcome in outcomes:
                status, engine_status = MUTATIONS.get(fates.get(outcome["image"]), ("done", None))
                assert outcome["status"] == status, (round_no, fates.get(outcome["image"]), outcome)
                assert status == "done" or outcome["bytes"] == 0
                if engine_status:
                    assert outcome["engine_status"] == engine_status, outcome
            for container in containers:
                assert image_exists(api, api.inspect_container(container)["Image"])
            assert snapshot.inexact_reason is None, snapshot.inexact_reason
            assert sum(o["bytes"] for o in outcomes) == dropped, (round_no, fates)
        finally:
            for container in containers:
                api.remove_container(container, force=True)
