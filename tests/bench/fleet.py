"""The fleet task of `make bench`: the audit playbook (also with cleanup_root_dir, the walk of Docker's root dir) and the
cleanup playbook on 1, 10 and 20 local engines against a one-task community.docker.docker_host_info play and a ping
play, as CPU per host and wall time; and the fleet report of 500 synthetic hosts alone.

Every engine is a 28.5 (overlay2) seeded small (`scenario.ci_host(15, repos=3)`: 15 images, 4 of them dangling, 2
containers), reached with `ansible_connection: local` and the bench's Python as the target's. Each run is one
`ansible-playbook` with forks = hosts; its CPU is the user + system time of that process and every process under it
(the controller's workers and the modules), read from the kernel when it is reaped (`wait4`), divided by the hosts.
A cleanup run starts from the seeded state: what the last one removed is loaded again first (not measured).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from harness import engines, scenario

FLEET_SIZES = (1, 10, 20)
FLAVOUR = "28.5"
REPORT_HOSTS = 500
ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "tests" / "integration"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

# The anchors: what one community.docker task and a bare ping cost per host under the same controller.
HOST_INFO_PLAY = [{"name": "One community.docker task", "hosts": "docker_hosts", "gather_facts": False, "tasks": [
    {"name": "Disk usage, verbose", "community.docker.docker_host_info": {
        "docker_host": "{{ cleanup_docker_host }}", "disk_usage": True, "verbose_output": True}}]}]
PING_PLAY = [{"name": "Ping", "hosts": "docker_hosts", "gather_facts": False,
              "tasks": [{"name": "Ping", "ansible.builtin.ping": None}]}]
HOST_INFO = "community.docker docker_host_info (disk usage, verbose), one task"
PING = "ansible.builtin.ping, one task"


def fleet_spec() -> dict:
    return scenario.ci_host(15, repos=3)


@dataclasses.dataclass
class FleetContender:
    label: str
    side: str               # "ours" or "theirs"
    playbook: str           # a playbook path or an FQCN
    changes: bool = False   # a run that changes the engines: each starts from the seeded state
    extra_vars: dict = dataclasses.field(default_factory=dict)  # passed with -e
    samples: list = dataclasses.field(default_factory=list)  # (cpu seconds, wall seconds) per run

    def result(self, hosts: int) -> dict:
        cpu = [c / hosts for c, _w in self.samples]
        wall = [w for _c, w in self.samples]
        return {"label": self.label, "side": self.side, "hosts": hosts,
                "cpu_per_host": cpu, "cpu_median": statistics.median(cpu),
                "wall": wall, "wall_median": statistics.median(wall)}


def run_measured(command, env, cwd) -> tuple:
    """(CPU seconds of COMMAND and everything under it, wall seconds, output); raises when it fails."""
    began = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)[:300]} exited with {process.returncode}:\n{output[-4000:]}")
    return usage.ru_utime + usage.ru_stime, wall, output


class FleetBench:
    """Up to max(SIZES) engines, and the fleet task's contenders on the first N of them for each size."""

    def __init__(self, args, ours, workdir: Path):
        self.args, self.ours = args, ours
        self.workdir = workdir / "fleet"
        self.workdir.mkdir()
        self.sizes = sorted(args.fleet_sizes)
        self.spec = fleet_spec()
        self.engines, self.built = [], []
        self.results, self.notes = [], []
        self.runs = 0
        self.engine_info = {}
        self.report = None

    def start(self):
        names = [f"bfleet{n:02d}" for n in range(max(self.sizes))]
        for engine in engines.running():
            if engine.name in names:
                engines.stop(engine)  # left by an interrupted bench of ours
        for name in names:
            engine = engines.start(FLAVOUR, name)
            self.engines.append(engine)
            self.built.append(scenario.build(engine.docker_host, self.spec, prefix="fleet"))
        api = scenario.client(self.engines[0].docker_host)
        self.engine_info = {"version": api.version().get("Version"), "driver": api.info().get("Driver")}
        print(f"== fleet: {len(self.engines)} engines of {FLAVOUR}, {len(self.spec['images'])} images each", flush=True)

    def stop(self):
        for engine in self.engines:
            engines.stop(engine)

    def restore(self, hosts: int):
        for engine, built in zip(self.engines[:hosts], self.built):
            scenario.reload_images(engine.docker_host, self.spec, built)

    def env(self, hosts: int) -> dict:
        return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(self.ours.collections), ANSIBLE_FORKS=str(hosts),
                    ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_HOST_KEY_CHECKING="False",
                    XDG_CACHE_HOME=str(self.workdir / "xdg-cache"))

    def inventory(self, hosts: int) -> Path:
        path = self.workdir / f"inventory-{hosts}.yml"
        path.write_text(yaml.safe_dump({"all": {
            "children": {"docker_hosts": {"hosts": {
                f"host{n:02d}": {"cleanup_docker_host": engine.docker_host}
                for n, engine in enumerate(self.engines[:hosts])}}},
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}))
        return path

    def contenders(self) -> list:
        host_info, ping = self.workdir / "host_info.yml", self.workdir / "ping.yml"
        host_info.write_text(yaml.safe_dump(HOST_INFO_PLAY, sort_keys=False))
        ping.write_text(yaml.safe_dump(PING_PLAY, sort_keys=False))
        name = "" if self.args.label == "current" else f" ({self.args.label})"
        return [FleetContender(f"ours{name}: audit playbook", "ours", "reclaim.docker.audit"),
                # The walk of Docker's root dir before the steps act (leaked and log bytes in the report).
                FleetContender(f"ours{name}: audit playbook, cleanup_root_dir", "ours", "reclaim.docker.audit",
                               extra_vars={"cleanup_root_dir": True}),
                FleetContender(f"ours{name}: cleanup playbook", "ours", "reclaim.docker.cleanup", changes=True),
                FleetContender(HOST_INFO, "theirs", str(host_info)),
                FleetContender(PING, "theirs", str(ping))]

    def run_once(self, contender: FleetContender, hosts: int) -> tuple:
        if contender.changes:
            self.restore(hosts)
        self.runs += 1
        command = [ANSIBLE_PLAYBOOK, "-i", str(self.inventory(hosts)), contender.playbook,
                   "-e", f"fleet_report_dir={self.workdir / 'reports' / str(self.runs)}",
                   *(["-e", json.dumps(contender.extra_vars)] if contender.extra_vars else [])]
        cpu, wall, output = run_measured(command, self.env(hosts), self.workdir)
        if contender.side == "ours":
            report = json.loads((self.workdir / "reports" / str(self.runs) / "fleet-report.json").read_text())
            if report["totals"]["ok"] != hosts:
                raise RuntimeError(f"{contender.label}: not every host ok: {report['totals']}\n{output[-3000:]}")
            if report["totals"]["root_dir_hosts"] != (hosts if contender.extra_vars.get("cleanup_root_dir") else 0):
                raise RuntimeError(f"{contender.label}: root dirs walked: {report['totals']}")
        return cpu, wall

    def run_size(self, hosts: int):
        contenders = self.contenders()
        began = time.monotonic()
        for run in range(self.args.fleet_runs):
            shift = run % len(contenders)
            for contender in contenders[shift:] + contenders[:shift]:
                contender.samples.append(self.run_once(contender, hosts))
        result = {"hosts": hosts, "contenders": [c.result(hosts) for c in contenders]}
        self.results.append(result)
        print(f"-- fleet of {hosts} ({time.monotonic() - began:.0f} s)", flush=True)
        for c in result["contenders"]:
            print(f"   {c['label']:<72} {c['cpu_median']:6.3f} CPU-s per host  {c['wall_median']:6.2f} s wall",
                  flush=True)

    def run_report(self):
        """The fleet report role alone on REPORT_HOSTS synthetic results (test_fleet_report.scale_fleet)."""
        sys.path.insert(0, str(INTEGRATION))
        from test_fleet_report import scale_fleet  # noqa: PLC0415 (the integration tests' synthetic fleet)
        inventory = self.workdir / "report-inventory.json"
        inventory.write_text(json.dumps({"all": {"children": {"docker_hosts": {"hosts": scale_fleet(REPORT_HOSTS)}}}}))
        samples = []
        for run in range(self.args.fleet_runs):
            command = [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(INTEGRATION / "fleet_report_fixture" / "report_only.yml"),
                       "-e", f"fleet_report_dir={self.workdir / 'report-500' / str(run)}",
                       "-e", "fleet_report_fail_on_host_problems=false"]
            samples.append(run_measured(command, self.env(1), self.workdir)[:2])
        cpu = [c for c, _w in samples]
        self.report = {"hosts": REPORT_HOSTS, "cpu": cpu, "cpu_median": statistics.median(cpu),
                       "wall_median": statistics.median(w for _c, w in samples)}
        print(f"-- fleet report of {REPORT_HOSTS} synthetic hosts: {self.report['cpu_median']:.2f} CPU-s, "
              f"{self.report['wall_median']:.1f} s wall", flush=True)

    def run(self) -> dict:
        self.start()
        try:
            for hosts in self.sizes:
                self.run_size(hosts)
        finally:
            self.stop()
        self.run_report()
        return {"engine": self.engine_info, "images": len(self.spec["images"]),
                "dangling": sum(1 for i in self.spec["images"] if not i["tags"]),
                "containers": len(self.spec["containers"]), "results": self.results, "report": self.report,
                "notes": self.notes}
