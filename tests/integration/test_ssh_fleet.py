"""The fleet as operators run it: three Docker hosts reached over SSH (tests/harness/fleet.py), each with its own
engine and a stock interpreter that has no Docker SDK, logged into as an unprivileged user who becomes root with sudo,
or who is in the engine socket's group and needs no become. Through ansible-runner (AWX's runner): the audit, the
cleanup that applies it, the disk_usage playbook, the usage_tracker role with its program started as its unit starts
it, and a module reaching an engine at an ssh:// docker_host (`docker system dial-stdio`, as the Docker CLI does)."""

from __future__ import annotations

import json
import pwd
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

import ansible_runner
import pytest
import yaml

from harness import engines, fleet as ssh_fleet, scenario, systemd

from conftest import RUNNER_ENV, TARGET_PYTHON

PROTECT = {"references": [], "labels": ["reclaim.protect=true"]}
SEED = {"layers": {"L": 400_000}, "images": [
    {"name": f"edge{n}", "tags": [f"lab/edge:{n}"], "layers": ["L", f"own{n}"] if n == 1 else [f"own{n}"],
     "created": f"202{n}-01-01T00:00:00Z"} for n in (1, 2, 3)] + [
    {"name": "dangling", "tags": [], "layers": ["L", "d"], "created": "2021-06-01T00:00:00Z"}]}


@pytest.fixture(scope="module")
def fleet():
    specs = [("ssh1", "28.5", ssh_fleet.ADMIN, ssh_fleet.SYSTEM_PYTHON),
             ("ssh2", "20.10", ssh_fleet.ADMIN, ssh_fleet.pyenv_python39()),
             ("ssh3", "28.5-containerd", ssh_fleet.MEMBER, ssh_fleet.SYSTEM_PYTHON)]
    started = ssh_fleet.start(specs)
    try:
        for seed, host in enumerate(started.hosts.values()):
            scenario.build(host.engine.docker_host, scenario.realistic_mix(seed=seed), prefix="fleet")
            scenario.build(host.engine.docker_host, SEED, prefix="edge")
        yield started
    finally:
        ssh_fleet.stop(started)


def inventory(fleet, **extra):
    hosts = {name: dict(host.inventory_vars(fleet.key), cleanup_docker_host=host.engine.docker_host,
                        cleanup_profile="standard")
             for name, host in fleet.hosts.items()}
    return {"all": {"children": {"docker_hosts": {"hosts": hosts}},
                    "vars": dict({"cleanup_protect": PROTECT, "cleanup_min_age": "0s",
                                  "cleanup_retention": {"keep_last": 2}}, **extra)}}


def run(tmp_path, playbook, hosts, report_dir=None, extravars=None, cmdline=None):
    """PLAYBOOK (a collection playbook's name, or a path) through ansible-runner; the runner's result, the JSON report
    (when REPORT_DIR) and the job output."""
    private = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    (private / "inventory").mkdir(parents=True)
    (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump(hosts))
    extravars = dict(extravars or {}, **({"fleet_report_dir": str(report_dir)} if report_dir else {}))
    result = ansible_runner.run(private_data_dir=str(private), playbook=playbook, quiet=True, extravars=extravars,
                                envvars=dict(RUNNER_ENV, ANSIBLE_HOST_KEY_CHECKING="False"), cmdline=cmdline)
    output = result.stdout.read()
    report = json.loads((report_dir / "fleet-report.json").read_text()) if report_dir else None
    return result, report, output


def shape(value):
    """The report's structure without its values: keys, and element shapes of non-empty lists."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_the_hosts_are_stock(fleet):
    for host in fleet.hosts.values():
        for package in ("docker", "requests"):
            probe = ssh_fleet.ssh(fleet, host, host.interpreter, "-c", f"import {package}", become=host.become)
            assert probe.returncode != 0 and f"No module named '{package}'" in probe.stderr, (host.name, probe)
        assert ssh_fleet.ssh(fleet, host, "id", "-un").stdout.strip() == host.user != "root"
        if host.become:
            assert ssh_fleet.ssh(fleet, host, "id", "-un", become=True).stdout.strip() == "root"


def test_audit_then_the_approved_cleanup_over_ssh(tmp_path, fleet):
    hosts = list(fleet.hosts)
    before = {name: scenario.layers_size(host.engine.docker_host) for name, host in fleet.hosts.items()}
    with scenario.unchanged(*(h.engine.docker_host for h in fleet.hosts.values()), what="the audit"):
        result, audit, output = run(tmp_path, "reclaim.docker.audit", inventory(fleet), tmp_path / "audit")
    assert result.status == "successful", output
    assert audit["mode"] == "audit" and sorted(audit["hosts"]) == hosts
    for name in hosts:
        assert audit["hosts"][name]["status"] == "ok", (name, audit["hosts"][name]["error"])
        assert audit["hosts"][name]["reclaimed_bytes"] > 0, name

    # The same playbook on the same kind of engine reached locally: the report has the same shape.
    local = engines.start("28.5", "ssh-local")
    try:
        scenario.build(local.docker_host, scenario.realistic_mix(seed=0), prefix="fleet")
        scenario.build(local.docker_host, SEED, prefix="edge")
        local1 = {"ansible_connection": "local", "ansible_python_interpreter": TARGET_PYTHON,
                  "cleanup_docker_host": local.docker_host, "cleanup_profile": "standard"}
        local_hosts = {"all": {"children": {"docker_hosts": {"hosts": {"local1": local1}}},
                               "vars": inventory(fleet)["all"]["vars"]}}
        result, local_audit, output = run(tmp_path, "reclaim.docker.audit", local_hosts, tmp_path / "local")
        assert result.status == "successful", output
    finally:
        engines.stop(local)
    assert shape(audit["hosts"]["ssh1"]) == shape(local_audit["hosts"]["local1"])
    assert audit["hosts"]["ssh1"]["removed"] == local_audit["hosts"]["local1"]["removed"]

    result, cleanup, output = run(tmp_path, "reclaim.docker.cleanup", inventory(fleet), tmp_path / "cleanup",
                                  extravars={"reclaim_approved_plan": str(tmp_path / "audit" / "fleet-report.json")})
    assert result.status == "successful", output
    for name, host in fleet.hosts.items():
        predicted, actual = audit["hosts"][name], cleanup["hosts"][name]
        assert actual["status"] == "ok", (name, actual["error"])
        assert actual["reclaimed_bytes"] == predicted["reclaimed_bytes"], name
        for kind in ("containers", "images", "untagged", "networks", "volumes"):
            assert sorted(actual["removed"][kind]) == sorted(predicted["removed"][kind]), (name, kind)
        assert actual["approval"]["not_approved"]["count"] == 0, name
        drop = before[name] - scenario.layers_size(host.engine.docker_host)
        if host.engine.flavour == "28.5-containerd":
            # The engine also frees content blobs there, which its LayersSize counts and the snapshot-based
            # prediction of the role's usage leaves out (README: what is exact where).
            assert drop >= actual["reclaimed_bytes"] > 0, name
        else:
            assert drop == actual["usage_before"]["images_bytes"] - actual["usage_after"]["images_bytes"], name
    assert sorted(cleanup["hosts"]) == hosts
    assert shape(cleanup["hosts"]["ssh1"])["removed"] == shape(audit["hosts"]["ssh1"])["removed"]


def test_disk_usage_over_ssh(tmp_path, fleet):
    result, _report, output = run(tmp_path, "reclaim.docker.disk_usage", inventory(fleet))
    assert result.status == "successful", output
    for name, host in fleet.hosts.items():
        line = re.search(rf'"msg": "{name} \(Docker ([^,]+), ([^)]+)\): images (\d+) / ', output)
        assert line, (name, output)
        assert line.group(2) == ("containerd" if host.engine.flavour == "28.5-containerd" else "overlay2")
        images = len(scenario.client(host.engine.docker_host).images(all=True))
        assert int(line.group(3)) == images, name


def test_a_module_reaches_an_engine_at_an_ssh_docker_host(tmp_path, fleet):
    """ssh1's login user runs the module there (a bastion), against ssh3's engine through ssh3's sshd."""
    bastion, target = fleet.hosts["ssh1"], fleet.hosts["ssh3"]
    ssh_fleet.client_config(fleet, bastion.user)
    # Its own dangling image, whatever the other tests left on the engine.
    dangling = scenario.build(target.engine.docker_host, {"images": [
        {"name": "d", "tags": [], "layers": ["bastion-own"], "labels": {"bastion": "1"}}]}, prefix="bastion")
    url = target.ssh_url
    playbook = tmp_path / "through-ssh.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "an engine behind ssh://", "hosts": "ssh1", "gather_facts": False,
        "tasks": [
            {"name": "through ssh", "reclaim.docker.disk_usage_info": {"docker_host": url}, "register": "over_ssh"},
            {"name": "on the host", "reclaim.docker.disk_usage_info": {"docker_host": target.engine.docker_host},
             "become": True, "register": "local"},
            {"name": "prune through ssh", "reclaim.docker.prune": {
                "docker_host": url, "images": True, "images_filters": {"label": "bastion=1"}},
             "check_mode": True, "register": "pruned"},
            {"name": "prune on the host", "reclaim.docker.prune": {
                "docker_host": target.engine.docker_host, "images": True, "images_filters": {"label": "bastion=1"}},
             "check_mode": True, "become": True, "register": "pruned_locally"},
            {"name": "nothing listens there", "reclaim.docker.disk_usage_info": {
                "docker_host": f"ssh://{ssh_fleet.MEMBER}@localhost:1"}, "register": "refused", "ignore_errors": True},
            {"name": "results", "ansible.builtin.copy": {
                "content": "{{ {'over_ssh': over_ssh, 'local': local, 'pruned': pruned, 'pruned_locally': pruned_locally, "
                           "'refused': refused} | to_json }}",
                "dest": str(tmp_path / "results.json"), "mode": "0644"}, "delegate_to": "localhost",
             "become": False},
        ]}]))
    # The play says when to become (an inventory's ansible_become would override the task's).
    hosts = {"all": {"hosts": {"ssh1": {k: v for k, v in bastion.inventory_vars(fleet.key).items()
                                        if k != "ansible_become"}}}}
    with scenario.unchanged(target.engine.docker_host):
        result, _report, output = run(tmp_path, str(playbook), hosts)
    assert result.status == "successful", output
    results = json.loads((tmp_path / "results.json").read_text())
    over_ssh, local = results["over_ssh"], results["local"]
    assert over_ssh["engine"]["id"] == local["engine"]["id"] and over_ssh["engine"]["image_store"] == "containerd"
    assert over_ssh["disk_usage"]["images"] == local["disk_usage"]["images"]
    assert "filesystem" not in over_ssh or over_ssh["filesystem"] is None  # not this host's disk
    assert results["pruned"]["images"] == [dangling.images["d"]["id"]] and not results["pruned"].get("failed")
    remote, local_prune = results["pruned"], results["pruned_locally"]
    assert remote["images"] == local_prune["images"]
    assert [o["id"] for o in remote["plan"]["objects"]] == [o["id"] for o in local_prune["plan"]["objects"]]
    # The containerd store's content blobs are files on the Docker host: a module elsewhere cannot size them, and
    # says so (the snapshot's bytes it does know).
    assert local_prune["exact"] is True and remote["exact"] is False, remote
    assert "content store" in remote["inexact_reason"]
    assert 0 < remote["reclaimed_bytes"] < local_prune["reclaimed_bytes"]
    refused = results["refused"]
    assert refused["failed"] and "docker system dial-stdio" in refused["msg"] and "ssh exited with 255" in refused["msg"]


def test_the_usage_tracker_over_ssh(tmp_path, fleet):
    host = fleet.hosts["ssh1"]
    built = scenario.build(host.engine.docker_host, {"images": [{"name": "job", "tags": ["lab/job:1"],
                                                                 "layers": ["j"]}]}, prefix="tracked")
    # Outside /tmp and the homes, which the unit hides from the service (the role refuses them), and readable by the
    # service's user (this fleet's hosts share this machine).
    (base := Path("/var/lib/reclaim-tests")).mkdir(mode=0o755, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="ssh-tracker-", dir=base))
    root.chmod(0o755)
    install_dir, unit_dir, ledger_dir = root / "lib", root / "units", root / "ledger"
    unit_dir.mkdir()
    variables = {"usage_tracker_install_dir": str(install_dir), "usage_tracker_unit_dir": str(unit_dir),
                 "usage_tracker_manage_service": False, "usage_tracker_python": host.interpreter,
                 "usage_tracker_docker_host": host.engine.docker_host, "usage_tracker_ledger_dir": str(ledger_dir)}
    playbook = tmp_path / "tracker.yml"
    playbook.write_text(yaml.safe_dump([{"name": "the usage tracker", "hosts": "ssh1", "gather_facts": False,
                                         "roles": [{"role": "reclaim.docker.usage_tracker", "vars": variables}]}]))
    hosts = {"all": {"hosts": {"ssh1": host.inventory_vars(fleet.key)}}}
    notify = systemd.NotifySocket(root)
    try:
        result, _report, output = run(tmp_path, str(playbook), hosts)
        assert result.status == "successful", output
        unit = (unit_dir / "reclaim-usage-tracker.service").read_text()
        assert (install_dir / "ansible_collections/reclaim/docker/plugins/module_utils/_transport.py").stat().st_uid == 0
        user = systemd.unit_settings(unit)["User"][-1]
        assert user != "root" and ledger_dir.stat().st_uid == pwd.getpwnam(user).pw_uid
        # As systemd starts it: the unit's user, group and command line.
        service = systemd.run_service(unit, notify)
        try:
            assert notify.wait_for("READY=1"), "the tracker did not say it was ready"
            started = int(time.time())
            api = scenario.client(host.engine.docker_host)
            container = api.create_container(built.images["job"]["id"], command=["true"],
                                             host_config=api.create_host_config(network_mode="none"))["Id"]
            api.start(container)
            api.wait(container)
            api.remove_container(container)
            seen = None
            deadline = time.time() + 15
            while seen is None and time.time() < deadline:
                time.sleep(0.2)
                for ledger in ledger_dir.glob("usage-*.json"):
                    seen = json.loads(ledger.read_text())["images"].get(built.images["job"]["id"])
            assert seen is not None and seen >= started, "the tracker did not record the use"
            assert ledger.stat().st_uid == pwd.getpwnam(user).pw_uid
        finally:
            service.send_signal(signal.SIGTERM)
            output = service.communicate(timeout=30)[0]
        assert service.returncode == 0, output
    finally:
        notify.close()
        shutil.rmtree(root)
