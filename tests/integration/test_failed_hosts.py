"""A failed host fails the job, after its report is written: the audit and cleanup playbooks on one reachable 28.5
engine, a host whose engine cannot be reached (its socket does not exist) and a host that cannot be reached at all,
through ansible-playbook and through ansible-runner (AWX's runner); reclaim_fail_on_host_problems: false keeps the
job green; a target that matches no host fails with a message naming it."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml
from test_fleet import run_playbook

from harness import engines, scenario

from conftest import ANSIBLE_PLAYBOOK, RUNNER_ENV, TARGET_PYTHON

GHOST = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "nobody",
         "ansible_ssh_common_args": "-o ConnectTimeout=2 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
PROBLEMS = "1 host(s) failed: down1; 1 host(s) could not be reached: ghost. The report is in "


@pytest.fixture(scope="module")
def ok_engine():
    engine = engines.start("28.5", "failhosts")
    scenario.build(engine.docker_host, {"images": [
        {"name": "old", "tags": [], "layers": ["own"], "created": "2021-01-01T00:00:00Z"}]}, prefix="fail")
    yield engine
    engines.stop(engine)


def inventory(engine, tmp_path):
    local = {"ansible_connection": "local", "ansible_python_interpreter": TARGET_PYTHON, "cleanup_min_age": "0s"}
    return {"all": {"children": {"docker_hosts": {"hosts": {
        "ok1": dict(local, cleanup_docker_host=engine.docker_host),
        "down1": dict(local, cleanup_docker_host=f"unix://{tmp_path}/no-engine.sock"),
        "ghost": GHOST}}}}}


def playbook(tmp_path, name, hosts, *args):
    inventory_file = tmp_path / "inventory.yml"
    inventory_file.write_text(yaml.safe_dump(hosts))
    completed = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory_file), f"reclaim.docker.{name}", *args],
                               cwd=tmp_path, env=dict(os.environ, **RUNNER_ENV, ANSIBLE_HOST_KEY_CHECKING="False"),
                               capture_output=True, text=True, check=False, timeout=300)
    return completed.returncode, completed.stdout + completed.stderr


def check_report(report_dir):
    report = json.loads((report_dir / "fleet-report.json").read_text())
    assert {name: h["status"] for name, h in report["hosts"].items()} == {
        "ok1": "ok", "down1": "failed", "ghost": "unreachable"}, report
    assert "Cannot connect to the Docker daemon" in report["hosts"]["down1"]["error"]
    return report


@pytest.mark.parametrize("name", ["audit", "cleanup"])
def test_ansible_playbook_fails_after_the_report(tmp_path, ok_engine, name):
    report_dir = tmp_path / "report"
    returncode, output = playbook(tmp_path, name, inventory(ok_engine, tmp_path), "-e", f"fleet_report_dir={report_dir}")
    assert returncode == 2, output
    assert PROBLEMS + str(report_dir) in output, output
    report = check_report(report_dir)
    if name == "audit":  # the cleanup that follows frees it
        assert report["hosts"]["ok1"]["reclaimed_bytes"] > 0
    for file in ("fleet-report.md", "fleet-report.html", "fleet-report.prom"):
        assert (report_dir / file).is_file(), file
    assert "TOTAL: 3 hosts, 1 ok, 1 failed, 1 unreachable" in output


def test_fail_on_host_problems_false_reports_them_only(tmp_path, ok_engine):
    report_dir = tmp_path / "report"
    returncode, output = playbook(tmp_path, "audit", inventory(ok_engine, tmp_path), "-e", f"fleet_report_dir={report_dir}",
                                  "-e", "reclaim_fail_on_host_problems=false")
    assert returncode == 0, output  # the rescue and ignore_unreachable keep the job green, as before
    assert "host(s) could not be reached" not in output
    check_report(report_dir)


def test_ansible_runner_marks_the_job_failed_with_its_artifacts(tmp_path, ok_engine):
    result, report, artifacts = run_playbook(tmp_path, None, "cleanup", tmp_path / "report",
                                             hosts=inventory(ok_engine, tmp_path),
                                             env={"ANSIBLE_HOST_KEY_CHECKING": "False"})
    stdout = result.stdout.read()
    assert result.status == "failed" and result.rc == 2, stdout
    assert PROBLEMS in stdout
    check_report(tmp_path / "report")
    assert report["mode"] == "cleanup" and artifacts["reclaim_fleet_mode"] == "cleanup"
    assert {name: h["status"] for name, h in artifacts["reclaim_fleet_hosts"].items()} == {
        "ok1": "ok", "down1": "failed", "ghost": "unreachable"}
    assert artifacts["reclaim_fleet_totals_local"]["failed"] == 1


@pytest.mark.parametrize("name", ["audit", "cleanup", "disk_usage"])
def test_a_target_without_hosts_fails_naming_it(tmp_path, name):
    hosts = {"all": {"children": {"docker_hosts": {"hosts": {}}, "web": {"hosts": {"web1": {}}}}}}
    returncode, output = playbook(tmp_path, name, hosts)
    assert returncode == 2, output
    assert "reclaim_target docker_hosts matches no host of the inventory" in output, output
    assert "the group docker_hosts" in output
    returncode, output = playbook(tmp_path, name, hosts, "-e", "reclaim_target=db_servers")
    assert returncode == 2 and "reclaim_target db_servers matches no host" in output, output
    assert not (tmp_path / "reclaim-reports").exists(), "a report of no host"
