"""The collection's audit and cleanup playbooks on a fleet of five local engines of mixed flavours, one stopped,
run through ansible-runner (the runner AWX uses), as an operator's scheduled jobs would run them."""

from __future__ import annotations

import json
import sys

import ansible_runner
import docker
import pytest
import yaml

from harness import engines, scenario

from conftest import RUNNER_ENV

FLEET = (("fleet1", "20.10", "aggressive"), ("fleet2", "28.5", "standard"), ("fleet3", "28.5-containerd", "aggressive"),
         ("fleet4", "28.5", "conservative"), ("fleet5", "20.10", "standard"))
STOPPED = "fleet5"
PROTECT = {"references": [], "labels": ["reclaim.protect=true"]}
# Where retention (keep_last 2) and the dangling-image prune select images that share a layer no other image
# has: the audit's prune step must count it as the cleanup's does, after retention deleted lab/edge:1.
SHARED_WITH_DANGLING = {"layers": {"L": 400_000}, "images": [
    {"name": f"edge{n}", "tags": [f"lab/edge:{n}"], "layers": ["L", f"own{n}"] if n == 1 else [f"own{n}"],
     "created": f"202{n}-01-01T00:00:00Z", "labels": {"edge": "1"}} for n in (1, 2, 3)] + [
    {"name": "dangling", "tags": [], "layers": ["L", "d"], "created": "2021-06-01T00:00:00Z", "labels": {"edge": "1"}}]}


@pytest.fixture(scope="module")
def fleet():
    started = {}
    for seed, (name, flavour, _profile) in enumerate(FLEET):
        engine = engines.start(flavour, name)
        scenario.build(engine.docker_host, scenario.realistic_mix(seed=seed), prefix="fleet")
        scenario.build(engine.docker_host, SHARED_WITH_DANGLING, prefix="edge")
        started[name] = engine
    engines.kill_daemon_only(started[STOPPED])
    yield started
    for engine in started.values():
        engines.stop(engine)


def inventory(fleet):
    hosts = {name: {"cleanup_docker_host": fleet[name].docker_host, "cleanup_profile": profile}
             for name, _flavour, profile in FLEET}
    return {"all": {"children": {"docker_hosts": {"hosts": hosts}},
                    "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                             "cleanup_protect": PROTECT, "cleanup_min_age": "0s",
                             "cleanup_retention": {"keep_last": 2}}}}


def run_playbook(tmp_path, fleet, playbook, report_dir):
    private = tmp_path / playbook
    (private / "inventory").mkdir(parents=True)
    (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory(fleet)))
    result = ansible_runner.run(
        private_data_dir=str(private), playbook=f"reclaim.docker.{playbook}", quiet=True,
        extravars={"fleet_report_dir": str(report_dir)},
        envvars=RUNNER_ENV,
    )
    stats = [e for e in result.events if e.get("event") == "playbook_on_stats"]
    artifacts = stats[-1]["event_data"].get("artifact_data", {}) if stats else {}
    report = json.loads((report_dir / "fleet-report.json").read_text())
    return result, report, artifacts


def surviving_images(engine):
    client = docker.APIClient(base_url=engine.docker_host, version="auto")
    return {i["Id"]: i for i in client.images(all=True)}, client.containers(all=True)


def test_audit_then_cleanup_on_a_fleet(tmp_path, fleet):
    healthy = [name for name, _f, _p in FLEET if name != STOPPED]
    before = {name: scenario.fingerprint(fleet[name].docker_host) for name in healthy}
    sharing = {name: {i for i, image in surviving_images(fleet[name])[0].items()
                      if (image.get("Labels") or {}).get("edge") and set(image.get("RepoTags") or []) <=
                      {"<none>:<none>", "edge/lab/edge:1"}} for name in healthy}
    assert all(len(ids) == 2 for ids in sharing.values()), sharing
    result, audit, artifacts = run_playbook(tmp_path, fleet, "audit", tmp_path / "audit-report")
    assert result.status == "successful", result.stdout.read()
    assert {name: scenario.fingerprint(fleet[name].docker_host) for name in healthy} == before, "the audit changed a host"
    assert audit["mode"] == "audit" and artifacts["reclaim_fleet_mode"] == "audit"
    assert audit["hosts"][STOPPED]["status"] == "failed"
    assert "Cannot connect to the Docker daemon" in audit["hosts"][STOPPED]["error"]
    assert all(audit["hosts"][name]["status"] == "ok" for name in healthy)
    assert any(audit["hosts"][name]["reclaimed_bytes"] > 0 for name in healthy)

    protected = {name: {i for i, image in surviving_images(fleet[name])[0].items()
                        if (image.get("Labels") or {}).get("reclaim.protect") == "true"} for name in healthy}
    assert all(protected.values()), "the scenario must hold protected images"
    result, cleanup, artifacts = run_playbook(tmp_path, fleet, "cleanup", tmp_path / "cleanup-report")
    assert result.status == "successful", result.stdout.read()
    assert cleanup["mode"] == "cleanup" and cleanup["hosts"][STOPPED]["status"] == "failed"
    for name in healthy:
        predicted, actual = audit["hosts"][name], cleanup["hosts"][name]
        assert actual["status"] == "ok", actual["error"]
        assert actual["reclaimed_bytes"] == predicted["reclaimed_bytes"], name
        for kind in ("containers", "images", "untagged", "networks", "volumes"):
            assert sorted(actual["removed"][kind]) == sorted(predicted["removed"][kind]), (name, kind)
        assert sharing[name] <= set(actual["removed"]["images"]), name
        if dict((n, f) for n, f, _p in FLEET)[name] == "28.5-containerd":
            # The engine also frees content blobs there: usage drops further than the snapshot-based prediction.
            assert actual["usage_after"]["images_bytes"] <= predicted["usage_after"]["images_bytes"], name
        else:
            assert actual["usage_after"]["images_bytes"] == predicted["usage_after"]["images_bytes"], name
    assert cleanup["totals"]["reclaimed_bytes"] == sum(h["reclaimed_bytes"] for h in cleanup["hosts"].values())
    assert artifacts["reclaim_fleet_hosts"][STOPPED]["status"] == "failed"
    assert sum(v["reclaimed_bytes"] for k, v in artifacts.items() if k.startswith("reclaim_fleet_totals_")) == \
        cleanup["totals"]["reclaimed_bytes"]

    for name in healthy:
        images, containers = surviving_images(fleet[name])
        running_images = {c["ImageID"] for c in containers if c["State"] == "running"}
        assert running_images <= set(images), f"{name}: an image a running container uses is gone"
        removed = set(cleanup["hosts"][name]["removed"]["images"])
        assert not removed & set(images), f"{name}: a reported removal is still there"
        assert protected[name] <= set(images), f"{name}: a protected image is gone"


@pytest.mark.parametrize("variables, fragment", [
    ({"cleanup_profile": "extreme"}, "cleanup_profile"),
    ({"cleanup_prune_volumes": "sometimes"}, "cleanup_prune_volumes"),
    ({"cleanup_protect": {"references": "app:*", "colours": ["red"]}}, "colours"),
])
def test_the_role_refuses_bad_values_before_anything_runs(ansible, tmp_path, variables, fragment):
    # No engine at this address: the role must stop at its argument specs, before trying to reach one.
    run = ansible.play([{"name": "cleanup", "ansible.builtin.include_role": {"name": "reclaim.docker.cleanup"},
                         "vars": dict(variables, cleanup_docker_host=f"unix://{tmp_path}/none.sock")}],
                       {"host": f"unix://{tmp_path}/none.sock"})
    failed = [r for r in run.results if r["status"] == "failed"]
    assert len(failed) == 1 and "Validating arguments against arg spec" in failed[0]["task"], run.output
    assert fragment in failed[0]["result"]["msg"]
