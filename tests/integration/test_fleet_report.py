"""reclaim.docker.fleet_report, with no Docker engine: fake hosts set `cleanup_result`, the role reports.

The fixture playbook (fleet_report_fixture/) runs a fake cleanup on three local hosts (ok with bytes,
failed with an error, ok with zero) and one whose connection is refused (unreachable), then the role on
localhost. It runs through ansible-playbook and through ansible-runner (as AWX does), for real and in
check mode; the HTML report is then rendered in headless Chromium. A synthetic fleet of 500 hosts (their
`cleanup_result` facts in the inventory, report_only.yml) checks the HTML report at fleet scale in Chromium:
order, chart, width, sorting, filtering and escaping.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import ansible_runner
import pytest
from harness import fleet as ssh_fleet

from conftest import ANSIBLE_PLAYBOOK, RUNNER_ENV

FIXTURE = Path(__file__).resolve().parent / "fleet_report_fixture"

HOSTS = ["web1", "db-2", "idle3", "ghost"]  # inventory order
EXPECTED_STATUS = {"web1": "ok", "db-2": "failed", "idle3": "ok", "ghost": "unreachable"}
WEB1_BYTES = 1610612736
HOST_KEYS = {"status", "reclaimed_bytes", "profile", "removed", "usage_before", "usage_after",
             "filesystem_delta_bytes", "skipped", "error", "engine_id", "plan", "not_approved", "approval", "root_dir"}
# web1's root dir was walked (the fixture's root_dir): 700 MiB leaked, 2 GiB of container logs in two files.
WEB1_LEAKED, WEB1_LOGS = 734003200, 2147483648
TOTALS = {"hosts": 4, "ok": 2, "failed": 1, "unreachable": 1, "reclaimed_bytes": WEB1_BYTES, "root_dir_hosts": 1,
          "leaked_bytes": WEB1_LEAKED, "container_logs_bytes": WEB1_LOGS}
REMOVED_KEYS = {"containers", "images", "untagged", "networks", "volumes", "build_cache_records"}
ENV = dict(RUNNER_ENV, ANSIBLE_HOST_KEY_CHECKING="False")
# A decimal unit name on a number: the reports count in powers of 1024, so they must say KiB, MiB, GiB.
BYTE_UNITS_MISNAMED = re.compile(r"\d (?:KB|MB|GB|TB|Bytes)\b")


class Tags(HTMLParser):
    """The attributes that load something (src, href, ...) and the text of the style sheets."""

    def __init__(self):
        super().__init__()
        self.links = []
        self.style = ""
        self.in_style = False

    def handle_starttag(self, tag, attrs):
        self.in_style = tag == "style"
        self.links += [(tag, name) for name, _value in attrs if name in ("src", "href", "srcset", "action", "data")]

    def handle_data(self, data):
        if self.in_style:
            self.style += data


def check_self_contained(html: str) -> str:
    """One inline script (ours, by its nonce), a policy that allows nothing else, no address to load; the nonce."""
    nonce = re.search(r"script-src 'nonce-([A-Za-z0-9]{32})'", html)
    assert nonce, "no Content-Security-Policy with a script nonce"
    assert re.findall(r"<script\b[^>]*>", html) == [f'<script nonce="{nonce.group(1)}">']
    assert "default-src 'none'" in html
    assert not re.search(r"https?:", html.replace('xmlns="http://www.w3.org/2000/svg"', "")), "an external address"
    tags = Tags()
    tags.feed(html)
    assert not tags.links, f"an external asset: {tags.links}"
    assert not re.search(r"url\(|@import", tags.style), "an external asset in the style sheet"
    return nonce.group(1)


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
                     "filesystem_delta_bytes": None, "skipped": [], "error": "unreachable: no result",
                     "engine_id": None, "plan": None, "not_approved": [], "approval": None, "root_dir": None}
    statuses = [h["status"] for h in report["hosts"].values()]
    totals = report["totals"]
    assert totals == TOTALS
    walked = report["hosts"]["web1"]["root_dir"]
    assert walked["categories"]["leaked"] == WEB1_LEAKED and walked["categories"]["container_logs"] == WEB1_LOGS
    assert [log["name"] for log in walked["largest_container_logs"]] == ["chatty", "quiet|<b>x</b>"]
    assert report["hosts"]["idle3"]["root_dir"] is None and report["hosts"]["db-2"]["root_dir"] is None
    assert totals["hosts"] == totals["ok"] + totals["failed"] + totals["unreachable"] == len(statuses)
    assert totals["reclaimed_bytes"] == sum(h["reclaimed_bytes"] for h in report["hosts"].values())

    markdown = (report_dir / "fleet-report.md").read_text()
    for name in HOSTS:
        assert f"| {name} | {EXPECTED_STATUS[name]} |" in markdown
    # Sizes for people in binary units, named as such: 1610612736 bytes are 1.50 GiB, never "1.50 GB".
    assert "| 1.50 GiB |" in markdown and "1.50 GiB (1610612736 bytes)" in markdown
    assert not BYTE_UNITS_MISNAMED.search(markdown), BYTE_UNITS_MISNAMED.findall(markdown)
    assert r"conflict \| image" in markdown  # a | in an error does not break the table
    # Leaked and log bytes: web1's, "-" for the hosts whose root dir was not walked; the largest logs named.
    assert "| web1 | ok | standard | 1.50 GiB | 3 | 2 | 700.00 MiB | 2.00 GiB |  |" in markdown
    assert "| idle3 | ok | aggressive | 0 B | 0 | 0 | - | - |  |" in markdown
    assert "| web1 | chatty | json-file | 1.75 GiB | /var/lib/docker/containers/2222/2222-json.log |" in markdown
    assert r"| web1 | quiet\|&lt;b>x&lt;/b> | local | 256.00 MiB |" in markdown
    assert "| 700.00 MiB (734003200 bytes) | 2.00 GiB (2147483648 bytes) |" in markdown

    html = (report_dir / "fleet-report.html").read_text()
    assert html.count('<rect class="bar"') == len(HOSTS)  # up to 21 hosts, one bar each
    check_self_contained(html)
    # Freed; images before: sortable by their bytes.
    assert f'<td class="num" data-v="{WEB1_BYTES}">1.50 GiB</td>' in html
    assert '<td class="num" data-v="4294967296">4.00 GiB</td>' in html
    assert "50.0% of 100.00 GiB" in html  # Disk before: the filesystem's total
    assert f'<td class="num" data-v="{WEB1_LEAKED}">700.00 MiB</td>' in html
    assert f'<td class="num" data-v="{WEB1_LOGS}">2.00 GiB</td>' in html
    assert '<b id="total-leaked">700.00 MiB</b>' in html and '<b id="total-logs">2.00 GiB</b>' in html
    assert "<td>quiet|&lt;b&gt;x&lt;/b&gt;</td>" in html  # a log's container name is escaped
    assert not BYTE_UNITS_MISNAMED.search(html), BYTE_UNITS_MISNAMED.findall(html)

    prom = report_dir / "fleet-report.prom"
    assert prom.exists() == prometheus
    if prometheus:
        check_metrics(prom.read_text(), report)
    return report


def check_metrics(text: str, report: dict):
    """The metrics of REPORT: every series with the run's mode, each host's status (1 for its own, 0 for the others),
    bytes only for the hosts that have them, the fleet's counts and sums, the run's time; promtool accepts them."""
    mode = report["mode"]
    series = metric_series(text)
    stamp = datetime.strptime(report["generated_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    assert series[("reclaim_docker_last_run_timestamp_seconds", (("mode", mode),))] == stamp
    for name in HOSTS:
        for status in ("ok", "failed", "unreachable"):
            key = ("reclaim_docker_host_status", (("host", name), ("mode", mode), ("status", status)))
            assert series[key] == (1 if EXPECTED_STATUS[name] == status else 0), key
    # A failed or unreachable host has no bytes series: no fake 0.
    assert {labels for name, labels in series if name == "reclaim_docker_reclaimed_bytes"} == {
        (("host", "web1"), ("mode", mode)), (("host", "idle3"), ("mode", mode))}
    assert series[("reclaim_docker_reclaimed_bytes", (("host", "web1"), ("mode", mode)))] == WEB1_BYTES
    assert {labels for name, labels in series if name in ("reclaim_docker_leaked_bytes",
                                                          "reclaim_docker_container_logs_bytes")} == {
        (("host", "web1"), ("mode", mode))}
    assert series[("reclaim_docker_leaked_bytes", (("host", "web1"), ("mode", mode)))] == WEB1_LEAKED
    assert series[("reclaim_docker_container_logs_bytes", (("host", "web1"), ("mode", mode)))] == WEB1_LOGS
    for status in ("ok", "failed", "unreachable"):
        assert series[("reclaim_docker_fleet_hosts", (("mode", mode), ("status", status)))] == TOTALS[status]
    assert series[("reclaim_docker_fleet_reclaimed_bytes", (("mode", mode),))] == WEB1_BYTES
    assert series[("reclaim_docker_fleet_leaked_bytes", (("mode", mode),))] == WEB1_LEAKED
    assert series[("reclaim_docker_fleet_container_logs_bytes", (("mode", mode),))] == WEB1_LOGS
    assert all(dict(labels)["mode"] == mode for _name, labels in series)
    promtool_check(text)


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric_series(text: str) -> dict:
    """{(metric name, sorted label pairs): value} of a text-format file; every sample once, each with a HELP and a
    TYPE gauge."""
    series, typed, helped = {}, set(), set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _hash, _type, name, kind = line.split(" ", 3)
            assert kind == "gauge", line
            typed.add(name)
        elif line.startswith("# HELP "):
            helped.add(line.split(" ", 3)[2])
        elif line:
            match = SAMPLE.match(line)
            assert match, line
            labels = tuple(sorted((k, v.replace('\\"', '"').replace("\\\\", "\\"))
                                  for k, v in LABEL.findall(match.group(2))))
            key = (match.group(1), labels)
            assert key not in series, f"a series twice: {line}"
            assert match.group(1) in typed and match.group(1) in helped, line
            series[key] = float(match.group(3))
    return series


def promtool_check(text: str):
    path = shutil.which("promtool")
    assert path, "promtool is not installed (the promtool fixture installs it)"
    checked = subprocess.run([path, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("check", [False, True], ids=["cleanup", "audit"])
@pytest.mark.usefixtures("promtool")
def test_ansible_playbook(tmp_path, check):
    """As a user runs it: the default, timestamped report folder under ./reclaim-reports/."""
    command = [ANSIBLE_PLAYBOOK, "-i", str(FIXTURE / "inventory.yml"), str(FIXTURE / "playbook.yml")]
    if check:
        command += ["--check", "-e", "fleet_report_prometheus=false"]
    completed = subprocess.run(command, cwd=tmp_path, env=dict(os.environ, **ENV),
                               capture_output=True, text=True, check=False, timeout=120)
    output = completed.stdout + completed.stderr
    # The report is written, then the report play fails naming the failed and the unreachable host (4: ghost is
    # unreachable, which ansible-playbook's exit code says first).
    assert completed.returncode == 4, output
    assert "failed=1" in output.split("localhost")[-1], output
    assert "1 host(s) failed: db-2; 1 host(s) could not be reached: ghost. The report is in " in output, output

    mode = "audit" if check else "cleanup"
    folders = list((tmp_path / "reclaim-reports").glob(f"*T*Z-{mode}"))
    assert len(folders) == 1, output
    check_report(folders[0], check, prometheus=not check)

    # The job output's table: one line per host, then the totals.
    assert "TOTAL: 4 hosts, 2 ok, 1 failed, 1 unreachable, 1.50 GiB" in output
    assert ("; 700.00 MiB leaked, 2.00 GiB in container logs (root dir walked on 1 of 4 hosts)" in output), output
    assert re.search(r"Largest container logs: web1 +chatty +1\.75 GiB  /var/lib/docker/containers/2222/", output), output
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
@pytest.mark.usefixtures("promtool")
def test_ansible_runner_artifacts(tmp_path, check):
    """As AWX runs it: the set_stats artifacts reach playbook_on_stats; the totals key is per slice."""
    report_dir = tmp_path / "report"
    extravars = {"fleet_report_dir": str(report_dir)}
    if check:
        extravars["awx_job_id"] = 42  # an AWX job (slice): its totals go under reclaim_fleet_totals_42
    result = run_with_runner(tmp_path, extravars, cmdline="--check" if check else None)
    stdout = result.stdout.read()
    assert result.status == "failed" and result.rc == 4, stdout  # db-2 failed, ghost is unreachable
    assert "1 host(s) failed: db-2; 1 host(s) could not be reached: ghost." in stdout
    report = check_report(report_dir, check)

    stats = [e for e in result.events if e["event"] == "playbook_on_stats"]
    assert len(stats) == 1
    artifacts = stats[0]["event_data"]["artifact_data"]
    totals_key = "reclaim_fleet_totals_42" if check else "reclaim_fleet_totals_local"
    assert artifacts == {
        "reclaim_fleet_mode": "audit" if check else "cleanup",
        "reclaim_fleet_report_dir": str(report_dir),
        "reclaim_fleet_hosts": {name: {"status": h["status"], "reclaimed_bytes": h["reclaimed_bytes"]}
                                | ({"leaked_bytes": WEB1_LEAKED, "container_logs_bytes": WEB1_LOGS} if name == "web1" else {})
                                for name, h in report["hosts"].items()},
        totals_key: TOTALS,
        # An audit hands each host's plan on, for an approved cleanup (a hand-made result here has none).
        **({"reclaim_audit_plans": {}} if check else {}),
    }
    assert json.loads(json.dumps(artifacts)) == artifacts  # JSON-safe


# --- metrics a collector scrapes, and reports delivered where they outlast the job ------------------------------------


def run_fixture(tmp_path, *args, inventories=()):
    """The fixture playbook through ansible-playbook with ARGS (and INVENTORIES besides the fixture's): its exit code
    and output."""
    command = [ANSIBLE_PLAYBOOK, "-i", str(FIXTURE / "inventory.yml"),
               *(a for inventory in inventories for a in ("-i", str(inventory))), str(FIXTURE / "playbook.yml"), *args]
    completed = subprocess.run(command, cwd=tmp_path, env=dict(os.environ, **ENV), capture_output=True, text=True,
                               check=False, timeout=300)
    return completed.returncode, completed.stdout + completed.stderr


@pytest.mark.usefixtures("promtool")
def test_audit_and_cleanup_share_the_textfile_collector_directory(tmp_path):
    textfile_dir = tmp_path / "textfile"
    for check in (False, True):
        code, output = run_fixture(tmp_path, *(["--check"] if check else []), "-e", f"fleet_report_dir={tmp_path / str(check)}",
                                   "-e", f"fleet_report_textfile_dir={textfile_dir}",
                                   "-e", "fleet_report_fail_on_host_problems=false")
        assert code == 4, output  # only ghost's unreachable, which ansible-playbook's exit code says
    # One fixed name per mode, nothing else left there (no temporary file).
    assert sorted(p.name for p in textfile_dir.iterdir()) == ["reclaim_docker_audit.prom", "reclaim_docker_cleanup.prom"]
    merged = {}
    for check, mode in ((False, "cleanup"), (True, "audit")):
        text = (textfile_dir / f"reclaim_docker_{mode}.prom").read_text()
        report = json.loads((tmp_path / str(check) / "fleet-report.json").read_text())
        assert report["mode"] == mode
        assert text == (tmp_path / str(check) / "fleet-report.prom").read_text()
        check_metrics(text, report)
        series = metric_series(text)
        # As node_exporter merges the directory's files: no series in both.
        assert not set(series) & set(merged), set(series) & set(merged)
        merged.update(series)
    assert len({name for name, _labels in merged}) == 9


# An HTTP server on the loopback that takes PUT, as a WebDAV folder or an object store does, answers with the status
# its argument says and records each request as a JSON file (its own process: ansible-runner forks a pty, which a
# threaded test process must not do).
PUT_SERVER = """
import base64, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
records, status = sys.argv[1], int(sys.argv[2])
class Recorder(BaseHTTPRequestHandler):
    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(f"{records}/{len(__import__('os').listdir(records))}.json", "w") as out:
            json.dump({"path": self.path, "headers": dict(self.headers), "body": base64.b64encode(body).decode()}, out)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = HTTPServer(("127.0.0.1", 0), Recorder)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class PutServer:
    def __init__(self, records: Path, status: int):
        self.records = records
        records.mkdir()
        self.process = subprocess.Popen([sys.executable, "-c", PUT_SERVER, str(records), str(status)],
                                        stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"

    def requests(self) -> list:
        found = [json.loads(p.read_text()) for p in sorted(self.records.glob("*.json"))]
        return [dict(r, body=base64.b64decode(r["body"])) for r in found]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def put_server(tmp_path, request):
    server = PutServer(tmp_path / "requests", getattr(request, "param", 201))
    yield server
    server.stop()


def test_the_report_is_put_to_a_url(tmp_path, put_server):
    """As AWX runs it (ansible-runner): every file PUT under the job's folder, with basic authentication, and the
    artifact says where."""
    base = f"{put_server.url}/reclaim/"
    report_dir = tmp_path / "report"
    result = run_with_runner(tmp_path, {
        "fleet_report_dir": str(report_dir), "awx_job_id": 42, "fleet_report_fail_on_host_problems": False,
        "fleet_report_copy_to": {"url": base, "folder": "job-{{ awx_job_id }}", "url_username": "reclaim",
                                 "url_password": "s3cret", "force_basic_auth": True}})
    stdout = result.stdout.read()
    assert result.rc == 4, stdout  # only ghost's unreachable
    names = ["fleet-report.json", "fleet-report.md", "fleet-report.html", "fleet-report.prom"]
    requests = put_server.requests()
    assert sorted(r["path"] for r in requests) == sorted(f"/reclaim/job-42/{name}" for name in names)
    types = {"json": "application/json", "md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8",
             "prom": "text/plain; version=0.0.4; charset=utf-8"}
    for request in requests:
        name = request["path"].rsplit("/", 1)[1]
        assert request["body"] == (report_dir / name).read_bytes(), name
        assert request["headers"]["Content-Type"] == types[name.rsplit(".", 1)[1]]
        assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"reclaim:s3cret").decode()
    assert "s3cret" not in stdout
    assert f"Copied to: {base}job-42/" in stdout
    stats = [e for e in result.events if e["event"] == "playbook_on_stats"]
    assert stats[0]["event_data"]["artifact_data"]["reclaim_fleet_report_copied_to"] == f"{base}job-42/"


@pytest.mark.parametrize("put_server", [507], indirect=True)
def test_a_report_not_delivered_fails_the_run_after_the_summary_and_the_artifacts(tmp_path, put_server):
    report_dir = tmp_path / "report"
    result = run_with_runner(tmp_path, {
        "fleet_report_dir": str(report_dir), "fleet_report_fail_on_host_problems": False,
        "fleet_report_copy_to": {"url": f"{put_server.url}/reclaim"}})
    stdout = result.stdout.read()
    assert result.status == "failed" and result.rc == 4, stdout  # 4: ghost is unreachable, which rc says first
    assert f"The report in {report_dir} could not be delivered (fleet_report_copy_to): Status code was 507" in stdout
    assert "Not delivered: Status code was 507" in stdout and "TOTAL: 4 hosts" in stdout
    stats = [e for e in result.events if e["event"] == "playbook_on_stats"]
    artifacts = stats[0]["event_data"]["artifact_data"]
    assert artifacts["reclaim_fleet_report_dir"] == str(report_dir) and "reclaim_fleet_report_copied_to" not in artifacts
    check_report(report_dir, check=False)


@pytest.fixture(scope="module")
def report_host():
    """A host reached over SSH on the loopback, as the report's destination: its login user becomes root with sudo."""
    started = ssh_fleet.start([("reports", "28.5", ssh_fleet.ADMIN, ssh_fleet.SYSTEM_PYTHON)], name="rptfleet")
    yield started
    ssh_fleet.stop(started)


def test_the_report_is_copied_to_a_host_over_ssh(tmp_path, report_host):
    host = report_host.hosts["reports"]
    destination = Path(tempfile.mkdtemp(prefix="reports-", dir="/var/lib"))
    inventory = tmp_path / "reports.json"
    inventory.write_text(json.dumps({"all": {"children": {"report_servers": {"hosts": {
        "reports": host.inventory_vars(report_host.key)}}}}}))
    try:
        code, output = run_fixture(tmp_path, "--check", "-e", "fleet_report_fail_on_host_problems=false",
                                   "-e", f"fleet_report_dir={tmp_path / 'report'}",
                                   "-e", json.dumps({"fleet_report_copy_to": {
                                       "host": "reports", "path": str(destination / "audits")}}),
                                   inventories=[inventory])
        assert code == 4, output
        delivered = destination / "audits" / "report"
        names = sorted(p.name for p in (tmp_path / "report").iterdir())
        assert sorted(p.name for p in delivered.iterdir()) == names == [
            "fleet-report.html", "fleet-report.json", "fleet-report.md", "fleet-report.prom"]
        for name in names:
            assert (delivered / name).read_bytes() == (tmp_path / "report" / name).read_bytes(), name
            assert (delivered / name).stat().st_uid == 0  # written as root: the host's become applied
        assert f"Copied to: reports:{destination / 'audits'}/report/" in output
        # A destination host that cannot be reached: the report is written, the run fails naming it, last.
        inventory.write_text(json.dumps({"all": {"children": {"report_servers": {"hosts": {"reports": {
            "ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "nobody",
            "ansible_ssh_common_args": "-o ConnectTimeout=2 -o StrictHostKeyChecking=no"}}}}}}))
        code, output = run_fixture(tmp_path, "-e", "fleet_report_fail_on_host_problems=false",
                                   "-e", f"fleet_report_dir={tmp_path / 'again'}",
                                   "-e", json.dumps({"fleet_report_copy_to": {
                                       "host": "reports", "path": str(destination)}}),
                                   inventories=[inventory])
        assert code == 4, output  # ghost is unreachable, which the exit code says first
        assert "could not be delivered (fleet_report_copy_to): reports could not be reached" in output
        assert (tmp_path / "again" / "fleet-report.json").exists()
    finally:
        shutil.rmtree(destination)


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
    result = run_with_runner(tmp_path, {"fleet_report_dir": str(report_dir), "fleet_report_prometheus": False,
                                        "fleet_report_fail_on_host_problems": False})
    assert result.rc == 4, result.stdout.read()  # only ghost's unreachable
    html = report_dir / "fleet-report.html"

    dumped = browse(chromium, tmp_path / "profile", "--dump-dom", html.as_uri())
    assert dumped.returncode == 0, dumped.stderr
    parser = Bars()
    parser.feed(dumped.stdout)
    # One bar per host (a fleet this small has no "other hosts" bar), largest first; ties keep the inventory order.
    assert [rect["data-host"] for rect in parser.bars] == ["web1", "db-2", "idle3", "ghost"]
    # The table: failed, then unreachable, then the rest by space freed.
    assert re.findall(r'<tr data-host="([^"]+)"', dumped.stdout) == ["db-2", "ghost", "web1", "idle3"]
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


# --- the HTML report at fleet scale ---------------------------------------------------------------

SCALE_HOSTS = 500
CHART_TOP = 20  # the chart's largest hosts; the others are summed in one bar
INJECTED_HOST = "evil<script>window.__pwned=1</script>.example.com"
INJECTED_ERROR = ('Error removing image sha256:ffff: <script>window.__pwned=2</script> '
                  '"><img src=x onerror="window.__pwned=3"> ' + "z" * 400)  # long, no space to wrap at
GiB = 2 ** 30


def scale_fleet(count: int = SCALE_HOSTS, seed: int = 13) -> dict:
    """Inventory hosts of a synthetic fleet, each with its `cleanup_result` (none for an unreachable one): about
    6% failed and 4% unreachable, freed bytes from 0 to about 2 TiB, long names, and one name and one error
    made to inject HTML."""
    rng = random.Random(seed)
    hosts = {}
    for n in range(count):
        name = f"docker-{n:03d}.{rng.choice(['eu-west-1', 'us-east-2', 'ap-south-1'])}.fleet.example.internal"
        roll = rng.random()
        status = "unreachable" if roll < 0.04 else "failed" if roll < 0.10 else "ok"
        error = None
        if n == 7:
            name, status = INJECTED_HOST, "ok"
        elif n == 11:
            name = "a-very-long-host-name-" + "x" * 80 + ".example.internal"
        elif n == 3:
            status, error = "failed", INJECTED_ERROR
        if status == "unreachable":
            hosts[name] = {}
            continue
        if status == "failed" and error is None:
            error = rng.choice([
                "Error connecting: Error while fetching server API version: ('Connection aborted.', "
                "FileNotFoundError(2, 'No such file or directory'))",
                f"Error removing image sha256:{'ab' * 32}: conflict: unable to delete (must be forced) - image is "
                f"being used by stopped container {'cd' * 32}"])
        total = rng.choice([256, 512, 1024, 4096]) * GiB
        used = int(total * rng.uniform(0.3, 0.95))
        freed = 0 if rng.random() < 0.1 or (status == "failed" and rng.random() < 0.7) else \
            min(int(2 ** rng.uniform(10, 41)), used // 2)
        before = freed + int(rng.uniform(0, used // 2 - freed))
        fs_before = {"path": "/var/lib/docker", "total": total, "used": used, "free": total - used,
                     "used_percent": round(100 * used / total, 2)}
        fs_after = dict(fs_before, used=used - freed, free=total - used + freed,
                        used_percent=round(100 * (used - freed) / total, 2))
        hosts[name] = {"cleanup_result": {
            "mode": "cleanup", "status": status, "profile": rng.choice(["conservative", "standard", "aggressive"]),
            "reclaimed_bytes": freed,
            "removed": {"containers": [f"{i:064x}" for i in range(rng.randint(0, 4))],
                        "images": [f"sha256:{i:064x}" for i in range(rng.randint(0, 12))],
                        "untagged": [], "networks": [], "volumes": [], "build_cache_records": 0},
            "usage_before": {"images_bytes": before, "filesystem": fs_before},
            "usage_after": {"images_bytes": before - freed, "filesystem": fs_after},
            "filesystem_delta_bytes": freed, "skipped": [], "error": error}}
    return hosts


# Injected into a copy of the report (with the report's own nonce, as its policy allows no other script): runs
# after the report's script, drives the table as a user would and writes what it saw into the DOM for --dump-dom.
TEST_HOOK = """
(function () {
  var out = {};
  var table = document.getElementById("hosts");
  var headers = table.tHead.rows[0].cells;
  var filter = document.getElementById("host-filter");
  function rows() { return Array.prototype.slice.call(table.tBodies[0].rows); }
  function order() { return rows().map(function (r) { return r.getAttribute("data-host"); }); }
  function shown() {
    return rows().filter(function (r) { return r.getClientRects().length > 0; })
      .map(function (r) { return r.getAttribute("data-host"); });
  }
  function type(text) { filter.value = text; filter.dispatchEvent(new Event("input", {bubbles: true})); }
  out.scrollWidth = document.documentElement.scrollWidth;
  out.clientWidth = document.documentElement.clientWidth;
  var wrap = table.parentNode;
  out.tableOverflow = wrap.scrollWidth - wrap.clientWidth;
  out.scripts = document.scripts.length;
  out.initial = order();
  out.cells = rows().map(function (r) {
    return [r.cells[0].textContent, r.cells[r.cells.length - 1].textContent];
  });
  out.bars = Array.prototype.map.call(document.querySelectorAll("#freed-chart rect.bar"), function (rect) {
    return {host: rect.getAttribute("data-host"), others: rect.getAttribute("data-others"),
            width: rect.getBBox().width};
  });
  out.chartLabels = Array.prototype.map.call(document.querySelectorAll("#freed-chart > text[text-anchor]"),
    function (t) { return t.getBBox().x; });
  out.usageBars = document.querySelectorAll("#usage-chart rect.usage-before").length;
  headers[3].click(); out.freedFirst = order(); out.freedFirstSort = headers[3].getAttribute("aria-sort");
  headers[3].click(); out.freedSecond = order(); out.freedSecondSort = headers[3].getAttribute("aria-sort");
  headers[0].click(); out.byHost = order(); out.byHostSort = headers[0].getAttribute("aria-sort");
  out.hostsInOrder = out.byHost.every(function (h, i, a) {
    return i === 0 || a[i - 1].localeCompare(h, undefined, {numeric: true, sensitivity: "base"}) <= 0;
  });
  headers[1].click(); out.byStatus = order();
  type("unreachable"); out.unreachable = shown(); out.count = document.getElementById("host-count").textContent;
  type("evil <SCRIPT>"); out.evil = shown();
  type("aggressive eu-west-1"); out.aggressiveEu = shown();
  type(""); out.cleared = shown().length;
  var opened = document.querySelector("td.error div"); opened.click(); out.opened = opened.className;
  out.scrollWidthOpened = document.documentElement.scrollWidth;
  out.pwned = window.__pwned === undefined ? null : window.__pwned;
  var result = document.createElement("div");
  result.id = "test-result";
  result.setAttribute("data-json", JSON.stringify(out));
  document.body.appendChild(result);
}());
"""


class HookResult(HTMLParser):
    def __init__(self):
        super().__init__()
        self.result = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id") == "test-result":
            self.result = json.loads(attrs["data-json"])


def test_html_at_fleet_scale(tmp_path, chromium):
    fleet = scale_fleet()
    inventory = tmp_path / "inventory.json"  # YAML's inventory plugin reads JSON too
    inventory.write_text(json.dumps({"all": {"children": {"docker_hosts": {"hosts": fleet}}}}))
    report_dir = tmp_path / "report"
    command = [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(FIXTURE / "report_only.yml"),
               "-e", f"fleet_report_dir={report_dir}", "-e", "fleet_report_fail_on_host_problems=false"]
    started = time.monotonic()
    completed = subprocess.run(command, cwd=tmp_path, env=dict(os.environ, **ENV),
                               capture_output=True, text=True, check=False, timeout=300)
    elapsed = time.monotonic() - started
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    print(f"fleet report for {SCALE_HOSTS} hosts: {elapsed:.1f} s")  # shown with pytest -s
    assert elapsed < 120, f"the report of {SCALE_HOSTS} hosts took {elapsed:.0f} s"

    report = json.loads((report_dir / "fleet-report.json").read_text())
    hosts = report["hosts"]
    assert len(hosts) == SCALE_HOSTS and hosts[INJECTED_HOST]["status"] == "ok"
    rank = {"failed": 0, "unreachable": 1, "ok": 2}
    assert {h["status"] for h in hosts.values()} == set(rank)
    markdown = (report_dir / "fleet-report.md").read_text()
    html = (report_dir / "fleet-report.html").read_text()
    for text in (markdown, html, output):
        assert not BYTE_UNITS_MISNAMED.search(text), BYTE_UNITS_MISNAMED.findall(text)
    assert "<script>" not in markdown and "<img" not in markdown
    assert "<script>window" not in html and "<img" not in html
    nonce = check_self_contained(html)

    copy = tmp_path / "fleet-report-test.html"
    copy.write_text(html.replace("</body>", f'<script nonce="{nonce}">{TEST_HOOK}</script>\n</body>'))
    dumped = browse(chromium, tmp_path / "profile", "--window-size=1200,900", "--virtual-time-budget=5000",
                    "--dump-dom", copy.as_uri())
    assert dumped.returncode == 0, dumped.stderr
    parser = HookResult()
    parser.feed(dumped.stdout)
    seen = parser.result
    assert seen is not None, "the test hook did not run:\n" + dumped.stderr[-3000:]

    # Nothing from a host ran: only the report's script and the test's; the injected text shows as text.
    assert seen["pwned"] is None and seen["scripts"] == 2
    cells = dict(zip(seen["initial"], seen["cells"]))
    assert cells[INJECTED_HOST][0] == INJECTED_HOST
    injected_error_host = next(name for name, h in hosts.items() if h["error"] == INJECTED_ERROR)
    assert cells[injected_error_host][1] == INJECTED_ERROR

    # Failed, then unreachable, then ok; in each, the most bytes freed first; every host once.
    assert sorted(seen["initial"]) == sorted(hosts)
    keys = [(rank[hosts[name]["status"]], -hosts[name]["reclaimed_bytes"]) for name in seen["initial"]]
    assert keys == sorted(keys)
    assert hosts[seen["initial"][0]]["status"] == "failed"

    # The chart: the 20 largest, then one bar for the 480 others.
    largest = sorted(hosts, key=lambda name: -hosts[name]["reclaimed_bytes"])[:CHART_TOP]
    assert len(seen["bars"]) <= CHART_TOP + 1
    assert [drawn["host"] for drawn in seen["bars"][:CHART_TOP]] == largest
    assert seen["bars"][-1]["host"] is None and seen["bars"][-1]["others"] == str(SCALE_HOSTS - CHART_TOP)
    assert seen["bars"][0]["width"] > 0 and seen["usageBars"] == CHART_TOP + 1
    assert min(seen["chartLabels"]) >= 0, "a host label is cut off at the chart's left edge"
    assert f"{SCALE_HOSTS - CHART_TOP} other hosts" in html

    # It fits a 1,200 px window: no page scrolling sideways, and none in the table's own container either.
    assert seen["clientWidth"] <= 1200
    assert seen["scrollWidth"] <= 1200 and seen["scrollWidthOpened"] <= 1200, seen
    assert seen["tableOverflow"] <= 0, seen["tableOverflow"]
    assert seen["opened"] == "open"  # a clicked error shows in full

    # Sorting: the freed column, largest first then smallest first; the host column; the status column.
    freed = [hosts[name]["reclaimed_bytes"] for name in seen["freedFirst"]]
    assert freed == sorted(freed, reverse=True) and seen["freedFirstSort"] == "descending"
    freed = [hosts[name]["reclaimed_bytes"] for name in seen["freedSecond"]]
    assert freed == sorted(freed) and seen["freedSecondSort"] == "ascending"
    assert seen["hostsInOrder"] and seen["byHostSort"] == "ascending" and seen["byHost"] != seen["initial"]
    statuses = [rank[hosts[name]["status"]] for name in seen["byStatus"]]
    assert statuses == sorted(statuses)

    # Filtering by status, by an escaped host name, and by two words (profile and host).
    assert sorted(seen["unreachable"]) == sorted(n for n, h in hosts.items() if h["status"] == "unreachable")
    assert seen["count"] == f"{len(seen['unreachable'])} of {SCALE_HOSTS} hosts"
    assert seen["evil"] == [INJECTED_HOST]
    assert sorted(seen["aggressiveEu"]) == sorted(
        n for n, h in hosts.items() if h["profile"] == "aggressive" and "eu-west-1" in n)
    assert seen["aggressiveEu"] and seen["cleared"] == SCALE_HOSTS

    # Screenshots at 1,200 x 900: the top of the report, and the table (the charts hidden in a copy).
    screenshot = tmp_path / "fleet-report-500.png"
    shot = browse(chromium, tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1200,900",
                  (report_dir / "fleet-report.html").as_uri())
    assert shot.returncode == 0, shot.stderr
    table_only = tmp_path / "fleet-report-table.html"
    hide_charts = "<style>svg, .totals, .legend, h2, .note { display: none; }</style>"
    table_only.write_text(html.replace("</head>", hide_charts + "</head>"))
    table_shot = tmp_path / "fleet-report-500-table.png"
    shot = browse(chromium, tmp_path / "profile", f"--screenshot={table_shot}", "--window-size=1200,900",
                  table_only.as_uri())
    assert shot.returncode == 0, shot.stderr
    for png in (screenshot, table_shot):
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
