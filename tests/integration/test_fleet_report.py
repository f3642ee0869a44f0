"""reclaim.docker.fleet_report, with no Docker engine: fake hosts set `cleanup_result`, the role reports.

The fixture playbook (fleet_report_fixture/) runs a fake cleanup on three local hosts (ok with bytes,
failed with an error, ok with zero) and one whose connection is refused (unreachable), then the role on
localhost. It runs through ansible-playbook and through ansible-runner (as AWX does), for real and in
check mode; the HTML report is then rendered in headless Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import ansible_runner
import pytest
from conftest import ANSIBLE_PLAYBOOK, RUNNER_ENV

FIXTURE = Path(__file__).resolve().parent / "fleet_report_fixture"

HOSTS = ["web1", "db-2", "idle3", "ghost"]  # inventory order
EXPECTED_STATUS = {"web1": "ok", "db-2": "failed", "idle3": "ok", "ghost": "unreachable"}
WEB1_BYTES = 1610612736
HOST_KEYS = {"status", "reclaimed_bytes", "profile", "removed", "usage_before", "usage_after",
             "filesystem_delta_bytes", "skipped", "error"}
REMOVED_KEYS = {"containers", "images", "untagged", "networks", "volumes", "build_cache_records"}
ENV = dict(RUNNER_ENV, ANSIBLE_HOST_KEY_CHECKING="False")
# A decimal unit name on a number: the reports count in powers of 1024, so they must say KiB, MiB, GiB.
BYTE_UNITS_MISNAMED = re.compile(r"\d (?:KB|MB|GB|TB|Bytes)\b")


def check_report(report_dir: Path, check: bool, prometheus: bool = True) -> dict:
    """The four files are there and the JSON keeps its contract; returns the JSON."""
    report = json.loads((report_dir / "fleet-report.json").read_text())
    assert report["schema"] == "reclaim.docker/fleet-report/v1"
    assert report["mode"] == ("audit" if check else "cleanup")
    assert datetime.strptime(report["generated_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert set(report["hosts"]) == set(HOSTS)
    for name, host in report["hosts"].items():
        assert set(host) == HOST_KEYS, name
        assert set(host["removed"]) == REMOVED_KEYS, name
        assert host["status"] == EXPECTED_STATUS[name], name
        assert isinstance(host["reclaimed_bytes"], int)
    assert report["hosts"]["web1"]["reclaimed_bytes"] == WEB1_BYTES
    assert len(report["hosts"]["web1"]["removed"]["images"]) == 3
    assert report["hosts"]["web1"]["error"] is None
    assert report["hosts"]["db-2"]["error"].startswith("Error removing image sha256:dddd")
    assert report["hosts"]["web1"]["filesystem_delta_bytes"] == (None if check else WEB1_BYTES)
    ghost = report["hosts"]["ghost"]
    assert ghost == {"status": "unreachable", "reclaimed_bytes": 0, "profile": None,
                     "removed": {"containers": [], "images": [], "untagged": [], "networks": [], "volumes": [],
                                 "build_cache_records": 0},
                     "usage_before": {"images_bytes": 0, "filesystem": None},
                     "usage_after": {"images_bytes": 0, "filesystem": None},
                     "filesystem_delta_bytes": None, "skipped": [], "error": "unreachable: no result"}
    statuses = [h["status"] for h in report["hosts"].values()]
    totals = report["totals"]
    assert totals == {"hosts": 4, "ok": 2, "failed": 1, "unreachable": 1, "reclaimed_bytes": WEB1_BYTES}
    assert totals["hosts"] == totals["ok"] + totals["failed"] + totals["unreachable"] == len(statuses)
    assert totals["reclaimed_bytes"] == sum(h["reclaimed_bytes"] for h in report["hosts"].values())

    markdown = (report_dir / "fleet-report.md").read_text()
    for name in HOSTS:
        assert f"| {name} | {EXPECTED_STATUS[name]} |" in markdown
    # Sizes for people in binary units, named as such: 1610612736 bytes are 1.50 GiB, never "1.50 GB".
    assert "| 1.50 GiB |" in markdown and "1.50 GiB (1610612736 bytes)" in markdown
    assert not BYTE_UNITS_MISNAMED.search(markdown), BYTE_UNITS_MISNAMED.findall(markdown)
    assert r"conflict \| image" in markdown  # a | in an error does not break the table

    html = (report_dir / "fleet-report.html").read_text()
    assert html.count('<rect class="bar"') == len(HOSTS)
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert '<td class="num">1.50 GiB</td>' in html and '<td class="num">4.00 GiB</td>' in html  # freed; images before
    assert "50.0% of 100.00 GiB" in html  # Disk before: the filesystem's total
    assert not BYTE_UNITS_MISNAMED.search(html), BYTE_UNITS_MISNAMED.findall(html)

    prom = report_dir / "fleet-report.prom"
    assert prom.exists() == prometheus
    if prometheus:
        mode = report["mode"]
        lines = prom.read_text().splitlines()
        assert f'reclaim_docker_reclaimed_bytes{{host="web1",mode="{mode}"}} {WEB1_BYTES}' in lines
        for name in HOSTS:
            assert f'reclaim_docker_host_status{{host="{name}",status="{EXPECTED_STATUS[name]}"}} 1' in lines
        assert "# TYPE reclaim_docker_reclaimed_bytes gauge" in lines
        assert "# TYPE reclaim_docker_host_status gauge" in lines
    return report


@pytest.mark.parametrize("check", [False, True], ids=["cleanup", "audit"])
def test_ansible_playbook(tmp_path, check):
    """As a user runs it: the default, timestamped report folder under ./reclaim-reports/."""
    command = [ANSIBLE_PLAYBOOK, "-i", str(FIXTURE / "inventory.yml"), str(FIXTURE / "playbook.yml")]
    if check:
        command += ["--check", "-e", "fleet_report_prometheus=false"]
    completed = subprocess.run(command, cwd=tmp_path, env=dict(os.environ, **ENV),
                               capture_output=True, text=True, check=False, timeout=120)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 4, output  # 4: a host was unreachable; nothing failed
    assert "failed=0" in output.split("localhost")[-1], output

    mode = "audit" if check else "cleanup"
    folders = list((tmp_path / "reclaim-reports").glob(f"*T*Z-{mode}"))
    assert len(folders) == 1, output
    check_report(folders[0], check, prometheus=not check)

    # The job output's table: one line per host, then the totals.
    assert "TOTAL: 4 hosts, 2 ok, 1 failed, 1 unreachable, 1.50 GiB" in output
    assert not BYTE_UNITS_MISNAMED.search(output), BYTE_UNITS_MISNAMED.findall(output)
    for name in HOSTS:
        assert any(line.strip().strip('",').startswith(name + " ") for line in output.splitlines()), name


def run_with_runner(tmp_path, extravars, cmdline=None):
    """ansible_runner.run, as AWX runs playbooks (events, artifacts)."""
    private_data_dir = tmp_path / "runner"
    private_data_dir.mkdir()
    return ansible_runner.run(private_data_dir=str(private_data_dir), playbook=str(FIXTURE / "playbook.yml"),
                              inventory=str(FIXTURE / "inventory.yml"), cmdline=cmdline, extravars=extravars,
                              envvars=ENV,
                              quiet=True, timeout=120)


@pytest.mark.parametrize("check", [False, True], ids=["cleanup", "audit"])
def test_ansible_runner_artifacts(tmp_path, check):
    """As AWX runs it: the set_stats artifacts reach playbook_on_stats; the totals key is per slice."""
    report_dir = tmp_path / "report"
    extravars = {"fleet_report_dir": str(report_dir)}
    if check:
        extravars["awx_job_id"] = 42  # an AWX job (slice): its totals go under reclaim_fleet_totals_42
    result = run_with_runner(tmp_path, extravars, cmdline="--check" if check else None)
    stdout = result.stdout.read()
    assert result.status == "failed" and result.rc == 4, stdout  # ghost is unreachable
    report = check_report(report_dir, check)

    stats = [e for e in result.events if e["event"] == "playbook_on_stats"]
    assert len(stats) == 1
    artifacts = stats[0]["event_data"]["artifact_data"]
    totals_key = "reclaim_fleet_totals_42" if check else "reclaim_fleet_totals_local"
    assert artifacts == {
        "reclaim_fleet_mode": "audit" if check else "cleanup",
        "reclaim_fleet_report_dir": str(report_dir),
        "reclaim_fleet_hosts": {name: {"status": h["status"], "reclaimed_bytes": h["reclaimed_bytes"]}
                                for name, h in report["hosts"].items()},
        totals_key: {"hosts": 4, "ok": 2, "failed": 1, "unreachable": 1, "reclaimed_bytes": WEB1_BYTES},
    }
    assert json.loads(json.dumps(artifacts)) == artifacts  # JSON-safe


# --- the HTML report in a real browser ------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium():
    """Headless Chromium, installed with apt-get when missing."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        if not shutil.which("apt-get"):
            pytest.skip("chromium is missing and apt-get is not available to install it")
        installed = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                                   capture_output=True, text=True, check=False, timeout=600,
                                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if installed.returncode != 0 or not os.path.exists(path):
            pytest.skip(f"chromium is missing and `apt-get install chromium` failed:\n{installed.stderr[-2000:]}")
    return path


def browse(chromium, profile: Path, *args):
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


class Bars(HTMLParser):
    def __init__(self):
        super().__init__()
        self.bars = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "rect" and "bar" in (attrs.get("class") or "").split():
            self.bars.append(attrs)


def test_html_in_chromium(tmp_path, chromium):
    report_dir = tmp_path / "report"
    result = run_with_runner(tmp_path, {"fleet_report_dir": str(report_dir), "fleet_report_prometheus": False})
    assert result.rc == 4, result.stdout.read()
    html = report_dir / "fleet-report.html"

    dumped = browse(chromium, tmp_path / "profile", "--dump-dom", html.as_uri())
    assert dumped.returncode == 0, dumped.stderr
    parser = Bars()
    parser.feed(dumped.stdout)
    assert [rect["data-host"] for rect in parser.bars] == HOSTS  # one bar per host, in inventory order
    widths = {rect["data-host"]: float(rect["width"]) for rect in parser.bars}
    assert widths["web1"] > 0 and widths["idle3"] == widths["ghost"] == 0
    assert 'id="hosts"' in dumped.stdout and "unreachable: no result" in dumped.stdout

    screenshot = Path(os.environ.get("FLEET_REPORT_SCREENSHOT", tmp_path / "fleet-report.png"))
    shot = browse(chromium, tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1200,900",
                  html.as_uri())
    assert shot.returncode == 0, shot.stderr
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a blank 1200x900 page is a few kB
