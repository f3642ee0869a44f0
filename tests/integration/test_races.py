"""Races on real engines: the world changes between a plan and its apply.

A module run reads the engine, plans, then applies; nothing deterministic can change the engine inside one
run, so these tests drive the same snapshot, planner and apply code directly and change the engine between
plan and apply. The engine's real answers (status codes, texts) are what is under test: each must become a
reported skip with the engine's reason, never a crash, never a retry, never force.
"""

from __future__ import annotations

import time

import docker
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.reclaim.docker.plugins.module_utils._apply import apply_plan
from ansible_collections.reclaim.docker.plugins.module_utils._connection import connect, connection_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._filters import Filters, Protection
from ansible_collections.reclaim.docker.plugins.module_utils._image_plan import plan_image_removal
from ansible_collections.reclaim.docker.plugins.module_utils._prune_plan import PrunePlanner
from ansible_collections.reclaim.docker.plugins.module_utils._snapshot import plan_with_layers, read_snapshot
from harness import scenario


def engine_client(engine):
    params = ArgumentSpecValidator(connection_argument_spec()).validate(
        {"docker_host": engine.docker_host}).validated_parameters
    return connect(params)


def planned_removal(client, names):
    snapshot = read_snapshot(client)
    return plan_with_layers(client, snapshot, lambda snap: plan_image_removal(snap, names)).actions


def planned_prune(client, prefix, kind):
    now = time.time()
    snapshot = read_snapshot(client, volumes=kind == "volumes")
    planner = PrunePlanner(snapshot, Protection({}, None, now))
    named_too = {"all": True} if kind == "volumes" else {}
    getattr(planner, kind)(Filters(kind, {"label": f"reclaim.test={prefix}", **named_too}, now))
    return planner.plan.actions


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
    actions = planned_removal(client, [f"{prefix}/lab/a:1"])
    assert [a["action"] for a in actions] == ["delete_image"]
    client.api.remove_image(f"{prefix}/lab/a:1")
    [outcome] = apply_plan(client, actions)
    assert_skipped(outcome, 404, "no such image")


def test_container_created_since_the_plan_keeps_the_image(engine, prefix):
    built = scenario.build(engine.docker_host, {"images": [{"name": "b", "tags": ["lab/b:1"], "layers": ["own"]}]},
                           prefix=prefix)
    client = engine_client(engine)
    actions = planned_removal(client, [f"{prefix}/lab/b:1"])
    container = client.api.create_container(f"{prefix}/lab/b:1", command=["/bin/busybox", "true"],
                                            host_config=client.api.create_host_config(network_mode="none"))["Id"]
    try:
        outcomes = apply_plan(client, actions)
        assert_skipped(outcomes[-1], 409, "conflict")
        assert container[:12] in outcomes[-1]["engine_reason"]
        # Never retried with force: the image and its tag are still there.
        assert image_exists(client.api, f"{prefix}/lab/b:1") and image_exists(client.api, built.images["b"]["id"])
    finally:
        client.api.remove_container(container)


def test_container_started_since_the_plan_is_not_removed(engine, prefix):
    scenario.build(engine.docker_host, {"images": [{"name": "c", "tags": ["lab/c:1"], "layers": ["own"]}]}, prefix=prefix)
    client = engine_client(engine)
    container = client.api.create_container(f"{prefix}/lab/c:1", command=["/bin/busybox", "sleep", "600"],
                                            labels={"reclaim.test": prefix}, stop_signal="SIGKILL",
                                            host_config=client.api.create_host_config(network_mode="none"))["Id"]
    try:
        actions = planned_prune(client, prefix, "containers")
        assert [a["container"] for a in actions] == [container]
        client.api.start(container)
        [outcome] = apply_plan(client, actions)
        assert_skipped(outcome, 409, "running")
        assert client.api.inspect_container(container)["State"]["Running"] is True
    finally:
        client.api.remove_container(container, force=True)


def test_volume_used_since_the_plan_is_not_removed(engine, prefix):
    built = scenario.build(engine.docker_host, {
        "images": [{"name": "v", "tags": ["lab/v:1"], "layers": ["own"]}],
        "volumes": [{"name": "data", "labels": {"reclaim.test": prefix}, "bytes": 1000}]}, prefix=prefix)
    client = engine_client(engine)
    actions = planned_prune(client, prefix, "volumes")
    assert [a["volume"] for a in actions] == [built.volumes["data"]]
    binds = client.api.create_host_config(binds=[f"{built.volumes['data']}:/data"], network_mode="none")
    user = client.api.create_container(f"{prefix}/lab/v:1", command=["/bin/busybox", "true"], host_config=binds)["Id"]
    try:
        [outcome] = apply_plan(client, actions)
        assert_skipped(outcome, 409, "in use")
        assert client.api.inspect_volume(built.volumes["data"])["Name"] == built.volumes["data"]
    finally:
        client.api.remove_container(user)
