"""Real engines and real ansible-playbook runs for the integration tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from harness import engines, scenario

HERE = Path(__file__).resolve().parent
# `make matrix` points a cell at its own collections (another community.docker) and at another Python on the
# target; by default, this checkout's .collections and the host's own Python as Debian ships it, with nothing
# installed for it (the modules need the standard library only, as on a stock Docker host).
COLLECTIONS = Path(os.environ.get("RECLAIM_COLLECTIONS") or HERE.parents[1] / ".collections")
TARGET_PYTHON = os.environ.get("RECLAIM_TARGET_PYTHON") or "/usr/bin/python3"
# community.docker's modules need `requests` (and some the Docker SDK) on the target: its tasks run on the tests' own
# Python, which has both, while ours run on the stock TARGET_PYTHON.
COMMUNITY_DOCKER_PYTHON = sys.executable


def reachable_by_others(path):
    """Whether a user other than its owner (a service's) can run PATH: every directory above it is searchable by all."""
    return all(os.stat(parent).st_mode & 0o001 for parent in Path(path).resolve().parents)


# The usage tracker runs as a user of its own, which cannot reach root's pyenv (the matrix's oldest target): there it
# runs on Debian's Python, as the role's default has it.
TRACKER_PYTHON = TARGET_PYTHON if reachable_by_others(TARGET_PYTHON) else "/usr/bin/python3"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
# For ansible_runner.run (AWX's runner), which starts `ansible-playbook` from PATH: this venv's first.
RUNNER_ENV = {"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0",
              "PATH": os.pathsep.join([str(Path(ANSIBLE_PLAYBOOK).parent), os.environ.get("PATH", "")])}


@pytest.fixture(scope="session", params=engines.FLAVOURS)
def engine(request):
    """One private daemon per flavour, shared by the tests of a session."""
    # pytest-xdist (`make integration`) runs each test file on one worker: a worker's engines are its own.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    started = engines.start(request.param, f"it-{request.param.replace('.', '')}-{worker}")
    yield started
    engines.stop(started)


@pytest.fixture
def prefix():
    """A random name prefix, so tests sharing an engine never see each other's objects."""
    return "t" + uuid.uuid4().hex[:8]


class PlaybookRun:
    def __init__(self, returncode, output, results):
        self.returncode = returncode
        self.output = output
        self.results = results

    def task(self, name, host=None):
        """The result of the task NAME (on HOST), which must have run exactly once."""
        found = [r for r in self.results if r["task"] == name and (host is None or r["host"] == host)]
        assert len(found) == 1, f"task {name!r} ran {len(found)} times:\n{self.output}"
        return found[0]


def on_community_docker_python(task):
    """TASK, run on COMMUNITY_DOCKER_PYTHON when it is a community.docker module's."""
    if not any(key.startswith("community.docker.") for key in task):
        return task
    return dict(task, vars=dict(task.get("vars") or {}, ansible_python_interpreter=COMMUNITY_DOCKER_PYTHON))


class Ansible:
    """Runs tasks through ansible-playbook against Docker hosts, as users run them."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.runs = 0

    def play(self, tasks, hosts, check=False, diff=False, extra_args=(), module_defaults=None) -> PlaybookRun:
        """Run TASKS on HOSTS (inventory name -> docker_host) and return every task's recorded result. MODULE_DEFAULTS
        replaces the play's own (group/reclaim.docker.docker with each host's docker_host)."""
        self.runs += 1
        run_dir = self.workdir / f"run{self.runs}"
        run_dir.mkdir()
        inventory = {"all": {"hosts": {name: {"reclaim_docker_host": url} for name, url in hosts.items()},
                             "vars": {"ansible_connection": "local", "ansible_python_interpreter": TARGET_PYTHON}}}
        playbook = [{
            "name": "reclaim.docker integration test",
            "hosts": "all",
            "gather_facts": False,
            "module_defaults": module_defaults if module_defaults is not None else {
                "group/reclaim.docker.docker": {"docker_host": "{{ reclaim_docker_host }}"}},
            "tasks": [on_community_docker_python(task) for task in tasks],
        }]
        (run_dir / "inventory.yml").write_text(yaml.safe_dump(inventory))
        (run_dir / "playbook.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))
        record = run_dir / "results.json"
        env = dict(os.environ,
                   ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
                   RECLAIM_RECORD_FILE=str(record),
                   ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"),
                   ANSIBLE_CALLBACKS_ENABLED="record_results",
                   ANSIBLE_NOCOLOR="1",
                   ANSIBLE_RETRY_FILES_ENABLED="0")
        command = [ANSIBLE_PLAYBOOK, "-i", str(run_dir / "inventory.yml"), str(run_dir / "playbook.yml"), *extra_args]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        output = completed.stdout + completed.stderr
        assert record.exists(), f"ansible-playbook recorded nothing:\n{output}"
        return PlaybookRun(completed.returncode, output, json.loads(record.read_text()))

    def module(self, module, args, engine, check=False, diff=False):
        """Run one module task on ENGINE; return its result dict (failed or not). A check-mode run must leave the
        engine as it found it."""
        with scenario.unchanged(engine.docker_host) if check else contextlib.nullcontext():
            run = self.play([{"name": "under test", module: args}], {"host": engine.docker_host}, check=check,
                            diff=diff)
        return run.task("under test")["result"]

    def check_then_real(self, module, args, engine, same, diff=False, may_fail=False):
        """Check mode, then the real run, as community.docker's targets do. Asserts that check mode changed
        nothing on ENGINE and predicted the real run's SAME keys; returns both results."""
        predicted = self.module(module, args, engine, check=True, diff=diff)
        assert may_fail or predicted.get("failed") is not True, predicted.get("msg")
        real = self.module(module, args, engine, diff=diff)
        assert may_fail or real.get("failed") is not True, real.get("msg")
        for key in same:
            assert predicted.get(key) == real.get(key), f"{key}: check {predicted.get(key)} != real {real.get(key)}"
        return predicted, real


@pytest.fixture
def ansible(tmp_path):
    return Ansible(tmp_path)


@pytest.fixture(scope="session")
def promtool():
    """Prometheus' promtool (Debian's prometheus package), installed with apt-get when missing, as the harness installs
    its packages."""
    if not shutil.which("promtool"):
        engines._apt_install("prometheus")  # pylint: disable=protected-access
    return shutil.which("promtool")
