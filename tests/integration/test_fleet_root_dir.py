"""The audit and cleanup playbooks with cleanup_root_dir, on real engines of every flavour, through ansible-runner (as
AWX runs them): the cleanup role walks Docker's root dir (disk_usage_info) before any step acts, and the fleet
report shows each host's leaked and container log bytes, its largest logs and the totals, in every file and in the job
output, exactly as disk_usage_info's root_dir counts them on the same state. A host the walk cannot read (a remote docker_host) fails,
naming root_dir, before anything is removed."""

from __future__ import annotations

import json
import re
import time

import ansible_runner
import pytest
import yaml

from ansible_collections.reclaim.docker.plugins.plugin_utils._fleet import binary_size
from harness import engines, scenario

from conftest import RUNNER_ENV, TARGET_PYTHON
from test_fleet_report import metric_series, promtool_check
from test_storage_leaks import LOG_BYTES, synthetic_leaks

SPEC = {
    "layers": {"a": 1_000_000, "b": 2_000_000},
    "images": [{"name": "used", "tags": ["lab/used:1"], "layers": ["a"]},
               {"name": "idle", "tags": ["lab/idle:1"], "layers": ["b"]},
               {"name": "dangling", "tags": [], "layers": ["b", "d"], "created": "2021-01-01T00:00:00Z"}],
    "containers": [{"name": "up", "image": "lab/used:1", "state": "running"},
                   {"name": "down", "image": "lab/used:1", "state": "exited", "writable_bytes": 100_000}],
}


@pytest.fixture(scope="module", params=engines.FLAVOURS)
def host(request):
    """A daemon of this module's own per flavour: images, containers, a container that wrote several MB of logs, and
    storage its metadata names nowhere (synthetic leaks)."""
    engine = engines.start(request.param, f"rd-{request.param.replace('.', '').replace('-containerd', 'c')}")
    try:
        scenario.build(engine.docker_host, SPEC, prefix="rd")
        api = scenario.client(engine.docker_host)
        logger = api.create_container(
            "rd/lab/used:1", name="rd-logger", network_disabled=True, stop_signal="SIGKILL",
            command=["sh", "-c", f"head -c {LOG_BYTES * 3 // 4} /dev/urandom | base64; sleep 3600"],
            host_config=api.create_host_config(network_mode="none"))["Id"]
        api.start(logger)
        deadline = time.monotonic() + 60
        while len(api.logs(logger)) < LOG_BYTES and time.monotonic() < deadline:
            time.sleep(0.2)
        synthetic_leaks(engine)
        yield {"engine": engine, "logger": logger}
    finally:
        engines.stop(engine)


def run_playbook(tmp_path, engine, playbook, name, cmdline=None, **variables):
    """PLAYBOOK through ansible-runner on one host, HOST, with VARIABLES as its host variables: the runner's result and
    the report folder."""
    private = tmp_path / name
    (private / "inventory").mkdir(parents=True)
    hosts = {"HOST": {"ansible_connection": "local", "ansible_python_interpreter": TARGET_PYTHON,
                      "cleanup_docker_host": engine.docker_host, **variables}}
    (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"docker_hosts": {
        "hosts": hosts}}}}))
    report_dir = tmp_path / f"{name}-report"
    result = ansible_runner.run(private_data_dir=str(private), playbook=f"reclaim.docker.{playbook}", quiet=True,
                                extravars={"fleet_report_dir": str(report_dir),
                                           "fleet_report_textfile_dir": str(tmp_path / "textfile")},
                                envvars=dict(RUNNER_ENV, XDG_CACHE_HOME=str(tmp_path / "xdg")), cmdline=cmdline)
    return result, report_dir


@pytest.mark.usefixtures("promtool")
def test_the_report_shows_leaked_and_log_bytes_as_disk_usage_info_counts_them(ansible, host, tmp_path):
    engine = host["engine"]
    reference = ansible.module("reclaim.docker.disk_usage_info", {"root_dir": True, "docker_host": engine.docker_host},
                               engine, check=True)
    assert reference.get("failed") is not True, reference.get("msg")
    expected = reference["root_dir"]
    leaked, logs = expected["categories"]["leaked"], expected["categories"]["container_logs"]
    assert leaked > 0 and logs >= LOG_BYTES and expected["exact"] is True

    with scenario.unchanged(engine.docker_host, what="the audit"):
        result, report_dir = run_playbook(tmp_path, engine, "audit", "audit", cleanup_root_dir=True)
    stdout = result.stdout.read()
    assert result.status == "successful", stdout
    report = json.loads((report_dir / "fleet-report.json").read_text())
    walked = report["hosts"]["HOST"]["root_dir"]
    assert walked["categories"] == expected["categories"] and walked["bytes"] == expected["bytes"]
    assert walked["exact"] is True and walked["path"] == str(engine.data_root)
    assert walked["largest_container_logs"] == expected["container_logs"][:5]
    assert walked["largest_container_logs"][0]["container"] == host["logger"]
    assert report["totals"]["root_dir_hosts"] == 1
    assert (report["totals"]["leaked_bytes"], report["totals"]["container_logs_bytes"]) == (leaked, logs)

    sizes = {n: binary_size(n) for n in (leaked, logs)}
    largest = walked["largest_container_logs"][0]
    markdown = (report_dir / "fleet-report.md").read_text()
    assert f"| {sizes[leaked]} | {sizes[logs]} |" in markdown
    assert f"| HOST | rd-logger | json-file | {binary_size(largest['bytes'])} | {largest['path']} |" in markdown
    html = (report_dir / "fleet-report.html").read_text()
    assert f'<td class="num" data-v="{leaked}">{sizes[leaked]}</td>' in html
    assert f'<b id="total-logs">{sizes[logs]}</b>' in html
    assert f"{sizes[leaked]} leaked, {sizes[logs]} in container logs (root dir walked on 1 of 1 hosts)" in stdout
    assert re.search(rf"Largest container logs: HOST +rd-logger +{re.escape(binary_size(largest['bytes']))}", stdout)
    text = (tmp_path / "textfile" / "reclaim_docker_audit.prom").read_text()
    promtool_check(text)
    series = metric_series(text)
    assert series[("reclaim_docker_leaked_bytes", (("host", "HOST"), ("mode", "audit")))] == leaked
    assert series[("reclaim_docker_container_logs_bytes", (("host", "HOST"), ("mode", "audit")))] == logs
    artifacts = [e for e in result.events if e["event"] == "playbook_on_stats"][0]["event_data"]["artifact_data"]
    assert artifacts["reclaim_fleet_hosts"]["HOST"] == {
        "status": "ok", "reclaimed_bytes": report["hosts"]["HOST"]["reclaimed_bytes"], "leaked_bytes": leaked,
        "container_logs_bytes": logs}

    # The cleanup walks before it acts: the dangling image goes, the leaks and the logs stay as they were.
    result, report_dir = run_playbook(tmp_path, engine, "cleanup", "cleanup", cleanup_root_dir=True)
    assert result.status == "successful", result.stdout.read()
    cleaned = json.loads((report_dir / "fleet-report.json").read_text())["hosts"]["HOST"]
    assert cleaned["reclaimed_bytes"] > 0 and len(cleaned["removed"]["images"]) == 1
    assert cleaned["root_dir"]["categories"]["leaked"] == leaked
    assert cleaned["root_dir"]["categories"]["container_logs"] == logs
    assert sorted(p.name for p in (tmp_path / "textfile").iterdir()) == [
        "reclaim_docker_audit.prom", "reclaim_docker_cleanup.prom"]


def test_a_host_the_walk_cannot_read_fails_naming_root_dir_before_anything_changes(host, tmp_path):
    engine = host["engine"]
    with scenario.unchanged(engine.docker_host, what="a refused cleanup"):
        result, report_dir = run_playbook(tmp_path, engine, "cleanup", "remote", cleanup_root_dir=True,
                                          cleanup_docker_host="tcp://127.0.0.1:1")
    assert result.status == "failed", result.stdout.read()
    entry = json.loads((report_dir / "fleet-report.json").read_text())["hosts"]["HOST"]
    assert entry["status"] == "failed" and entry["root_dir"] is None
    assert entry["error"].startswith("root_dir reads Docker's root dir on the host the module runs on"), entry["error"]
