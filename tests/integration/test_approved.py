"""Approved plans through Ansible, on real engines of every flavour: an audit's plan, reviewed, is all a later run removes.

The audit is a check-mode run; between it and the approved run the engine changes (new items, a new tag); the
approved run's check mode predicts it, and the engine's own LayersSize judges the bytes.
"""

from __future__ import annotations

import docker

from harness import scenario

PRUNE = "reclaim.docker.prune"
RETENTION = "reclaim.docker.image_retention"
SAME = ("changed", "containers", "images", "untagged", "networks", "images_space_reclaimed",
        "containers_space_reclaimed", "reclaimed_bytes", "not_approved", "skipped_items", "plan")


def mine(prefix):
    return {"reclaim.test": prefix}


def approve(audit):
    """What a reviewer hands back: the audit's plan items and engine."""
    return {"approved": audit["plan"]["objects"], "approved_engine_id": audit["plan"]["engine_id"]}


def check_then_real(ansible, engine, module, args):
    predicted, real = ansible.check_then_real(module, args, engine, same=SAME)
    assert real["exact"] is True, real.get("inexact_reason")
    return predicted, real


def test_prune_removes_only_what_was_approved(ansible, engine, prefix):
    layers = {"S": 500_000, "d1": 300_000, "d2": 200_000, "d3": 100_000, "t": 50_000}
    images = [
        {"name": "t", "tags": ["lab/t:1"], "layers": ["S", "t"], "labels": mine(prefix)},
        {"name": "d1", "tags": [], "layers": ["S", "d1"], "labels": mine(prefix)},
        {"name": "d2", "tags": [], "layers": ["d2"], "labels": mine(prefix)},
    ]
    built = scenario.build(engine.docker_host, {"layers": layers, "images": images, "containers": [
        {"name": "c1", "image": "t", "state": "exited", "writable_bytes": 40_000, "labels": mine(prefix)}],
        "networks": [{"name": "n1", "labels": mine(prefix)}]}, prefix=prefix)
    selected = f"reclaim.test={prefix}"
    args = {"containers": True, "containers_filters": {"label": selected}, "images": True,
            "images_filters": {"label": selected}, "networks": True, "networks_filters": {"label": selected}}
    audit = ansible.module(PRUNE, args, engine, check=True)
    planned = {i["id"]: i for i in audit["plan"]["objects"]}
    assert set(planned) == {built.containers["c1"], built.images["d1"]["id"], built.images["d2"]["id"],
                            built.networks["n1"]}
    assert sum(i["bytes"] for i in planned.values()) == audit["reclaimed_bytes"]
    assert audit["not_approved"] == []

    # After the review: a new dangling image and a new stopped container appear; neither was approved.
    later = scenario.build(engine.docker_host, {"layers": layers, "images": [
        {"name": "d3", "tags": [], "layers": ["d3"], "labels": mine(prefix)}], "containers": [
        {"name": "c2", "image": built.images["t"]["id"], "state": "exited",
         "labels": mine(prefix)}]}, prefix=prefix)
    size_before = scenario.layers_size(engine.docker_host)
    _predicted, real = check_then_real(ansible, engine, PRUNE, dict(args, **approve(audit)))
    assert sorted(real["images"]) == sorted([built.images["d1"]["id"], built.images["d2"]["id"]])
    assert real["containers"] == [built.containers["c1"]] and real["networks"] == [f"{prefix}-n1"]
    assert {(i["type"], i["id"]) for i in real["not_approved"]} == {
        ("image", later.images["d3"]["id"]), ("container", later.containers["c2"])}
    drop = size_before - scenario.layers_size(engine.docker_host)
    # LayersSize counts a container's snapshots on the containerd store only.
    assert drop == real["images_space_reclaimed"] + (real["containers_space_reclaimed"]
                                                     if engine.flavour == "28.5-containerd" else 0)
    assert docker.APIClient(base_url=engine.docker_host).inspect_image(later.images["d3"]["id"])

    # The same approval again: everything it names is gone, reported, and nothing else is touched.
    again = ansible.module(PRUNE, dict(args, **approve(audit)), engine)
    assert again["changed"] is False and again["actions"] == []
    assert {s["id"]: s["reason"] for s in again["skipped_items"] if s["type"] in ("image", "container")} == {
        built.images["d1"]["id"]: "approved, but gone since the plan was made",
        built.images["d2"]["id"]: "approved, but gone since the plan was made",
        built.containers["c1"]: "approved, but gone since the plan was made"}


def test_an_image_tagged_after_the_review_stays(ansible, engine, prefix):
    built = scenario.build(engine.docker_host, {"images": [
        {"name": "a", "tags": ["lab/a:1"], "layers": ["a"], "labels": mine(prefix)},
        {"name": "b", "tags": ["lab/b:1"], "layers": ["b"], "labels": mine(prefix)}]}, prefix=prefix)
    args = {"images": True, "images_filters": {"dangling": False, "label": f"reclaim.test={prefix}"}}
    audit = ansible.module(PRUNE, args, engine, check=True)
    assert sorted(i["id"] for i in audit["plan"]["objects"]) == sorted(built.images[n]["id"] for n in ("a", "b"))
    api = docker.APIClient(base_url=engine.docker_host)
    api.tag(built.images["a"]["id"], f"{prefix}/lab/a", "prod")
    _predicted, real = check_then_real(ansible, engine, PRUNE, dict(args, **approve(audit)))
    assert real["images"] == [built.images["b"]["id"]]
    assert real["skipped_items"] == [dict(
        type="image", id=built.images["a"]["id"], name=built.images["a"]["id"][7:19],
        reason=f"changed since the plan was approved: new reference(s) {prefix}/lab/a:prod")]
    assert f"{prefix}/lab/a:prod" in api.inspect_image(built.images["a"]["id"])["RepoTags"]


def test_a_plan_from_another_engine_is_refused_before_anything_changes(ansible, engine, prefix):
    built = scenario.build(engine.docker_host, {"images": [
        {"name": "d", "tags": [], "layers": ["d"], "labels": mine(prefix)}]}, prefix=prefix)
    args = {"images": True, "images_filters": {"label": f"reclaim.test={prefix}"}}
    audit = ansible.module(PRUNE, args, engine, check=True)
    with scenario.unchanged(engine.docker_host, what="a refused approved plan"):
        refused = ansible.module(PRUNE, dict(args, approved=audit["plan"]["objects"],
                                             approved_engine_id="ZZZZ:not-this-engine"), engine)
    assert refused["failed"] is True
    assert refused["msg"] == (f"approved_engine_id: the approved plan was made on engine ZZZZ:not-this-engine, this is "
                              f"engine {audit['plan']['engine_id']}; a plan applies only to the engine it was made on. "
                              "Nothing was changed.")
    assert built.images["d"]["id"] in {i["id"] for i in audit["plan"]["objects"]}


def test_retention_enforces_only_approved_violations(ansible, engine, prefix):
    layers = {"r1": 300_000, "r2": 200_000, "r3": 100_000}
    built = scenario.build(engine.docker_host, {"layers": layers, "images": [
        {"name": n, "tags": [f"lab/app:{n}"], "layers": [n], "created": created, "labels": mine(prefix)}
        for n, created in (("r1", "2021-01-01T00:00:00Z"), ("r2", "2022-01-01T00:00:00Z"),
                           ("r3", "2023-01-01T00:00:00Z"))]}, prefix=prefix)
    # The engine holds other tests' images too: whatever else violates keep_last is simply not approved.
    args = {"keep_last": 1, "dangling": False}
    audit = ansible.module(RETENTION, args, engine, check=True)
    ours = [i for i in audit["plan"]["objects"] if i["id"] in (built.images["r1"]["id"], built.images["r2"]["id"])]
    assert len(ours) == 2
    r1 = next(i for i in ours if i["id"] == built.images["r1"]["id"])
    size_before = scenario.layers_size(engine.docker_host)
    _predicted, real = check_then_real(ansible, engine, RETENTION, dict(args, approved=[r1],
                                                                        approved_engine_id=audit["plan"]["engine_id"]))
    assert real["deleted"] == [built.images["r1"]["id"]]
    not_approved = {i["id"]: i for i in real["not_approved"]}
    assert built.images["r2"]["id"] in not_approved
    assert {v["image"]: v["action"] for v in real["violations"]}[built.images["r2"]["id"]] == "not_approved"
    assert size_before - scenario.layers_size(engine.docker_host) == real["reclaimed_bytes"]
    if engine.flavour != "28.5-containerd":
        assert real["reclaimed_bytes"] == layers["r1"]
        assert not_approved[built.images["r2"]["id"]]["bytes"] == layers["r2"]


def test_build_cache_records_go_one_by_one_and_only_approved(ansible, engine, prefix):
    """Two BuildKit builds (chained records each: context, Dockerfile, one per COPY); the records of one are approved:
    BuildKit removes exactly those, by ID, children first, and the other build's stay, listed as not approved."""
    before = {r["ID"] for r in scenario.system_df(engine.docker_host).get("BuildCache") or []}
    scenario.build(engine.docker_host, {"builds": [
        {"name": "one", "tags": ["lab/one:1"], "files": {"a": 200_000, "b": 100_000}}]}, prefix=prefix)
    ours = {r["ID"] for r in scenario.system_df(engine.docker_host).get("BuildCache") or []} - before
    scenario.build(engine.docker_host, {"builds": [
        {"name": "two", "tags": ["lab/two:1"], "files": {"c": 150_000, "d": 50_000}}]}, prefix=prefix)
    others = {r["ID"] for r in scenario.system_df(engine.docker_host).get("BuildCache") or []} - before - ours
    args = {"builder_cache": True, "builder_cache_all": True}
    audit = ansible.module(PRUNE, args, engine, check=True)
    approved = [o for o in audit["plan"]["objects"] if o["id"] in ours]
    assert {o["id"] for o in approved} == ours and {o["type"] for o in approved} == {"build_cache"}
    assert others <= {o["id"] for o in audit["plan"]["objects"]} and len(ours) >= 3
    predicted, real = ansible.check_then_real(PRUNE, dict(args, approved=approved), engine,
                                              same=("not_approved", "skipped_items", "plan"))
    assert [a["filters"]["id"] for a in predicted["actions"]] == [a["filters"]["id"] for a in real["actions"]]
    assert set(real["builder_cache_caches_deleted"]) == ours
    assert others <= {o["id"] for o in real["not_approved"]}
    left = {r["ID"] for r in scenario.system_df(engine.docker_host).get("BuildCache") or []}
    assert others <= left and not ours & left
    refused = ansible.module(PRUNE, dict(args, approved=approved, builder_cache_keep_storage="1GB"), engine)
    assert refused["failed"] is True and refused["msg"].startswith("builder_cache_keep_storage cannot be used with approved")
