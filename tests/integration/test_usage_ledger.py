"""The usage ledger through Ansible on real engines of every flavour: a `docker run --rm` between two runs counts as a
use, retention evicts by it; and the role reclaim.docker.usage_tracker's service program, installed by the role and
run as systemd would run it, follows the engine's events into the same ledger."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import docker

from harness import scenario

from conftest import TARGET_PYTHON

RETENTION = "reclaim.docker.image_retention"


def run_and_remove(engine, image_id):
    """`docker run --rm IMAGE true`: the container is gone afterwards, only the engine's events saw it."""
    api = docker.APIClient(base_url=engine.docker_host)
    container = api.create_container(image_id, command=["true"], network_disabled=True,
                                     host_config=api.create_host_config(network_mode="none"))["Id"]
    api.start(container)
    api.wait(container)
    api.remove_container(container)


def ledger(directory):
    files = list(directory.glob("usage-*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def test_retention_evicts_by_the_last_use_a_removed_container_left(ansible, engine, prefix, tmp_path):
    # The two oldest images on the engine, unused: by creation, "older" would go first.
    built = scenario.build(engine.docker_host, {"layers": {"u1": 300_000, "u2": 200_000}, "images": [
        {"name": "older", "tags": ["lab/older:1"], "layers": ["u1"], "created": "2000-01-01T00:00:00Z"},
        {"name": "old", "tags": ["lab/old:1"], "layers": ["u2"], "created": "2000-06-01T00:00:00Z"}]}, prefix=prefix)
    older, old = built.images["older"]["id"], built.images["old"]["id"]
    # dangling: false, so that the only thing to do is relieve the pressure of a budget one byte short.
    args = {"dangling": False, "usage_ledger_dir": str(tmp_path / "ledger")}
    first = ansible.module(RETENTION, args | {"keep_last": 1000}, engine, check=True)
    assert first["violations"] == [] and ledger(tmp_path / "ledger")["events_until"] is not None
    run_and_remove(engine, older)
    budget = {"max_images_bytes": str(scenario.layers_size(engine.docker_host) - 1)}
    blind = ansible.module(RETENTION, args | budget | {"usage_ledger": False}, engine, check=True)
    assert [(v["image"], v["last_use_source"]) for v in blind["violations"]] == [(older, "created")]
    predicted, real = ansible.check_then_real(RETENTION, args | budget, engine,
                                              same=("violations", "deleted", "reclaimed_bytes"))
    assert [(v["image"], v["last_use_source"]) for v in real["violations"]] == [(old, "created")]
    assert real["deleted"] == [old]
    recorded = ledger(tmp_path / "ledger")["images"]
    assert older in recorded and recorded[older] > time.time() - 600
    assert old not in recorded
    assert not [w for w in real.get("warnings", []) if "ledger" in w]


def install_tracker(ansible, tmp_path, check=False, state="present"):
    variables = {"usage_tracker_state": state, "usage_tracker_install_dir": str(tmp_path / "lib"),
                 "usage_tracker_unit_dir": str(tmp_path / "units"), "usage_tracker_manage_service": False,
                 "usage_tracker_python": TARGET_PYTHON, "usage_tracker_ledger_dir": str(tmp_path / "ledger"),
                 "usage_tracker_docker_host": "{{ reclaim_docker_host }}"}
    (tmp_path / "units").mkdir(exist_ok=True)
    run = ansible.play([{"name": "the role", "ansible.builtin.include_role": {"name": "reclaim.docker.usage_tracker"},
                         "vars": variables}], {"localhost": "unix:///nowhere"}, check=check)
    assert run.returncode == 0, run.output
    return run


def test_the_tracker_follows_the_events_into_the_ledger(ansible, engine, prefix, tmp_path):
    built = scenario.build(engine.docker_host, {"images": [{"name": "ci", "tags": ["lab/ci:1"], "layers": ["c"]}]},
                           prefix=prefix)
    install_tracker(ansible, tmp_path, check=True)
    assert not (tmp_path / "lib").exists() and not list((tmp_path / "units").iterdir())  # check mode: nothing
    install_tracker(ansible, tmp_path)
    unit = (tmp_path / "units" / "reclaim-usage-tracker.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))[len("ExecStart="):]
    assert exec_start == (f"{TARGET_PYTHON} {tmp_path / 'lib'}/reclaim_usage_tracker.py --docker-host unix:///nowhere "
                          f"--ledger-dir {tmp_path / 'ledger'}")
    # Run it as systemd would, on this engine instead of the placeholder.
    command = exec_start.replace("unix:///nowhere", engine.docker_host).split()
    service = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1)
        started = time.time()
        run_and_remove(engine, built.images["ci"]["id"])
        deadline = time.time() + 10
        while time.time() < deadline:
            files = list((tmp_path / "ledger").glob("usage-*.json"))
            if files and built.images["ci"]["id"] in json.loads(files[0].read_text())["images"]:
                break
            time.sleep(0.2)
        seen = ledger(tmp_path / "ledger")["images"].get(built.images["ci"]["id"])
        assert seen is not None and seen >= int(started), "the tracker did not record the use"
    finally:
        service.send_signal(signal.SIGTERM)
        output = service.communicate(timeout=10)[0]
    assert service.returncode == 0, output
    # A module run shares the ledger (same file, format and lock): it keeps the use the tracker saw, or a later one.
    result = ansible.module(RETENTION, {"max_age": "1d", "dangling": False, "protect": {"references": ["*"]},
                                        "usage_ledger_dir": str(tmp_path / "ledger")}, engine, check=True)
    assert not [w for w in result.get("warnings", []) if "ledger" in w], result.get("warnings")
    assert ledger(tmp_path / "ledger")["images"][built.images["ci"]["id"]] >= seen  # its die and destroy come later
    install_tracker(ansible, tmp_path, state="absent")
    assert not (tmp_path / "lib").exists() and not list((tmp_path / "units").iterdir())
