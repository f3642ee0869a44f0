"""The compatibility matrix (`make matrix`): each cell in its own venvs, collections and engines.

    python -m matrix [--set full|ci] [CELL ...]     run the cells of a set (or the named ones), one after another
    python -m matrix --list                          list the cells and what they run

A cell's files are under .matrix/CELL: `controller` (a venv with the cell's ansible-core and the test tools of
tests/requirements.txt) and `collections` (the cell's community.docker and a link to this checkout:
RECLAIM_COLLECTIONS); the modules run on the cell's target Python as it is installed, with nothing added
(RECLAIM_TARGET_PYTHON): pyenv's, or Debian's /usr/bin/python3 for `system`. The cell's `pytest.log` and
`junit.xml` are there too. Its engines run under $MATRIX_ENGINE_STATE-CELL (RECLAIM_ENGINE_STATE), so that cells
never share a daemon with each other or with `make test`; they are stopped when the cell ends. Venvs and collections
are kept between runs and rebuilt when what they should hold changes. The results, with each cell's setup and test
times, are printed and written to .matrix/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from harness import engines
from matrix.cells import BY_NAME, COMMUNITY_DOCKER_WHEELS, ROOT, SETS, SUBSETS, Cell

WORK = ROOT / ".matrix"
WHEELS = ROOT / ".cache" / "wheels"
PIP_VERSION = "25.3"
STATE_PREFIX = os.environ.get("MATRIX_ENGINE_STATE") or "/tmp/reclaim-engines-matrix"
WORKERS = int(os.environ.get("MATRIX_WORKERS") or 3)
UNIT_REQUIREMENTS = ROOT / "tests" / "matrix" / "requirements-unit-3.9.txt"
# Tools of tests/requirements.txt a controller cell does not take: its own ansible-core replaces the pin,
# ansible-lint (not run in the matrix) would pull in another ansible-core, and the docs tools are not run there either.
NOT_FOR_CELLS = ("ansible-core", "ansible-lint", "antsibull-docs", "antsibull-changelog", "sphinx",
                 "sphinx-ansible-theme", "ansible-pygments")


class CellError(Exception):
    pass


def say(message=""):
    print(message, flush=True)


def run(command, **kwargs) -> str:
    completed = subprocess.run([str(c) for c in command], capture_output=True, text=True, check=False, **kwargs)
    if completed.returncode != 0:
        raise CellError(f"{' '.join(map(str, command))} failed ({completed.returncode}):\n"
                        f"{completed.stdout}{completed.stderr}")
    return completed.stdout


def find_python(version: str) -> str:
    """pythonVERSION from pyenv (its newest VERSION.x), else from PATH."""
    try:
        installed = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True,
                                   check=False).stdout.split()
    except OSError:
        installed = []
    candidates = sorted((v for v in installed if v.startswith(version + ".") and v.replace(".", "").isdigit()),
                        key=lambda v: tuple(int(p) for p in v.split(".")))
    if candidates:
        found = subprocess.run(["pyenv", "which", f"python{version}"], capture_output=True, text=True, check=False,
                               env=dict(os.environ, PYENV_VERSION=candidates[-1])).stdout.strip()
        if found:
            return found
    found = shutil.which(f"python{version}")
    if not found:
        raise CellError(f"Python {version} not found (pyenv or python{version} on PATH)")
    return found


def requirement_lines(path: Path) -> list:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def venv(path: Path, python_version: str, requirements: list) -> Path:
    """A venv at PATH with REQUIREMENTS on Python PYTHON_VERSION; reused while it holds exactly that."""
    spec = "\n".join([f"python {python_version}", f"pip {PIP_VERSION}", *requirements]) + "\n"
    python = path / "bin" / "python"
    stamp = path / ".matrix-spec"
    if stamp.exists() and stamp.read_text() == spec and python.exists():
        return python
    shutil.rmtree(path, ignore_errors=True)
    run([find_python(python_version), "-m", "venv", path])
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, f"pip=={PIP_VERSION}"])
    run([*pip, *requirements])
    (path / "pip-freeze.txt").write_text(run([python, "-m", "pip", "freeze"]))
    stamp.write_text(spec)
    return python


def ansible_wheel(version: str) -> Path:
    wheel = WHEELS / f"ansible-{version}-py3-none-any.whl"
    if not wheel.exists():
        run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps", "-d", WHEELS,
             f"ansible=={version}"])
    return wheel


def collections(path: Path, community_docker: str | None) -> Path:
    """ansible_collections/ with COMMUNITY_DOCKER (from the `ansible` wheel that bundles it) and this checkout."""
    stamp = path / ".community.docker"
    wanted = community_docker or "none"
    if not (stamp.exists() and stamp.read_text() == wanted):
        shutil.rmtree(path, ignore_errors=True)  # the link to this checkout is removed, never followed
        if community_docker:
            prefix = "ansible_collections/community/docker/"
            with zipfile.ZipFile(ansible_wheel(COMMUNITY_DOCKER_WHEELS[community_docker])) as wheel:
                wheel.extractall(path, [n for n in wheel.namelist() if n.startswith(prefix)])
            manifest = json.loads((path / prefix / "MANIFEST.json").read_text())
            if manifest["collection_info"]["version"] != community_docker:
                raise CellError(f"the wheel holds community.docker {manifest['collection_info']['version']}, "
                                f"not {community_docker}")
        (path / "ansible_collections" / "reclaim").mkdir(parents=True, exist_ok=True)
        (path / "ansible_collections" / "reclaim" / "docker").symlink_to(ROOT)
        stamp.write_text(wanted)
    return path


def flavour_filter(flavour: str) -> str:
    """A -k expression keeping FLAVOUR's parametrisations (and tests with no flavour)."""
    others = [f for f in engines.FLAVOURS if f != flavour]
    parts = [f"not {other}" for other in others if other not in flavour]
    if any(other in flavour for other in others):  # 28.5-containerd: "not 28.5" would drop it too, so name it
        parts.append(flavour)
    return " and ".join(parts)


def junit_counts(path: Path) -> dict:
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return counts
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    return counts


def setup(cell: Cell, cell_dir: Path) -> dict:
    """The cell's venvs and collections; returns the environment its tests run in."""
    if cell.unit_only:
        controller = venv(cell_dir / "controller", cell.controller_python,
                          [*requirement_lines(UNIT_REQUIREMENTS), f"ansible-core=={cell.core}"])
        return {"controller": controller, "collections": collections(cell_dir / "collections", None)}
    tools = [line for line in requirement_lines(ROOT / "tests" / "requirements.txt")
             if line.split("==")[0] not in NOT_FOR_CELLS]
    controller = venv(cell_dir / "controller", cell.controller_python, [*tools, f"ansible-core=={cell.core}"])
    target = "/usr/bin/python3" if cell.target_python == "system" else find_python(cell.target_python)
    return {"controller": controller, "target": target,
            "collections": collections(cell_dir / "collections", cell.community_docker)}


def run_cell(cell: Cell) -> dict:
    cell_dir = WORK / cell.name
    cell_dir.mkdir(parents=True, exist_ok=True)
    state = Path(f"{STATE_PREFIX}-{cell.name}")
    result = {"cell": cell.name, "describe": cell.describe(), "state": str(state), "setup_s": 0.0, "tests_s": 0.0}
    say(f"\n=== {cell.name}: {cell.describe()}")
    started = time.monotonic()
    try:
        built = setup(cell, cell_dir)
    except CellError as exc:
        result.update(status="setup failed", error=str(exc), setup_s=round(time.monotonic() - started, 1))
        say(f"{cell.name}: setup failed\n{exc}")
        return result
    result["setup_s"] = round(time.monotonic() - started, 1)

    env = dict(os.environ, RECLAIM_ENGINE_STATE=str(state), RECLAIM_COLLECTIONS=str(built["collections"]),
               ANSIBLE_COLLECTIONS_PATH=str(built["collections"]), PYTHONPATH=str(ROOT / "tests"),
               ANSIBLE_NOCOLOR="1")
    if "target" in built:
        env["RECLAIM_TARGET_PYTHON"] = str(built["target"])
    else:
        env.pop("RECLAIM_TARGET_PYTHON", None)
    junit = cell_dir / "junit.xml"
    junit.unlink(missing_ok=True)
    command = [built["controller"], "-m", "pytest", "-q", "-rfEs", "-o",
               f"pythonpath={built['collections']} {ROOT / 'tests'}", f"--junitxml={junit}"]
    if "modules" in cell.subsets:
        command += ["-k", flavour_filter(cell.flavour)]
    if "unit" not in cell.subsets:
        # Integration files side by side, each worker with engines of its own, as `make integration` runs them.
        command += ["-n", str(WORKERS), "--dist", "loadfile"]
    command += [str(ROOT / path) for subset in cell.subsets for path in SUBSETS[subset]]
    engines.stop_all(state)  # daemons a broken earlier run of this cell left
    started = time.monotonic()
    try:
        with open(cell_dir / "pytest.log", "w") as log:
            process = subprocess.Popen([str(c) for c in command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
            for line in process.stdout:
                log.write(line)
                sys.stdout.write(line)
            sys.stdout.flush()
            returncode = process.wait()
    finally:
        engines.stop_all(state)
        shutil.rmtree(state, ignore_errors=True)
    result["tests_s"] = round(time.monotonic() - started, 1)
    result.update(junit_counts(junit), returncode=returncode)
    # pytest exits 5 when it ran no test: a cell that ran nothing has not passed.
    result["status"] = "passed" if returncode == 0 and result["tests"] > 0 else "failed"
    say(f"--- {cell.name}: {result['status']} ({result['tests']} tests, {result['failures']} failed, "
        f"{result['errors']} errors, {result['skipped']} skipped; setup {result['setup_s']:.0f} s, "
        f"tests {result['tests_s']:.0f} s)")
    return result


def table(results: list) -> str:
    lines = ["| cell | what | result | tests | setup | run |", "|---|---|---|---|---|---|"]
    for r in results:
        tests = f"{r.get('tests', 0) - r.get('skipped', 0)} run"
        if r.get("skipped"):
            tests += f", {r['skipped']} skipped"
        lines.append(f"| {r['cell']} | {r['describe']} | {r['status']} | {tests} | {r['setup_s']:.0f} s | "
                     f"{r['tests_s']:.0f} s |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m matrix", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--set", default="full", choices=sorted(SETS), help="which cells (default: full)")
    parser.add_argument("--list", action="store_true", help="list the cells of the set and stop")
    parser.add_argument("cells", nargs="*", metavar="CELL", help=f"only these cells ({', '.join(BY_NAME)})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.cells if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown cell(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    cells = [BY_NAME[name] for name in args.cells] if args.cells else list(SETS[args.set])
    if args.list:
        for cell in cells:
            say(f"{cell.name}: {cell.describe()}")
        return 0

    started = time.monotonic()
    results = [run_cell(cell) for cell in cells]
    total = time.monotonic() - started
    WORK.mkdir(exist_ok=True)
    (WORK / "results.json").write_text(json.dumps({"cells": results, "total_s": round(total, 1)}, indent=2) + "\n")
    passed = sum(r["status"] == "passed" for r in results)
    say(f"\n{table(results)}\n\nmatrix: {len(results)} cells in {total / 60:.1f} min; results in .matrix/results.json")
    say(f"matrix: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
