"""reclaim.docker.disk_usage_info through Ansible, on real engines of every flavour."""

from __future__ import annotations

import os

from harness import engines, scenario

MODULE = "reclaim.docker.disk_usage_info"
SPEC = {
    "layers": {"a": 1_000_000, "b": 2_000_000},
    "images": [{"name": "used", "tags": ["lab/used:1"], "layers": ["a"]},
               {"name": "idle", "tags": ["lab/idle:1"], "layers": ["b"]}],
    "containers": [{"name": "up", "image": "lab/used:1", "state": "running"},
                   {"name": "down", "image": "lab/used:1", "state": "exited", "writable_bytes": 200_000}],
    "volumes": [{"name": "data", "bytes": 50_000}],
}


def test_reports_what_system_df_reports(ansible, engine, prefix):
    built = scenario.build(engine.docker_host, SPEC, prefix=prefix)
    df = scenario.system_df(engine.docker_host)
    result = ansible.module(MODULE, {"volumes": True}, engine, check=True)
    assert result["changed"] is False
    usage = result["disk_usage"]
    assert usage["images"]["count"] == len(df["Images"]) and usage["images"]["size"] == df["LayersSize"]
    assert usage["images"]["active"] == sum(1 for i in df["Images"] if i["Containers"] > 0)
    assert usage["containers"]["count"] == len(df["Containers"])
    active = ("running", "paused", "restarting")  # as the CLI counts them
    assert usage["containers"]["active"] == sum(1 for c in df["Containers"] if c["State"] in active)
    stopped_rw = api_size_rw(df, built.containers["down"])
    assert stopped_rw >= 200_000 and usage["containers"]["reclaimable"] >= stopped_rw
    assert usage["volumes"]["count"] == len(df["Volumes"]) and usage["volumes"]["size"] >= 50_000
    assert set(usage) == {"images", "containers", "volumes", "build_cache"}
    filesystem = result["filesystem"]
    stats = os.statvfs(filesystem["path"])
    assert filesystem["path"] == str(engine.data_root) and filesystem["total"] == stats.f_blocks * stats.f_frsize
    assert 0 < filesystem["used_percent"] < 100
    assert result["engine"]["image_store"] == ("containerd" if engine.flavour == "28.5-containerd" else "overlay2")
    assert result["engine"]["api_version"] == ("1.41" if engine.flavour == "20.10" else "1.51")


def api_size_rw(df, container_id):
    return next(c.get("SizeRw", 0) for c in df["Containers"] if c["Id"] == container_id)


def test_categories_can_be_left_out(ansible, engine):
    result = ansible.module(MODULE, {"containers": False, "build_cache": False, "filesystem": False}, engine)
    assert set(result["disk_usage"]) == {"images"} and result["filesystem"] is None


def test_a_host_whose_daemon_is_down_fails_alone(ansible, engine, tmp_path):
    down = engines.start(engine.flavour, f"down{os.getpid() % 1000}")
    engines.kill_daemon_only(down)
    try:
        run = ansible.play([{"name": "usage", MODULE: {}}], {"up": engine.docker_host, "down": down.docker_host})
        assert run.task("usage", "up")["status"] == "ok"
        failed = run.task("usage", "down")["result"]
        assert failed["failed"] is True
        assert failed["msg"].startswith(f"Cannot connect to the Docker daemon at {down.docker_host}")
        # Our message, and no traceback anywhere: a module that crashed would say "MODULE FAILURE" with its traceback
        # in `exception` (ansible-core 2.19+ may set `exception` to "(traceback unavailable)" on a failure).
        assert "Traceback" not in failed["msg"] and "Traceback" not in str(failed.get("exception", ""))
    finally:
        engines.stop(down)
