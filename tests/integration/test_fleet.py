"""The collection's audit and cleanup playbooks on a fleet of five local engines of mixed flavours, one stopped,
run through ansible-runner (the runner AWX uses), as an operator's scheduled jobs would run them."""

from __future__ import annotations

import json
import os
import re

import ansible_runner
import docker
import pytest
import yaml

from harness import engines, scenario

from conftest import RUNNER_ENV, TARGET_PYTHON

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
                    "vars": {"ansible_connection": "local", "ansible_python_interpreter": TARGET_PYTHON,
                             "cleanup_protect": PROTECT, "cleanup_min_age": "0s",
                             "cleanup_retention": {"keep_last": 2}}}}


def run_playbook(tmp_path, fleet, playbook, report_dir, hosts=None, env=None, cmdline=None, extravars=None):
    """PLAYBOOK through ansible-runner on the fleet (or on HOSTS, an inventory), with ENV added to the
    environment, CMDLINE added to ansible-playbook's and EXTRAVARS to its extra variables; returns the runner's
    result, the JSON report and the artifacts."""
    private = tmp_path / f"{playbook}-{report_dir.name}"
    (private / "inventory").mkdir(parents=True)
    (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory(fleet) if hosts is None else hosts))
    result = ansible_runner.run(
        private_data_dir=str(private), playbook=f"reclaim.docker.{playbook}", quiet=True,
        extravars=dict(extravars or {}, fleet_report_dir=str(report_dir)),
        envvars=dict(RUNNER_ENV, **(env or {})), cmdline=cmdline,
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
    sharing = {name: {i for i, image in surviving_images(fleet[name])[0].items()
                      if (image.get("Labels") or {}).get("edge") and set(image.get("RepoTags") or []) <=
                      {"<none>:<none>", "edge/lab/edge:1"}} for name in healthy}
    assert all(len(ids) == 2 for ids in sharing.values()), sharing
    with scenario.unchanged(*(fleet[name].docker_host for name in healthy), what="the audit"):
        result, audit, artifacts = run_playbook(tmp_path, fleet, "audit", tmp_path / "audit-report")
    # A failed host fails the job, after the report and the artifacts (read above) are written.
    assert result.status == "failed", result.stdout.read()
    assert f"1 host(s) failed: {STOPPED}." in result.stdout.read()
    assert audit["mode"] == "audit" and artifacts["reclaim_fleet_mode"] == "audit"
    assert audit["hosts"][STOPPED]["status"] == "failed"
    assert "Cannot connect to the Docker daemon" in audit["hosts"][STOPPED]["error"]
    assert all(audit["hosts"][name]["status"] == "ok" for name in healthy)
    assert any(audit["hosts"][name]["reclaimed_bytes"] > 0 for name in healthy)
    # The cleanup playbook in check mode is the audit by another name: the same prediction, nothing changed.
    with scenario.unchanged(*(fleet[name].docker_host for name in healthy), what="the cleanup playbook in check mode"):
        result, checked, _artifacts = run_playbook(tmp_path, fleet, "cleanup", tmp_path / "checked-report",
                                                   cmdline="--check")
    assert result.status == "failed", result.stdout.read()
    assert checked["mode"] == "audit"
    for name in healthy:
        assert checked["hosts"][name]["reclaimed_bytes"] == audit["hosts"][name]["reclaimed_bytes"], name
        assert checked["hosts"][name]["removed"] == audit["hosts"][name]["removed"], name

    protected = {name: {i for i, image in surviving_images(fleet[name])[0].items()
                        if (image.get("Labels") or {}).get("reclaim.protect") == "true"} for name in healthy}
    assert all(protected.values()), "the scenario must hold protected images"
    result, cleanup, artifacts = run_playbook(tmp_path, fleet, "cleanup", tmp_path / "cleanup-report")
    assert result.status == "failed" and f"1 host(s) failed: {STOPPED}." in result.stdout.read()
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


# --- the role's settings, on one engine that only audits see (so it never changes) --------------------------------

LONE = "lone1"
# A layer big enough that freeing it moves the filesystem's used percent by 0.04 points or more (sized from the
# filesystem under the engine's root dir), so a predicted used_percent that kept the old value cannot pass.
PERCENT_STEP = 0.04
RETENTION = [  # keep_last 1 of lab/app: app:4 stays as the newest; each older one shows one way to stay or go
    {"name": f"app{n}", "tags": [f"lab/app:{n}"], "layers": [f"app{n}-own"], "created": f"202{n}-01-01T00:00:00Z",
     "labels": {"hold": "yes"} if n == 2 else {}} for n in (1, 2, 3, 4)]


def filesystem_capacity(path) -> int:
    """used + free of the filesystem holding PATH, as disk_usage_info counts them (df's Use% denominator)."""
    stats = os.statvfs(path)
    return (stats.f_blocks - stats.f_bfree + stats.f_bavail) * stats.f_frsize


@pytest.fixture(scope="module")
def lone():
    engine = engines.start("28.5", "fleet-lone")
    big = int(filesystem_capacity(engine.data_root) * PERCENT_STEP / 100) + 1
    built = {
        "dangling": scenario.build(engine.docker_host, {"layers": {"big": big}, "images": [
            {"name": "big", "tags": [], "layers": ["big"], "created": "2021-01-01T00:00:00Z"}]}, prefix="fs"),
        "retention": scenario.build(engine.docker_host, {"images": RETENTION}, prefix="keep"),
    }
    yield engine, built
    engines.stop(engine)


def lone_inventory(engine, **host_vars):
    host = dict({"cleanup_docker_host": engine.docker_host, "cleanup_profile": "conservative"}, **host_vars)
    return {"all": {"children": {"docker_hosts": {"hosts": {LONE: host}}},
                    "vars": {"ansible_connection": "local", "ansible_python_interpreter": TARGET_PYTHON,
                             "cleanup_min_age": "0s"}}}


def audit_lone(tmp_path, engine, name, env=None, **host_vars):
    report_dir = tmp_path / name
    with scenario.unchanged(engine.docker_host, what="the audit"):
        result, report, _artifacts = run_playbook(tmp_path, None, "audit", report_dir,
                                                  hosts=lone_inventory(engine, **host_vars), env=env)
    host = report["hosts"][LONE]
    assert result.status == ("successful" if host["status"] == "ok" else "failed"), result.stdout.read()
    return host, report_dir


def test_an_audit_predicts_the_filesystem_after_whole(tmp_path, lone):
    engine, built = lone
    host, report_dir = audit_lone(tmp_path, engine, "predicted")
    assert host["status"] == "ok", host["error"]
    assert built["dangling"].images["big"]["id"] in host["removed"]["images"]
    before, after = host["usage_before"]["filesystem"], host["usage_after"]["filesystem"]
    freed = host["reclaimed_bytes"]
    assert freed >= built["dangling"].layers["big"]["size"]
    assert after["used"] == before["used"] - freed and after["free"] == before["free"] + freed
    assert after["total"] == before["total"] and after["path"] == before["path"]
    # As disk_usage_info computes it (plugins/module_utils/_disk_usage.py filesystem_usage).
    assert after["used_percent"] == round(100.0 * after["used"] / (after["used"] + after["free"]), 2)
    assert before["used_percent"] - after["used_percent"] >= PERCENT_STEP / 2, (before, after)
    assert host["usage_after"]["images_bytes"] == host["usage_before"]["images_bytes"] - freed

    # The HTML report's "Disk before" and "Disk after" cells of the host.
    html = (report_dir / "fleet-report.html").read_text()
    row = re.search(rf'<tr data-host="{LONE}">(.*?)</tr>', html, re.S).group(1)
    disk = re.findall(r'<td class="num">([0-9.]+)% of ', row)
    assert disk == [str(before["used_percent"]), str(after["used_percent"])], row


def test_tls_settings_set_to_false_win_over_the_environment(tmp_path, lone):
    engine, _built = lone
    # The environment asks for TLS, which a unix:// host cannot have: only the variables set to false make it work.
    env = {"DOCKER_TLS": "1", "DOCKER_TLS_VERIFY": "1"}
    host, _report_dir = audit_lone(tmp_path, engine, "tls-false", env=env, cleanup_tls=False,
                                   cleanup_validate_certs=False)
    assert host["status"] == "ok", host["error"]
    # And the environment does apply when the variables are left null (the default).
    host, _report_dir = audit_lone(tmp_path, engine, "tls-null", env=env)
    assert host["status"] == "failed" and "tls" in host["error"].lower(), host


def test_a_protect_in_the_retention_policy_adds_to_cleanup_protect(tmp_path, lone):
    engine, built = lone
    images = {name: image["id"] for name, image in built["retention"].images.items()}
    host, _report_dir = audit_lone(
        tmp_path, engine, "protect",
        cleanup_protect={"references": [], "labels": ["hold=yes"]},
        cleanup_retention={"keep_last": 1, "protect": {"references": ["keep/lab/app:1"]}})
    assert host["status"] == "ok", host["error"]
    removed = set(host["removed"]["images"])
    assert images["app3"] in removed  # the policy itself applies
    assert images["app1"] not in removed, "the policy's own protect was dropped"
    assert images["app2"] not in removed, "cleanup_protect was dropped"
    assert images["app4"] not in removed


@pytest.mark.parametrize("playbook", ["audit", "cleanup"])
def test_a_host_that_cannot_be_reached_is_reported_unreachable(tmp_path, playbook):
    # An audit's probe does not connect (it is skipped in check mode): the host stops at its first engine read.
    ghost = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "nobody",
             "ansible_ssh_common_args": "-o ConnectTimeout=2 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
    hosts = {"all": {"children": {"docker_hosts": {"hosts": {"ghost": ghost}}}}}
    result, report, artifacts = run_playbook(tmp_path, None, playbook, tmp_path / "ghost", hosts=hosts,
                                             env={"ANSIBLE_HOST_KEY_CHECKING": "False"})
    assert report["hosts"]["ghost"]["status"] == "unreachable", result.stdout.read()
    assert result.status == "failed" and "1 host(s) could not be reached: ghost." in result.stdout.read()
    assert report["hosts"]["ghost"]["error"] == "unreachable: no result"
    assert report["totals"]["unreachable"] == 1 and artifacts["reclaim_fleet_hosts"]["ghost"]["status"] == "unreachable"
