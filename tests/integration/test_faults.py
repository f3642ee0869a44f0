"""Faults during apply on a real daemon: it stops in the middle of a run, answers later than `timeout`, or freezes.

The module talks to the daemon through a proxy (harness/proxy.py) that sees each request before the daemon does:
at the Nth image deletion it stops the daemon, holds the daemon's answer back, or freezes the daemon (SIGSTOP). The
record of what was done must survive (every removal that took effect listed with its bytes), a call without an answer
is unknown (never "not done": a frozen daemon carries it out when it resumes), the task must fail naming what was and
was not done, the bytes must be the engine's own drop, and a rerun once the daemon is back must complete the job.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
from urllib.parse import unquote

import docker
import pytest

from harness import engines, scenario
from harness.proxy import CountingProxy

FLAVOUR = "28.5"  # the fault paths are the client's, the same on every engine
IMAGES = 24
# The deletion at which the fault strikes: several waves of the apply's workers have run by then.
FAULT_AT = 9


@pytest.fixture(scope="module")
def own_engine():
    """A daemon of its own: these tests stop it."""
    started = engines.start(FLAVOUR, "it-faults")
    yield started
    engines.stop(started)


def build(engine, prefix):
    spec = {"layers": {"shared": 400_000, **{f"own{i}": 100_000 + 1_000 * i for i in range(IMAGES)}},
            "images": [{"name": f"i{i}", "tags": [f"lab/fault{i}:1"], "layers": ["shared", f"own{i}"],
                        "labels": {"reclaim.test": prefix}} for i in range(IMAGES)]}
    return scenario.build(engine.docker_host, spec, prefix=prefix)


def prune_args(prefix, proxy, **extra):
    return dict({"images": True, "images_filters": {"dangling": False, "label": [f"reclaim.test={prefix}"]},
                 "docker_host": proxy.docker_host, "layer_cache": False}, **extra)


def counting_image_deletions():
    """A function of (method, target) that gives the number of a request among the image deletions, else 0."""
    count = itertools.count(1)
    lock = threading.Lock()

    def number(method, target):
        if method != "DELETE" or "/images/" not in target:
            return 0
        with lock:
            return next(count)
    return number


def surviving(engine, prefix):
    api = docker.APIClient(base_url=engine.docker_host, version="auto")
    return {i["Id"] for i in api.images(filters={"label": f"reclaim.test={prefix}"})}


def by_status(result):
    groups = {}
    for action in result["actions"]:
        groups.setdefault(action["status"], []).append(action)
    return groups


def assert_rerun_completes(ansible, engine, prefix, proxy):
    size_before = scenario.layers_size(engine.docker_host)
    rerun = ansible.module("reclaim.docker.prune", prune_args(prefix, proxy), engine)
    assert rerun.get("failed") is not True, rerun.get("msg")
    assert surviving(engine, prefix) == set()
    assert rerun["reclaimed_bytes"] == size_before - scenario.layers_size(engine.docker_host)
    assert rerun["unknown_bytes"] == 0
    return rerun


def assert_unknown_apart(result, engine, prefix, size_before):
    """The drop of LayersSize is what took effect plus the unknown actions the engine did carry out (their images are
    gone): each unknown one priced apart, by what it frees if it took effect. Returns those carried out."""
    left = surviving(engine, prefix)
    unknown = by_status(result).get("unknown", [])
    carried_out = [a for a in unknown if a["image"] not in left]
    assert result["unknown_bytes"] == sum(a["bytes"] for a in unknown)
    assert size_before - scenario.layers_size(engine.docker_host) == (
        result["reclaimed_bytes"] + sum(a["bytes"] for a in carried_out))
    return carried_out


def test_the_daemon_stops_in_the_middle_of_a_prune(ansible, own_engine, prefix, tmp_path):
    build(own_engine, prefix)
    size_before = scenario.layers_size(own_engine.docker_host)
    stopping, stopped = threading.Event(), threading.Event()
    under_way_answered = []

    def stop_daemon():
        stopping.set()
        # The calls already under way get their answers first, however long the daemon takes; the later ones wait.
        under_way_answered.append(proxy.wait_answered(120))
        engines.kill_daemon_only(own_engine)
        stopped.set()

    number = counting_image_deletions()

    def on_request(method, target):
        if stopping.is_set():
            stopped.wait()  # every call from now on finds the daemon gone
        elif number(method, target) == FAULT_AT:
            stop_daemon()

    with CountingProxy(tmp_path / "proxy.sock", own_engine.socket_path, on_request) as proxy:
        result = ansible.module("reclaim.docker.prune", prune_args(prefix, proxy), own_engine)
        assert stopped.wait(60), "the daemon did not stop"
        assert under_way_answered == [True], "the daemon did not answer the calls under way"
        assert result["failed"] is True and "Traceback" not in result["msg"]
        groups = by_status(result)
        assert set(groups) <= {"done", "unknown", "failed", "not_run"} and groups.get("not_run"), groups.keys()
        done, unknown, failed = groups["done"], groups.get("unknown", []), groups.get("failed", [])
        # The calls sent once it was stopping got no answer (unknown, their checks unanswered too); one refused at
        # connect was never sent (failed).
        assert len(done) >= FAULT_AT - 1 and unknown + failed
        assert f"{len(done)} of {len(result['actions'])} actions took effect" in result["msg"], result["msg"]
        assert "not started" in result["msg"] and "no answer from the engine" in result["msg"]
        assert all("whether it took effect is unknown" in a["engine_reason"] for a in unknown)
        assert all("the call was not sent" in a["engine_reason"] for a in failed)
        assert result["reclaimed_bytes"] == sum(a["bytes"] for a in done) > 0

        engines.start(FLAVOUR, own_engine.name)
        left = surviving(own_engine, prefix)
        assert not {a["image"] for a in done} & left, "an action reported done did not take effect"
        assert {a["image"] for a in groups["not_run"] + failed} <= left, "an action reported not done took effect"
        assert_unknown_apart(result, own_engine, prefix, size_before)
        assert_rerun_completes(ansible, own_engine, prefix, proxy)


def test_a_daemon_slower_than_timeout(ansible, own_engine, prefix, tmp_path):
    build(own_engine, prefix)
    size_before = scenario.layers_size(own_engine.docker_host)
    timeout = 2
    number = counting_image_deletions()

    def on_request(method, target):
        # From the FAULT_AT-th deletion on, the daemon deletes at once but answers after the module stopped waiting.
        return timeout + 2 if number(method, target) >= FAULT_AT else None
    with CountingProxy(tmp_path / "proxy.sock", own_engine.socket_path, on_request) as proxy:
        result = ansible.module("reclaim.docker.prune", prune_args(prefix, proxy, timeout=timeout), own_engine)
        assert result["failed"] is True and "Traceback" not in result["msg"]
        groups = by_status(result)
        assert set(groups) == {"done", "not_run"}, "the late answers' deletions are confirmed done, not failed"
        late = [a for a in groups["done"] if "had taken effect when checked afterwards" in a.get("engine_reason", "")]
        # The calls under way when the first timed out (one per apply worker) answered late too.
        assert 1 <= len(late) <= 4 and all("no answer from the engine" in a["engine_reason"] for a in late)
        assert all(a["bytes"] > 0 for a in late) and len(groups["done"]) == FAULT_AT - 1 + len(late)
        assert "not started" in result["msg"] and late[0]["reference"] in result["msg"]
        assert result["reclaimed_bytes"] == sum(a["bytes"] for a in groups["done"])
        assert result["reclaimed_bytes"] == size_before - scenario.layers_size(own_engine.docker_host)
        assert {a["image"] for a in groups["not_run"]} == surviving(own_engine, prefix)
        assert_rerun_completes(ansible, own_engine, prefix, proxy)


@pytest.mark.parametrize("resumed", ["after the run", "at the first check"])
def test_a_frozen_daemon_leaves_unanswered_calls_unknown_and_a_rerun_settles_them(ansible, engine, prefix, tmp_path,
                                                                                  resumed):
    """The daemon is frozen (SIGSTOP) at the FAULT_AT-th deletion of a real prune with a short timeout: the calls under
    way get no answer. Resumed after the run, the module's checks get none either. Resumed at the module's first check,
    the check of the FAULT_AT-th call finds its image still there, since that call reaches the daemon only after the
    run (it waited in the proxy as it would in the frozen daemon's socket). Neither is "not taken effect": the daemon
    carries the calls out when it resumes. Every engine: what it does with a call whose client has gone is its own."""
    build(engine, prefix)
    size_before = scenario.layers_size(engine.docker_host)
    pid = engine.pid()
    frozen, held, release = threading.Event(), [], threading.Event()
    number = counting_image_deletions()

    def resume():
        if frozen.is_set():
            os.kill(pid, signal.SIGCONT)
            frozen.clear()

    def on_request(method, target):
        if number(method, target) == FAULT_AT:
            os.kill(pid, signal.SIGSTOP)
            frozen.set()
            if resumed == "at the first check":
                held.append(unquote(target.split("/images/", 1)[1].split("?", 1)[0]))
                release.wait()  # this call reaches the daemon once the run is over
        elif method == "GET" and frozen.is_set() and resumed == "at the first check":
            resume()

    try:
        with CountingProxy(tmp_path / "proxy.sock", engine.socket_path, on_request) as proxy:
            result = ansible.module("reclaim.docker.prune", prune_args(prefix, proxy, timeout=3), engine)
            resume()
            release.set()
            assert proxy.wait_idle(120), "the daemon did not answer the calls it was sent once resumed"

            assert result["failed"] is True and "Traceback" not in result["msg"]
            groups = by_status(result)
            assert set(groups) <= {"done", "unknown", "not_run"}, groups.keys()
            unknown = groups["unknown"]
            assert 1 <= len(unknown) <= 4  # the calls under way, one per apply worker
            assert all(a["engine_reason"].startswith("no answer from the engine") and a["bytes"] > 0 for a in unknown)
            assert not any("not taken effect" in a.get("engine_reason", "") for a in result["actions"])
            if resumed == "after the run":
                assert all(a["engine_reason"].endswith("the engine still gives no answer") for a in unknown)
            else:
                still_there = [a for a in unknown if a["reference"] in held]
                assert len(still_there) == 1 and "still there when checked afterwards" in still_there[0]["engine_reason"]
            assert result["reclaimed_bytes"] == sum(a["bytes"] for a in groups["done"])
            assert result["unknown_bytes"] == sum(a["bytes"] for a in unknown) > 0
            assert f"{len(unknown)} got no answer and may still take effect, freeing up to {result['unknown_bytes']}" \
                   in result["msg"] and "a rerun reads the engine afresh, which settles them" in result["msg"]
            assert all(f"{a['reference']} (status unknown)" in result["msg"] for a in unknown)
            assert {a["image"] for a in groups["not_run"]} <= surviving(engine, prefix)
            carried_out = assert_unknown_apart(result, engine, prefix, size_before)

            rerun = assert_rerun_completes(ansible, engine, prefix, proxy)
            # Settled: what the daemon carried out is not planned again; the rest is removed now.
            assert not {a["image"] for a in carried_out} & set(rerun["images"])
            assert {a["image"] for a in unknown} - {a["image"] for a in carried_out} <= set(rerun["images"])
    finally:
        resume()
        release.set()
