"""storage_leaks' job through the real runner, on a stub engine whose root dir is laid out as overlay2 lays it out in a
temporary directory: its options, the plan (old leaks go, young and mounted ones stay), check mode, the removals, and
the refusals that change nothing."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from root_dirs import overlay2_root
from snapshot_helpers import make_snapshot
from stub_engine import ENGINE_ID, StubEngine, run

from ansible_collections.reclaim.docker.plugins.module_utils import _runner, _storage_leaks
from ansible_collections.reclaim.docker.plugins.module_utils._leak_job import LeakJob
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem

LAYER, LEAK, MOUNTED = "a" * 64, "b" * 64, "d" * 64


def engine(root, store="overlay2"):
    return StubEngine(make_snapshot([("x", ["lab/x:1"], ["x"], None)], store=store), root_dir=str(root))


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A root dir with a layer the layer database names and two it does not, one of them used by a mount."""
    root = overlay2_root(tmp_path / "docker", LAYER, [LEAK, MOUNTED])
    (root / "engine-id").write_text(ENGINE_ID)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"40 25 0:40 / {root}/overlay2/{MOUNTED}/merged rw - overlay overlay rw,lowerdir=/x\n")
    monkeypatch.setattr(_storage_leaks, "MOUNTINFO", str(mountinfo))
    return root


@pytest.fixture
def later(monkeypatch):
    """The runner's clock 30 hours on: the leaks just written are older than the default min_age (24h) then."""
    now = time.time() + 30 * 3600
    monkeypatch.setattr(_runner, "time", SimpleNamespace(time=lambda: now))


def test_check_mode_plans_the_old_leak_and_keeps_the_mounted_one(root, tmp_path, later):
    result = run(LeakJob, engine(root), {}, tmp_path, check=True)
    assert [a["path"] for a in result["actions"]] == [f"{root}/overlay2/{LEAK}"]
    assert [leak["path"] for leak in result["leaks"]] == [f"{root}/overlay2/{LEAK}"]
    assert [(k["path"], k["reason"]) for k in result["kept"]] == [
        (f"{root}/overlay2/{MOUNTED}", "a mount uses it (/proc/self/mountinfo)")]
    assert result["changed"] is True and result["reclaimed_bytes"] == result["actions"][0]["bytes"] >= 10_000
    assert result["leaked_bytes"] >= 2 * 10_000 and result["root_dir"] == str(root)
    assert (root / "overlay2" / LEAK).exists()


def test_a_real_run_removes_what_check_mode_predicted(root, tmp_path, later):
    predicted = run(LeakJob, engine(root), {}, tmp_path, check=True)
    result = run(LeakJob, engine(root), {}, tmp_path)
    assert [a["status"] for a in result["actions"]] == ["done"]
    assert result["reclaimed_bytes"] == predicted["reclaimed_bytes"] and result["changed"] is True
    assert not (root / "overlay2" / LEAK).exists()
    assert (root / "overlay2" / LAYER / "diff" / "data").exists() and (root / "overlay2" / MOUNTED).exists()
    assert run(LeakJob, engine(root), {}, tmp_path)["changed"] is False


def test_a_leak_changed_within_min_age_stays(root, tmp_path, later):
    result = run(LeakJob, engine(root), {"min_age": "48h"}, tmp_path, check=True)
    assert result["actions"] == [] and result["changed"] is False
    assert {k["path"]: k["reason"].split(":")[0] for k in result["kept"]} == {
        f"{root}/overlay2/{LEAK}": "too young", f"{root}/overlay2/{MOUNTED}": "too young"}


def test_a_root_dir_of_another_engine_changes_nothing(root, tmp_path):
    (root / "engine-id").write_text("OTHER:ENGINE")
    result = run(LeakJob, engine(root), {}, tmp_path)
    assert result["failed"] is True and result["msg"].startswith("Cannot tell leaked storage: the root dir")
    assert result["msg"].endswith("Nothing was changed.") and (root / "overlay2" / LEAK).exists()


def test_an_inexact_scan_changes_nothing(root, tmp_path):
    """The engine's containerd keeps its store outside the root dir: what looks leaked may be in use."""
    result = run(LeakJob, engine(root, store="containerd"), {}, tmp_path)
    assert result["failed"] is True and "a system containerd" in result["msg"]
    assert result["msg"].endswith("Nothing was changed.") and (root / "overlay2" / LEAK).exists()


@pytest.mark.parametrize("docker_host, min_age, refused", [
    ("unix:///var/run/docker.sock", "24h", None),
    ("unix:///var/run/docker.sock", "soon", "min_age"),
    ("tcp://127.0.0.1:2375", "24h", "unix://"),
])
def test_the_job_refuses_bad_options_before_the_engine_is_contacted(docker_host, min_age, refused):
    params = dict(timeout=60, api_version="auto", tls=False, validate_certs=False, ca_path=None, client_cert=None,
                  client_key=None, tls_hostname=None, docker_host=docker_host, min_age=min_age)
    if refused is None:
        assert LeakJob(params, check_mode=True, now=0).min_age == 24 * 3600
    else:
        with pytest.raises(ValueProblem, match=refused):
            LeakJob(params, check_mode=True, now=0)
