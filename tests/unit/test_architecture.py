"""The module side's layout, checked against the code: CONTRIBUTING's picture is the one tests/architecture.py
generates, module_utils has no import cycle, no file imports another's private (_-prefixed) names, and what the usage
tracker runs on the Docker host needs no Ansible."""

from __future__ import annotations

import ast
import sys

import architecture
import pytest
import yaml


def test_contributing_shows_the_architecture_the_code_has():
    expected = architecture.render()
    assert architecture.block(architecture.CONTRIBUTING.read_text()) == expected, \
        "CONTRIBUTING.md's picture is stale: run `python tests/architecture.py --write`"


def test_module_utils_have_no_import_cycle():
    utils, _modules = architecture.graph()
    assert sum(len(layer) for layer in architecture.layers(utils)) == len(utils)


def test_no_file_imports_another_s_private_names():
    private = []
    for path in sorted((architecture.ROOT / "plugins").rglob("*.py")):
        _files, names = architecture.imports(architecture.parsed(path))
        private += [f"{path.name}: {module}.{name}" for module, name in names if name.startswith("_")]
    assert private == []


@pytest.mark.skipif(sys.version_info < (3, 10), reason="sys.stdlib_module_names is Python 3.10's (make unit runs it)")
def test_the_usage_tracker_s_files_need_only_the_standard_library_and_each_other():
    """The usage_tracker role copies these module_utils files to the Docker host and runs them without Ansible."""
    tasks = yaml.safe_load((architecture.ROOT / "roles/usage_tracker/tasks/main.yml").read_text())
    install = "Install the collection's ledger and transport code"
    copied = next(task["loop"] for task in walk_tasks(tasks) if task.get("name") == install)
    program = architecture.ROOT / "roles/usage_tracker/files/reclaim_usage_tracker.py"
    paths = [architecture.ROOT / "plugins/module_utils" / name for name in copied] + [program]
    for path in paths:
        for node in ast.walk(architecture.parsed(path)):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.startswith(architecture.PACKAGE + "."):
                    assert module.rsplit(".", 1)[1] + ".py" in copied, f"{path.name} imports {module}, not copied"
                else:
                    top = module.split(".")[0]
                    assert top in sys.stdlib_module_names or top == "__future__", f"{path.name} imports {module}"


def walk_tasks(tasks):
    for task in tasks:
        yield task
        for key in ("block", "rescue", "always"):
            yield from walk_tasks(task.get(key, []))
