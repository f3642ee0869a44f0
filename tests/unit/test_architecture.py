"""The module side's layout, checked against the code: CONTRIBUTING's picture is the one tests/architecture.py
generates, module_utils has no import cycle, and no file imports another's private (_-prefixed) names."""

from __future__ import annotations

import architecture


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
