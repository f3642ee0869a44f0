"""The collection as a user gets it: the tarball built from this tree, installed offline into an empty collections
path next to community.docker, runs the audit playbook by its FQCN against a real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from harness import scenario

from conftest import COLLECTIONS

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def run(command, **kwargs):
    completed = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def test_the_built_tarball_installs_offline_and_audits(tmp_path, engine, prefix):
    if engine.flavour != "28.5":
        pytest.skip("the tarball is the same for every engine: one is enough")
    run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(ROOT)])
    [tarball] = tmp_path.glob("reclaim-docker-*.tar.gz")
    with tarfile.open(tarball) as archive:
        members = archive.getnames()
    assert "plugins/modules/prune.py" in members and "playbooks/audit.yml" in members
    assert not [m for m in members if m.split("/")[0] in ("tests", "pytest.ini", "Makefile", ".ci")], members

    installed = tmp_path / "collections"
    # Only the empty path: the checkout's own tree (this test's ANSIBLE_COLLECTIONS_PATH) must not be found.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_NOCOLOR="1")
    run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "-p", str(installed),
         str(tarball)], env=env)
    assert (installed / "ansible_collections" / "reclaim" / "docker" / "MANIFEST.json").is_file()
    (installed / "ansible_collections" / "community").symlink_to(COLLECTIONS / "ansible_collections" / "community")

    scenario.build(engine.docker_host, {"images": [{"name": "old", "tags": [], "layers": ["own"]}]}, prefix=prefix)
    inventory = {"all": {"children": {"docker_hosts": {"hosts": {"lone": {"cleanup_docker_host": engine.docker_host}}}},
                         "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    report_dir = tmp_path / "report"
    with scenario.unchanged(engine.docker_host, what="the audit from the tarball"):
        run([str(BIN / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"), "reclaim.docker.audit",
             "-e", f"fleet_report_dir={report_dir}"], env=env, cwd=tmp_path)
    report = json.loads((report_dir / "fleet-report.json").read_text())
    assert report["mode"] == "audit" and report["hosts"]["lone"]["status"] == "ok", report
    assert report["hosts"]["lone"]["reclaimed_bytes"] > 0
