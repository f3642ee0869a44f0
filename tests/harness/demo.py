"""`make demo`: a fleet of three local engines, seeded, then the collection's playbooks on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness import engines, scenario

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".build" / "demo"
# One engine per inventory group; each flavour once, so the demo shows all three.
FLEET = (("dev1", "dev", "28.5-containerd"), ("ci1", "ci", "28.5"), ("prod1", "prod", "20.10"))


def write_inventory(fleet_engines) -> Path:
    lines = ["all:", "  children:", "    docker_hosts:", "      children:"]
    for group in sorted({group for _name, group, _flavour in FLEET}):
        lines += [f"        {group}:", "          hosts:"]
        for (name, member_group, _flavour), engine in zip(FLEET, fleet_engines):
            if member_group == group:
                lines += [f"            {name}:", f"              reclaim_docker_host: {engine.docker_host}"]
    lines += ["  vars:", "    ansible_connection: local", f"    ansible_python_interpreter: {sys.executable}"]
    WORK.mkdir(parents=True, exist_ok=True)
    inventory = WORK / "inventory.yml"
    inventory.write_text("\n".join(lines) + "\n")
    return inventory


def playbook(name: str, inventory: Path, *extra: str) -> int:
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
               str(ROOT / "playbooks" / f"{name}.yml"), *extra]
    print("\n$ " + " ".join(command[1:]), flush=True)
    return subprocess.call(command, env=env, cwd=ROOT)


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
    return playbook("disk_usage", inventory)
