"""disk_usage_info's job through the real runner, on a stub engine: the categories asked for, the filesystem, and the
root dir explained only where the module runs on the Docker host and the root dir is the engine's."""

from __future__ import annotations

import pytest
from snapshot_helpers import recorded
from stub_engine import ENGINE_ID, StubEngine, run

from ansible_collections.reclaim.docker.plugins.module_utils import _runner
from ansible_collections.reclaim.docker.plugins.module_utils._disk_usage_job import DiskUsageJob


def test_only_the_categories_asked_for_volumes_only_when_asked(tmp_path):
    snapshot = recorded("28.5")
    default = run(DiskUsageJob, StubEngine(snapshot), {}, tmp_path)
    assert set(default["disk_usage"]) == {"images", "containers", "build_cache"}
    assert default["disk_usage"]["containers"]["count"] == len(snapshot.containers)
    assert default["filesystem"]["path"] == "/" and "root_dir" not in default
    some = run(DiskUsageJob, StubEngine(snapshot), {"images": False, "build_cache": False, "volumes": True,
                                                    "filesystem": False}, tmp_path)
    assert set(some["disk_usage"]) == {"containers", "volumes"} and some["filesystem"] is None


def test_nothing_asked_reads_no_system_df(tmp_path):
    engine = StubEngine(recorded("20.10"))
    result = run(DiskUsageJob, engine, {"images": False, "containers": False, "build_cache": False}, tmp_path)
    assert result["disk_usage"] == {} and ("GET", "/system/df") not in engine.calls


def test_a_remote_engine_has_no_filesystem_here(tmp_path):
    engine = StubEngine(recorded("28.5"))
    engine.is_local = False
    assert run(DiskUsageJob, engine, {}, tmp_path)["filesystem"] is None


def test_root_dir_with_a_remote_docker_host_is_refused_before_the_engine_is_contacted(monkeypatch, tmp_path):
    def unreachable(params):
        raise AssertionError("the engine was contacted")

    monkeypatch.setattr(_runner, "connect", unreachable)
    result = run(DiskUsageJob, None, {"root_dir": True, "docker_host": "tcp://192.0.2.1:2376"}, tmp_path)
    assert result["failed"] is True and result["msg"].startswith("root_dir reads Docker's root dir")


@pytest.fixture
def root_dir(tmp_path):
    root = tmp_path / "docker"
    (root / "volumes" / "data" / "_data").mkdir(parents=True)
    (root / "volumes" / "data" / "_data" / "file").write_bytes(b"v" * 20_000)
    return root


def test_root_dir_explains_the_engines_root_dir(root_dir, tmp_path):
    (root_dir / "engine-id").write_text(ENGINE_ID)
    result = run(DiskUsageJob, StubEngine(recorded("28.5"), root_dir=str(root_dir)), {"root_dir": True}, tmp_path)
    report = result["root_dir"]
    assert report["exact"] is True and report["categories"]["volumes"] >= 20_000
    assert result["filesystem"]["path"] == str(root_dir) and result["changed"] is False


def test_root_dir_of_another_engine_fails_naming_it(root_dir, tmp_path):
    (root_dir / "engine-id").write_text("OTHER:ENGINE")
    result = run(DiskUsageJob, StubEngine(recorded("28.5"), root_dir=str(root_dir)), {"root_dir": True}, tmp_path)
    assert result["failed"] is True
    assert result["msg"].startswith("Cannot explain the root dir: the root dir") and "OTHER:ENGINE" in result["msg"]
