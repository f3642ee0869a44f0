"""`make demo`: a fleet of three local engines, seeded, then the collection's playbooks on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import engines, scenario

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".build" / "demo"
# One engine per inventory group, each flavour once; the group's profile follows the guide's advice:
# aggressive on dev machines, conservative in production.
FLEET = (("dev1", "dev", "28.5-containerd"), ("ci1", "ci", "28.5"), ("prod1", "prod", "20.10"))
PROFILES = {"dev": "aggressive", "ci": "standard", "prod": "conservative"}


def write_inventory(fleet_engines) -> Path:
    groups = {}
    for (name, group, _flavour), engine in zip(FLEET, fleet_engines):
        groups.setdefault(group, {"hosts": {}, "vars": {"cleanup_profile": PROFILES[group]}})
        groups[group]["hosts"][name] = {"cleanup_docker_host": engine.docker_host}
    inventory = {"all": {
        "children": {"docker_hosts": {"children": groups}},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "cleanup_protect": {"references": [], "labels": ["reclaim.protect=true"]}, "cleanup_min_age": "0s",
                 "cleanup_retention": {"keep_last": 2}},
    }}
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "inventory.yml"
    path.write_text(json.dumps(inventory, indent=2))
    return path


def playbook(name: str, inventory: Path, *extra: str) -> int:
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), name, *extra]
    print("\n$ " + " ".join(["ansible-playbook"] + command[1:]), flush=True)
    return subprocess.call(command, env=env, cwd=ROOT)


def human(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{size} B"
        size /= 1024
    return str(size)


def run() -> int:
    fleet_engines = []
    # Every demo starts from fresh engines, so it shows the same thing each time.
    for engine in engines.running():
        if engine.name.startswith("demo-"):
            engines.stop(engine)
    for name, _group, flavour in FLEET:
        engine = engines.start(flavour, f"demo-{name}")
        scenario.build(engine.docker_host, scenario.realistic_mix(seed=len(fleet_engines)), prefix="demo")
        fleet_engines.append(engine)
        print(f"{name}: Docker {flavour} at {engine.docker_host}, seeded", flush=True)
    inventory = write_inventory(fleet_engines)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    reports = {mode: ROOT / "reclaim-reports" / f"demo-{stamp}-{mode}" for mode in ("audit", "cleanup")}
    status = playbook("reclaim.docker.disk_usage", inventory)
    status = status or playbook("reclaim.docker.audit", inventory, "-e", f"fleet_report_dir={reports['audit']}")
    if status:
        return status
    # The audit is reviewed and approved as it is; meanwhile a build on ci1 leaves a dangling image nobody approved.
    late = scenario.build(fleet_engines[1].docker_host, {"images": [{"name": "late", "tags": [], "layers": ["late"]}]},
                          prefix="demo-late").images["late"]["id"]
    print(f"\nci1: a dangling image appeared after the audit was approved: {late[7:19]}", flush=True)
    approved = reports["audit"] / "fleet-report.json"
    status = playbook("reclaim.docker.cleanup", inventory, "-e", f"fleet_report_dir={reports['cleanup']}",
                      "-e", f"reclaim_approved_plan={approved}")
    if status:
        return status
    audit, cleanup = (json.loads((reports[m] / "fleet-report.json").read_text()) for m in ("audit", "cleanup"))
    print("\nhost    profile        predicted (audit)   freed (cleanup)   same")
    for host, predicted in sorted(audit["hosts"].items()):
        freed = cleanup["hosts"][host]
        print(f"{host:<7} {predicted.get('profile') or '-':<14} {human(predicted['reclaimed_bytes']):>17}   "
              f"{human(freed['reclaimed_bytes']):>15}   {'yes' if predicted['reclaimed_bytes'] == freed['reclaimed_bytes'] else 'NO'}")
    print("\nthe cleanup applied the approved audit; refused as not approved:")
    for host, freed in sorted(cleanup["hosts"].items()):
        for item in freed["not_approved"]:
            print(f"  {host}: {item['type']} {item['name']} ({human(item['bytes'])}, {item['step']} step)")
    print("\nreports:")
    for mode, path in reports.items():
        print(f"  {mode}: {path}/fleet-report.{{json,md,html}}")
    return 0
