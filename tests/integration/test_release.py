"""The collection as a user gets it: the tarball built from this tree, installed offline into an empty collections
path next to community.docker, runs the audit playbook by its FQCN against a real engine; and the README Galaxy shows
from it starts as a user needs and links only to what the tarball holds or to the documentation site."""

from __future__ import annotations

import json
import os
import posixpath
import re
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


# A Markdown link's target: [text](target), the text possibly holding `code`.
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def run(command, **kwargs):
    completed = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def test_the_built_tarball_installs_offline_and_audits(tmp_path, engine, prefix):
    if engine.flavour != "28.5":
        pytest.skip("the tarball is the same for every engine: one is enough")
    tarball = build(tmp_path)
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


def build(output: Path) -> Path:
    run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(output), str(ROOT)])
    [tarball] = output.glob("reclaim-docker-*.tar.gz")
    return tarball


def heading_anchors(markdown: str) -> set:
    """The anchors of MARKDOWN's headings, as GitHub and Galaxy make them."""
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in markdown.splitlines() if line.startswith("#")}


def test_the_tarballs_readme_is_the_users_and_its_links_resolve_inside_it(tmp_path):
    with tarfile.open(build(tmp_path)) as archive:
        members = set(archive.getnames())
        manifest = json.load(archive.extractfile("MANIFEST.json"))["collection_info"]
        readme_name = manifest["readme"]
        readme = archive.extractfile(readme_name).read().decode()
        texts = {m: archive.extractfile(m).read().decode() for m in members if m.endswith(".md")}
    assert readme_name == "README-galaxy.md"
    # The contributors' README (make demo, CONTRIBUTING.md) stays in the repository.
    assert "README.md" not in members and "CONTRIBUTING.md" not in members

    # It starts as a user needs it: install, requirements, an inventory with become, the audit command.
    headings = [line for line in readme.splitlines() if line.startswith("## ")]
    assert headings[:4] == ["## Install", "## Requirements", "## A minimal inventory", "## Audit, then clean up"]
    assert "ansible-galaxy collection install reclaim.docker" in readme
    assert "ansible_become: true" in readme and "ansible-playbook -i inventory.yml reclaim.docker.audit" in readme
    assert "make " not in readme

    links = MARKDOWN_LINK.findall(readme)
    assert len(links) >= 8, links
    documentation = yaml.safe_load((ROOT / "galaxy.yml").read_text())["documentation"]
    for target in links:
        if "://" in target:
            assert target.startswith(documentation), f"{target}: only the documentation site may be linked"
            continue
        path, anchor = (target.split("#", 1) + [""])[:2]
        path = posixpath.normpath(path) if path else readme_name
        assert path in members, f"{target}: not in the tarball"
        if anchor:
            assert anchor in heading_anchors(texts[path]), f"{target}: no such heading in {path}"

    # The repository's README keeps the contributors' quick start at its top.
    top = (ROOT / "README.md").read_text().split("\n## ")[1]
    assert "make demo" in top and "make test" in top
