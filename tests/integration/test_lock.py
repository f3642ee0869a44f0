"""Overlapping runs on one host: two cleanups of one engine never read, plan and apply at once.

A real run holds the engine's lock (a flock on a file in lock_dir) from before it reads the engine until it ends. The
second run waits, then plans on what the first left; after lock_timeout it fails naming the holder, having changed
nothing. A lock left by a killed process never blocks, and check mode takes no lock at all.

Runs go through ansible-playbook, as users run them; the test process takes the same lock (EngineLock on the same
file) to hold the runs back until both are waiting, which makes the overlap certain.
"""

from __future__ import annotations

import glob
import os
import re
import signal
import subprocess
import sys
import threading
import time

import docker
import pytest

from harness import engines, scenario

from conftest import Ansible
from ansible_collections.reclaim.docker.plugins.module_utils._lock import EngineLock, lock_file_name, parse_identity

FLAVOUR = "28.5"  # the lock is the host's, the same whatever the engine
IMAGES = 12
# A process that takes the lock, says so, and holds it until its stdin closes (or it is killed).
HOLDER = """
import sys
from ansible_collections.reclaim.docker.plugins.module_utils._lock import EngineLock
lock = EngineLock(sys.argv[1], sys.argv[2], module_name="reclaim.docker.prune").acquire(30)
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def own_engine():
    started = engines.start(FLAVOUR, "it-lock")
    yield started
    engines.stop(started)


@pytest.fixture
def built(own_engine, prefix):
    spec = {"layers": {"shared": 300_000, **{f"own{i}": 50_000 + 1_000 * i for i in range(IMAGES)}},
            "images": [{"name": f"i{i}", "tags": [f"lab/lock{i}:1"], "layers": ["shared", f"own{i}"],
                        "labels": {"reclaim.test": prefix}} for i in range(IMAGES)]}
    return scenario.build(own_engine.docker_host, spec, prefix=prefix)


@pytest.fixture
def lock_dir(tmp_path):
    directory = tmp_path / "locks"
    directory.mkdir(mode=0o700)
    return directory


@pytest.fixture
def holder(lock_dir, own_engine):
    """Start a process that holds the engine's lock in LOCK_DIR; returns its Popen once it holds it."""
    started = []

    def start():
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        process = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_dir), engine_id(own_engine)], env=env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def engine_id(engine):
    return docker.APIClient(base_url=engine.docker_host, version="auto").info()["ID"]


def lock_path(lock_dir, engine):
    return str(lock_dir / lock_file_name(engine_id(engine)))


def prune_args(prefix, lock_dir, **extra):
    return dict({"images": True, "images_filters": {"dangling": False, "label": [f"reclaim.test={prefix}"]},
                 "layer_cache": False, "lock_dir": str(lock_dir)}, **extra)


def surviving(engine, prefix):
    api = docker.APIClient(base_url=engine.docker_host, version="auto")
    return {i["Id"] for i in api.images(filters={"label": f"reclaim.test={prefix}"})}


def openers(path):
    """The processes other than this one that have PATH open: the lock's holder and its waiters."""
    pids = set()
    for fd_dir in glob.glob("/proc/[0-9]*/fd"):
        pid = int(fd_dir.split("/")[2])
        if pid == os.getpid():
            continue
        try:
            links = [os.readlink(os.path.join(fd_dir, fd)) for fd in os.listdir(fd_dir)]
        except OSError:
            continue  # ended meanwhile
        if path in links:
            pids.add(pid)
    return pids


def run_at_once(engine, workdir, args_list):
    """Run each ARGS of ARGS_LIST as its own ansible-playbook, all started at once; returns (threads, results)."""
    results = [None] * len(args_list)

    def run(index, args):
        results[index] = Ansible(workdir / f"run-{index}").module("reclaim.docker.prune", args, engine)

    threads = [threading.Thread(target=run, args=(index, args)) for index, args in enumerate(args_list)]
    for index, thread in enumerate(threads):
        (workdir / f"run-{index}").mkdir()
        thread.start()
    return threads, results


def waited_for(result):
    """The holders a run's 'Waited ...' warning names, in order, without the time behind each (None when it did not
    wait)."""
    warnings = [w for w in result.get("warnings", []) if w.startswith("Waited ")]
    assert len(warnings) <= 1, warnings
    if not warnings:
        return None
    holders = warnings[0].split(", held by ", 1)[1].removesuffix(".").split(", then by ")
    return [re.sub(r" for [0-9.]+ s$", "", holder) for holder in holders]


def assert_applied_one_after_the_other(engine, built, prefix, results, size_before):
    for result in results:
        assert result.get("failed") is not True, result.get("msg")
    removed = [set(result["images"]) for result in results]
    assert sum(len(r) for r in removed) == len(set().union(*removed)), "an image was reported removed twice"
    assert set().union(*removed) == {image["id"] for image in built.images.values()}
    assert surviving(engine, prefix) == set()
    assert sum(r["reclaimed_bytes"] for r in results) == size_before - scenario.layers_size(engine.docker_host)


def test_two_runs_held_back_then_applied_one_after_the_other(own_engine, built, prefix, lock_dir, tmp_path):
    """Both runs wait for the test's lock; once it is released, one takes the lock and removes everything, the other
    waits for it and then plans on what it left: nothing. Both were waiting while every image was there, so had either
    read the engine before it held the lock, or the first let go before its last removal, the second would have
    planned removals too. Whether the second's tries read the first as the holder depends on how long the first
    holds the lock (a try every 0.15 s), so that is not asserted."""
    size_before = scenario.layers_size(own_engine.docker_host)
    path = lock_path(lock_dir, own_engine)
    held = EngineLock(str(lock_dir), engine_id(own_engine), module_name="the test").acquire(0)
    threads, results = run_at_once(own_engine, tmp_path, [prune_args(prefix, lock_dir)] * 2)
    try:
        deadline = time.monotonic() + 120
        while len(openers(path)) < 2:
            assert time.monotonic() < deadline and all(t.is_alive() for t in threads), "the runs never waited"
            time.sleep(0.1)
        assert surviving(own_engine, prefix) == {image["id"] for image in built.images.values()}
    finally:
        held.release()
        for thread in threads:
            thread.join()
    assert_applied_one_after_the_other(own_engine, built, prefix, results, size_before)
    first, second = sorted(results, key=lambda r: -len(r["images"]))
    assert first["changed"] and len(first["images"]) == IMAGES and first["skipped_items"] == []
    assert {a["status"] for a in first["actions"]} == {"done"}
    # The second planned on what the first left: it read the engine after the first's last removal.
    assert not second["changed"] and second["images"] == [] and second["reclaimed_bytes"] == 0
    assert second["plan"]["objects"] == [] and second["actions"] == [] and second["skipped_items"] == []
    # Both waited, behind the test first. Then the first took the lock: it waited behind no other run; the second
    # waited behind prune runs only (the first, if a try read it while it held the lock).
    unnamed = "a process that has not yet written who it is"
    for result in (first, second):
        behind = waited_for(result)
        assert behind[0].startswith(f"pid {os.getpid()} on host ") and " (the test) since " in behind[0], behind
    assert all(holder == unnamed for holder in waited_for(first)[1:]), waited_for(first)
    assert all(holder == unnamed or " (reclaim.docker.prune) since " in holder for holder in waited_for(second)[1:])
    assert open(path, "rb").read() == b""  # released, naming nobody


def test_two_runs_started_together_both_succeed(own_engine, built, prefix, lock_dir, tmp_path):
    """The same with nothing holding them back: however they overlap, neither fails and nothing is counted twice."""
    size_before = scenario.layers_size(own_engine.docker_host)
    threads, results = run_at_once(own_engine, tmp_path, [prune_args(prefix, lock_dir)] * 2)
    for thread in threads:
        thread.join()
    assert_applied_one_after_the_other(own_engine, built, prefix, results, size_before)


def test_a_held_lock_fails_the_run_after_lock_timeout_naming_the_holder(ansible, own_engine, built, prefix, lock_dir,
                                                                        holder):
    process = holder()
    started = time.monotonic()
    with scenario.unchanged(own_engine.docker_host, what="a run that did not get the lock"):
        result = ansible.module("reclaim.docker.prune", prune_args(prefix, lock_dir, lock_timeout=2), own_engine)
    assert time.monotonic() - started >= 2
    assert result["failed"] is True and "Traceback" not in result["msg"]
    assert result["msg"].startswith(f"Another cleanup holds the lock of engine {engine_id(own_engine)} at "
                                    f"{own_engine.docker_host} since "), result["msg"]
    assert f": pid {process.pid} on host " in result["msg"] and "(reclaim.docker.prune)" in result["msg"]
    assert "waited 2 s (lock_timeout). Nothing was changed." in result["msg"]


def test_the_role_passes_the_lock_variables(ansible, own_engine, built, prefix, lock_dir, holder):
    """cleanup_lock_timeout and cleanup_lock_dir reach the prune step: held, it fails and the result says why."""
    process = holder()
    with scenario.unchanged(own_engine.docker_host, what="a cleanup that did not get the lock"):
        run = ansible.play([{"name": "cleanup", "ansible.builtin.include_role": {"name": "reclaim.docker.cleanup"},
                             "vars": {"cleanup_docker_host": own_engine.docker_host, "cleanup_lock_timeout": 0,
                                      "cleanup_lock_dir": str(lock_dir)}},
                            {"name": "result", "ansible.builtin.debug": {"var": "cleanup_result"}}],
                           {"host": own_engine.docker_host})
    recorded = run.task("result")["result"]["cleanup_result"]
    assert recorded["status"] == "failed" and recorded["mode"] == "cleanup", recorded
    assert f"pid {process.pid} on host " in recorded["error"] and "waited 0 s (lock_timeout)" in recorded["error"]


def test_a_killed_holder_never_blocks(ansible, own_engine, built, prefix, lock_dir, holder):
    process = holder()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    path = lock_path(lock_dir, own_engine)
    assert parse_identity(open(path, "rb").read())["pid"] == process.pid  # its text is left behind
    result = ansible.module("reclaim.docker.prune", prune_args(prefix, lock_dir, lock_timeout=0), own_engine)
    assert result.get("failed") is not True, result.get("msg")
    assert len(result["images"]) == IMAGES and surviving(own_engine, prefix) == set()
    assert waited_for(result) is None  # taken at once
    assert open(path, "rb").read() == b""


def test_check_mode_takes_no_lock(ansible, own_engine, built, prefix, lock_dir, holder, tmp_path):
    holder()
    # Ansible.module wraps a check run in scenario.unchanged. Had it tried the held lock, lock_timeout 0 would fail it.
    held = ansible.module("reclaim.docker.prune", prune_args(prefix, lock_dir, lock_timeout=0), own_engine, check=True)
    assert held.get("failed") is not True, held.get("msg")
    assert len(held["images"]) == IMAGES and waited_for(held) is None
    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.mkdir()
    for directory in (empty, missing):
        result = ansible.module("reclaim.docker.prune", prune_args(prefix, directory), own_engine, check=True)
        assert result.get("failed") is not True, result.get("msg")
        assert result["images"] == held["images"]
    assert list(empty.iterdir()) == [] and not missing.exists()
