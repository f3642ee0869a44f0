"""An audit's plan, approved, applied by the cleanup playbook on a fleet of every flavour, through ansible-runner: from
the report file (-e reclaim_approved_plan=PATH) and from the audit's AWX artifact, as a workflow passes it on."""

from __future__ import annotations

import json

import docker
import pytest
from test_fleet import run_playbook

from harness import engines, scenario

from conftest import TARGET_PYTHON

HOSTS = (("appr1", "20.10"), ("appr2", "28.5"), ("appr3", "28.5-containerd"), ("appr4", "28.5"))
PROTECT = {"references": [], "labels": ["reclaim.protect=true"]}


@pytest.fixture(scope="module")
def hosts():
    started = {}
    for seed, (name, flavour) in enumerate(HOSTS):
        engine = engines.start(flavour, name)
        scenario.build(engine.docker_host, scenario.realistic_mix(seed=seed), prefix="appr")
        started[name] = engine
    yield started
    for engine in started.values():
        engines.stop(engine)


def inventory(hosts):
    return {"all": {"children": {"docker_hosts": {"hosts": {
        name: {"cleanup_docker_host": engine.docker_host} for name, engine in hosts.items()}}},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": TARGET_PYTHON,
                 "cleanup_profile": "standard", "cleanup_protect": PROTECT, "cleanup_min_age": "0s",
                 "cleanup_retention": {"keep_last": 2}}}}


def images_of(engine):
    return {i["Id"]: i for i in docker.APIClient(base_url=engine.docker_host).images(all=True)}


def test_the_cleanup_applies_the_approved_audit_and_nothing_else(tmp_path, hosts):
    result, audit, artifacts = run_playbook(tmp_path, None, "audit", tmp_path / "audit", hosts=inventory(hosts))
    assert result.status == "successful", result.stdout.read()
    for name, engine in hosts.items():
        entry = audit["hosts"][name]
        assert entry["status"] == "ok", entry["error"]
        assert entry["plan"]["objects"] and entry["engine_id"] == entry["plan"]["engine_id"], name
        assert sum(i["bytes"] for i in entry["plan"]["objects"]) == entry["reclaimed_bytes"], name
        assert entry["approval"] is None and entry["not_approved"] == []
    assert artifacts["reclaim_audit_plans"] == {name: audit["hosts"][name]["plan"] for name in hosts}

    # The review: appr3's plan is swapped for appr1's engine (refused), appr4 is left out (removes nothing).
    approved = json.loads(json.dumps(audit))
    approved["hosts"]["appr3"]["plan"]["engine_id"] = audit["hosts"]["appr1"]["engine_id"]
    del approved["hosts"]["appr4"]
    approved_file = tmp_path / "approved.json"
    approved_file.write_text(json.dumps(approved))
    # After the review, appr1 gets a dangling image nobody approved.
    fresh = scenario.build(hosts["appr1"].docker_host, {"images": [
        {"name": "late", "tags": [], "layers": ["late"], "labels": {"late": "1"}}]}, prefix="late")
    late = fresh.images["late"]["id"]

    # The AWX way: the audit's artifact handed to the next job; an audit of the approved plan predicts the real run.
    with scenario.unchanged(*(e.docker_host for e in hosts.values()), what="an approved audit"):
        result, predicted, _artifacts = run_playbook(
            tmp_path, None, "audit", tmp_path / "predicted", hosts=inventory(hosts),
            extravars={"reclaim_approved_plan": {name: plan for name, plan in artifacts["reclaim_audit_plans"].items()
                                                 if name in ("appr1", "appr2")}})
    assert result.status == "successful", result.stdout.read()

    before = {name: images_of(engine) for name, engine in hosts.items()}
    result, cleanup, _artifacts = run_playbook(tmp_path, None, "cleanup", tmp_path / "cleanup", hosts=inventory(hosts),
                                               extravars={"reclaim_approved_plan": str(approved_file)})
    # appr3's refused plan fails the job, once the report is written.
    stdout = result.stdout.read()
    assert result.status == "failed" and "1 host(s) failed: appr3." in stdout, stdout
    for name in ("appr1", "appr2"):
        entry, planned = cleanup["hosts"][name], audit["hosts"][name]
        assert entry["status"] == "ok", entry["error"]
        for key in ("reclaimed_bytes", "removed", "not_approved", "approval"):
            assert entry[key] == predicted["hosts"][name][key], (name, key)
        assert entry["reclaimed_bytes"] == planned["reclaimed_bytes"], name
        assert sorted(entry["removed"]["images"]) == sorted(planned["removed"]["images"]), name
        assert entry["approval"]["approved"] == entry["approval"]["applied"] == {
            "count": len(planned["plan"]["objects"]), "bytes": planned["reclaimed_bytes"]}, name
    assert [(i["id"], i["step"]) for i in cleanup["hosts"]["appr1"]["not_approved"]] == [(late, "prune")]
    assert cleanup["hosts"]["appr1"]["approval"]["not_approved"]["count"] == 1
    assert late in images_of(hosts["appr1"])

    refused = cleanup["hosts"]["appr3"]
    assert refused["status"] == "failed" and "a plan applies only to the engine it was made on" in refused["error"]
    assert images_of(hosts["appr3"]) == before["appr3"]

    left_out = cleanup["hosts"]["appr4"]
    assert left_out["status"] == "ok" and left_out["reclaimed_bytes"] == 0
    assert images_of(hosts["appr4"]) == before["appr4"]
    assert {i["id"] for i in left_out["not_approved"]} == {i["id"] for i in audit["hosts"]["appr4"]["plan"]["objects"]}
    assert left_out["approval"]["approved"] == {"count": 0, "bytes": 0}
    # Every report says it per host: the Markdown and HTML files, and the job output.
    markdown = (tmp_path / "cleanup" / "fleet-report.md").read_text()
    assert "## Approved plan" in markdown and "| appr1 | " in markdown.split("## Approved plan")[1]
    html = (tmp_path / "cleanup" / "fleet-report.html").read_text()
    assert '<table id="approval">' in html and "<tr><td>appr4</td>" in html
    assert "Approved plan: HOST" in stdout
