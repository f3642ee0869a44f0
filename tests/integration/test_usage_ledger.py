"""The usage ledger through Ansible on real engines of every flavour: a `docker run --rm` between two runs counts as a
use, retention evicts by it. The role reclaim.docker.usage_tracker with a stand-in `systemctl` (this machine's PID 1 is
not systemd): what it installs (a system user in the socket's group, a hardened unit, rated by `systemd-analyze
security --offline`), check mode on a fresh host, a restart on change, absent. Its program run as the unit says (User=,
Group=, ExecStart=, NOTIFY_SOCKET, WATCHDOG_USEC) on each engine: it follows the events into the ledger the modules
share, exits non-zero when the ledger becomes another user's, and follows a replaced engine after an outage."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import docker
import pytest

from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import ledger_file_name
from harness import engines, scenario, systemd

from conftest import ANSIBLE_PLAYBOOK, COLLECTIONS, TARGET_PYTHON, TRACKER_PYTHON

RETENTION = "reclaim.docker.image_retention"


def run_and_remove(engine, image_id, volume=None):
    """`docker run --rm [-v VOLUME:/v] IMAGE true`: the container is gone afterwards, only the engine's events saw it."""
    api = docker.APIClient(base_url=engine.docker_host)
    container = api.create_container(image_id, command=["true"], network_disabled=True, host_config=api.create_host_config(
        network_mode="none", binds=[f"{volume}:/v"] if volume else None))["Id"]
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


USER = "reclaim-tracker"
SERVICE = "reclaim-usage-tracker.service"
README = Path(__file__).resolve().parents[2] / "roles" / "usage_tracker" / "README.md"


@pytest.fixture
def service_root():
    """Where the role installs in a test: outside /tmp and the homes (the unit hides those from the service, and the
    role refuses them) and readable by the service's user."""
    base = Path("/var/lib/reclaim-tests")
    base.mkdir(mode=0o755, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="tracker-", dir=base))
    root.chmod(0o755)
    (root / "units").mkdir()
    yield root
    shutil.rmtree(root)


@pytest.fixture
def systemctl(service_root, monkeypatch):
    stub = systemd.StubSystemctl(service_root / "systemd", service_root / "units")
    monkeypatch.setenv("PATH", stub.path)  # ansible-playbook and its local modules inherit it
    return stub


def install_tracker(ansible, root, check=False, state="present", manage_service=False, **variables):
    """The role on this machine, into ROOT, for the placeholder engine unix:///nowhere; the playbook run."""
    variables = {"usage_tracker_state": state, "usage_tracker_install_dir": str(root / "lib"),
                 "usage_tracker_unit_dir": str(root / "units"), "usage_tracker_manage_service": manage_service,
                 "usage_tracker_python": TRACKER_PYTHON, "usage_tracker_ledger_dir": str(root / "ledger"),
                 "usage_tracker_docker_host": "unix:///nowhere", **variables}
    run = ansible.play([{"name": "the role", "ansible.builtin.include_role": {"name": "reclaim.docker.usage_tracker"},
                         "vars": variables}], {"localhost": "unix:///nowhere"}, check=check)
    assert run.returncode == 0, run.output
    return run


def changed_tasks(run):
    return [r["task"].split(" : ", 1)[-1] for r in run.results if r["result"].get("changed")]


def test_the_role_installs_a_hardened_service_restarts_it_on_change_and_removes_it(ansible, service_root, systemctl):
    run = install_tracker(ansible, service_root, manage_service=True)
    user = pwd.getpwnam(USER)
    assert user.pw_uid < 1000 and user.pw_shell == "/usr/sbin/nologin" and USER in grp.getgrnam("docker").gr_mem
    ledger_dir = (service_root / "ledger").stat()
    assert (ledger_dir.st_uid, stat.S_IMODE(ledger_dir.st_mode)) == (user.pw_uid, 0o700)
    assert systemctl.actions() == [["daemon-reload"], ["enable", "reclaim-usage-tracker"],
                                   ["start", "reclaim-usage-tracker"]]
    assert systemctl.state(SERVICE) == {"enabled": True, "active": True}
    unit_path = service_root / "units" / SERVICE
    unit = systemd.unit_settings(unit_path.read_text())
    assert (unit["Type"], unit["User"], unit["Group"], unit["Restart"]) == (["notify"], [USER], ["docker"], ["always"])
    assert unit["StateDirectory"] == [str(service_root.relative_to("/var/lib") / "ledger")]
    assert unit["RestrictAddressFamilies"] == ["AF_UNIX"] and unit["PrivateNetwork"] == ["yes"]
    # The score the README states, measured.
    (score, rating), report = systemd.security(unit_path)
    assert f"rates its unit {score} {rating} for a unix:// engine" in README.read_text(), report
    assert rating == "SAFE", report

    systemctl.forget_calls()
    again = install_tracker(ansible, service_root, manage_service=True)
    assert changed_tasks(again) == [] and systemctl.actions() == []

    # A changed unit, in check mode first: told, not done. Its ledger outside /var/lib, where it is no StateDirectory.
    Path("/var/cache/reclaim-tests").mkdir(mode=0o755, exist_ok=True)  # root's: the role makes only the ledger's own
    elsewhere = Path("/var/cache/reclaim-tests") / service_root.name
    tcp = {"usage_tracker_docker_host": "tcp://127.0.0.1:2375", "usage_tracker_socket_group": "",
           "usage_tracker_ledger_dir": str(elsewhere)}
    predicted = install_tracker(ansible, service_root, check=True, manage_service=True, **tcp)
    assert "Enable and start the usage tracker, restarted when a file changed" in changed_tasks(predicted)
    assert systemctl.actions() == [] and "tcp://" not in unit_path.read_text()
    install_tracker(ansible, service_root, manage_service=True, **tcp)
    assert systemctl.actions() == [["daemon-reload"], ["restart", "reclaim-usage-tracker"]]
    unit = systemd.unit_settings(unit_path.read_text())
    shutil.rmtree(elsewhere)
    assert "Group" not in unit and "PrivateNetwork" not in unit and "StateDirectory" not in unit
    assert unit["ReadWritePaths"] == [str(elsewhere)]
    assert unit["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    (score, rating), report = systemd.security(unit_path)
    assert f"{score} {rating} for a tcp:// one" in README.read_text(), report

    systemctl.forget_calls()
    install_tracker(ansible, service_root, state="absent", manage_service=True)
    assert systemctl.actions() == [["disable", "reclaim-usage-tracker"], ["stop", "reclaim-usage-tracker"],
                                   ["daemon-reload"]]
    assert not (service_root / "lib").exists() and not list((service_root / "units").iterdir())
    assert (service_root / "ledger").is_dir()  # the modules still read it
    systemctl.forget_calls()
    gone = install_tracker(ansible, service_root, state="absent", manage_service=True)
    assert changed_tasks(gone) == [] and systemctl.actions() == []


def test_check_mode_on_a_fresh_host_reports_what_would_be_installed(ansible, service_root, systemctl):
    fresh_user = "reclaim-t" + os.urandom(3).hex()  # a user that does not exist, as on a fresh host
    run = install_tracker(ansible, service_root, check=True, manage_service=True, usage_tracker_user=fresh_user)
    assert changed_tasks(run) == [
        "Create the tracker's system user, in the engine socket's group", "Create the program's directories",
        "Create the ledger's directory, the tracker's", "Install the collection's ledger and transport code",
        "Install the program", "Install the service unit",
        "Enable and start the usage tracker (check mode, its unit not written yet)"]
    assert sorted(p.name for p in service_root.iterdir()) == ["systemd", "units"]
    assert not list((service_root / "units").iterdir()) and systemctl.calls() == []
    with pytest.raises(KeyError):
        pwd.getpwnam(fresh_user)


@pytest.mark.parametrize("variable, value, message", [
    ("usage_tracker_ledger_dir", "/tmp/ledger", "outside /home, /root"),
    ("usage_tracker_ledger_dir", "/root/.cache/reclaim.docker", "outside /home, /root"),
    ("usage_tracker_install_dir", "relative/lib", "must be an absolute path"),
    ("usage_tracker_docker_host", "ssh://host", "plain HTTP")])
def test_paths_the_service_cannot_see_are_refused_before_any_change(ansible, service_root, variable, value, message):
    run = ansible.play([{"name": "the role", "ansible.builtin.include_role": {"name": "reclaim.docker.usage_tracker"},
                         "vars": {variable: value, "usage_tracker_manage_service": False,
                                  "usage_tracker_unit_dir": str(service_root / "units")}}],
                       {"localhost": "unix:///nowhere"})
    assert run.returncode != 0 and variable in run.output and message in run.output
    assert not list((service_root / "units").iterdir())


def wait_for_use(ledger_dir, key, timeout=20, kind="images"):
    """The ledger's path and its use of KEY among KIND (images, volumes), once it has one; (None, None) after TIMEOUT."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in ledger_dir.glob("usage-*.json"):
            seen = json.loads(path.read_text()).get(kind, {}).get(key)
            if seen is not None:
                return path, seen
        time.sleep(0.2)
    return None, None


def installed_unit(ansible, root):
    install_tracker(ansible, root)
    return (root / "units" / SERVICE).read_text()


def stop(service):
    """SIGTERM, as systemd stops it (unless it ended by itself): all it printed."""
    if not hasattr(service, "output"):
        if service.poll() is None:
            service.send_signal(signal.SIGTERM)
        service.output = service.communicate(timeout=30)[0]
    return service.output


def test_the_tracker_follows_the_events_and_exits_when_the_ledger_is_lost(ansible, engine, prefix, service_root):
    built = scenario.build(engine.docker_host, {"images": [{"name": "ci", "tags": ["lab/ci:1"], "layers": ["c"]}]},
                           prefix=prefix)
    image = built.images["ci"]["id"]
    volume = docker.APIClient(base_url=engine.docker_host).create_volume(f"{prefix}-cache")["Name"]
    unit = installed_unit(ansible, service_root)
    notify = systemd.NotifySocket(service_root)
    service = systemd.run_service(unit, notify, replace={"unix:///nowhere": engine.docker_host})
    try:
        assert notify.wait_for("READY=1") and notify.wait_for("WATCHDOG=1"), stop(service)
        started = int(time.time())
        run_and_remove(engine, image, volume)
        path, seen = wait_for_use(service_root / "ledger", image)
        assert seen is not None and seen >= started, stop(service)
        # The volume it mounted, by the container's destroy event: the last one, whose container is gone by then.
        _path, volume_seen = wait_for_use(service_root / "ledger", volume, kind="volumes")
        assert volume_seen is not None and volume_seen >= seen, stop(service)
        assert path.stat().st_uid == pwd.getpwnam(USER).pw_uid
        # A module run as root shares the ledger (same file, format and lock) and leaves it the tracker's.
        result = ansible.module(RETENTION, {"max_age": "1d", "dangling": False, "protect": {"references": ["*"]},
                                            "usage_ledger_dir": str(service_root / "ledger")}, engine, check=True)
        assert not [w for w in result.get("warnings", []) if "ledger" in w], result.get("warnings")
        assert json.loads(path.read_text())["images"][image] >= seen
        assert path.stat().st_uid == pwd.getpwnam(USER).pw_uid
        # The ledger becomes another user's for a moment: the tracker stops (systemd restarts it) rather than idle.
        os.chown(path, 0, 0)
        run_and_remove(engine, image)
        service.wait(timeout=30)
    finally:
        output = stop(service)
        notify.close()
    assert service.returncode == 1, output
    assert f"The usage ledger {path} was ignored and will not be written: it is owned by uid 0" in output, output
    assert output.rstrip().endswith("cannot be used (see above)."), output
    docker.APIClient(base_url=engine.docker_host).remove_volume(volume)


def test_the_tracker_follows_a_replaced_engine_after_an_outage(ansible, engine, prefix, service_root):
    notify = systemd.NotifySocket(service_root)
    own = engines.start(engine.flavour, "trk-" + engine.flavour.replace(".", ""))
    try:
        built = scenario.build(own.docker_host, {"images": [{"name": "job", "tags": ["lab/job:1"],
                                                             "layers": ["j"]}]}, prefix=prefix)
        image = built.images["job"]["id"]
        before = scenario.client(own.docker_host).info()["ID"]
        unit = installed_unit(ansible, service_root)
        # A short watchdog, to see it told during the outage; a short read timeout: the quiet stream is opened again.
        service = systemd.run_service(unit, notify, replace={"unix:///nowhere": own.docker_host},
                                      extra_args=["--read-timeout", "1"], watchdog_seconds=2)
        try:
            assert notify.wait_for("READY=1"), stop(service)
            notify.read(3)  # quiet: the stream times out and is opened again, silently
            engines.kill_daemon_only(own)
            down = len(notify.received)
            assert notify.wait_for("WATCHDOG=1", after=down), stop(service)  # alive while the engine is gone
            engines.forget_id(own)
            engines.start(own.flavour, own.name)
            after = scenario.client(own.docker_host).info()["ID"]
            assert after != before
            started = int(time.time())
            run_and_remove(own, image)  # its events wait in the engine for the tracker to connect again
            seen = wait_for_use_in(service_root / "ledger" / ledger_file_name(after), image)
            assert seen is not None and seen >= started, stop(service)
        finally:
            output = stop(service)
        assert service.returncode == 0, output
        assert notify.wait_for("STOPPING=1", timeout=1), notify.received  # sent before it exited
        lines = output.splitlines()
        assert lines[0] == (f"Following the container events of {own.docker_host} (engine {before}) into "
                            f"{service_root / 'ledger' / ledger_file_name(before)}."), output
        assert len([line for line in lines if "cannot be reached" in line]) == 1, output
        assert len([line for line in lines if "answers again" in line]) == 1, output
        assert f"is now engine {after}, not {before}" in output, output
        assert len(lines) == 4, output
    finally:
        notify.close()
        engines.stop(own)


def wait_for_use_in(path, image_id, timeout=90):
    """When the ledger PATH holds IMAGE_ID: its use; None after TIMEOUT (the tracker tries again up to 60 s apart)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            seen = json.loads(path.read_text())["images"].get(image_id)
            if seen is not None:
                return seen
        time.sleep(0.2)
    return None


def test_a_cleanup_run_reads_the_ledger_the_tracker_wrote(ansible, engine, prefix, service_root, tmp_path):
    """The cleanup playbook with cleanup_usage_ledger_dir at the tracker's directory: retention evicts by the use the
    tracker recorded. The engine is restarted in between, which forgets its events: the tracker's ledger is the only
    record of that use. With the modules' default directory the same audit evicts by creation."""
    own = engines.start(engine.flavour, "trc-" + engine.flavour.replace(".", ""))
    notify = systemd.NotifySocket(service_root)
    try:
        spec = {"layers": {"u1": 300_000, "u2": 200_000}, "images": [
            {"name": "older", "tags": ["lab/older:1"], "layers": ["u1"], "created": "2000-01-01T00:00:00Z"},
            {"name": "old", "tags": ["lab/old:1"], "layers": ["u2"], "created": "2000-06-01T00:00:00Z"}]}
        built = scenario.build(own.docker_host, spec, prefix=prefix)
        older, old = built.images["older"]["id"], built.images["old"]["id"]
        service = systemd.run_service(installed_unit(ansible, service_root), notify,
                                      replace={"unix:///nowhere": own.docker_host})
        try:
            assert notify.wait_for("READY=1"), stop(service)
            started = int(time.time())
            run_and_remove(own, older)
            path, seen = wait_for_use(service_root / "ledger", older)
            assert seen is not None and seen >= started, stop(service)
        finally:
            stop(service)
        engines.kill_daemon_only(own)
        own = engines.start(own.flavour, own.name)
        budget = {"max_images_bytes": str(scenario.layers_size(own.docker_host) - 1)}

        def cleanup(name, check, **variables):
            report_dir = tmp_path / name
            host = {"ansible_connection": "local", "ansible_python_interpreter": TARGET_PYTHON,
                    "cleanup_docker_host": own.docker_host, "cleanup_retention": budget, **variables}
            inventory = tmp_path / f"{name}.json"
            inventory.write_text(json.dumps({"all": {"children": {"docker_hosts": {"hosts": {"runner": host}}}}}))
            command = [ANSIBLE_PLAYBOOK, "-i", str(inventory), "reclaim.docker.cleanup",
                       "-e", f"fleet_report_dir={report_dir}", *(["--check"] if check else [])]
            completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=tmp_path,
                                       env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
                                                XDG_CACHE_HOME=str(tmp_path / "xdg"), ANSIBLE_NOCOLOR="1"))
            assert completed.returncode == 0, completed.stdout + completed.stderr
            return json.loads((report_dir / "fleet-report.json").read_text())["hosts"]["runner"]

        blind = cleanup("default-dir", check=True)
        assert blind["removed"]["images"] == [older]  # by creation: the default ledger never saw the use
        assert list((tmp_path / "xdg" / "reclaim.docker").glob("usage-*.json"))
        until = json.loads(path.read_text())["events_until"]
        result = cleanup("tracker-dir", check=False, cleanup_usage_ledger_dir=str(service_root / "ledger"))
        assert result["status"] == "ok" and result["removed"]["images"] == [old], result
        left = {i["Id"] for i in scenario.client(own.docker_host).images(all=True)}
        assert older in left and old not in left
        # The cleanup's modules read and wrote the tracker's file (its events_until moved on), as the tracker's.
        assert json.loads(path.read_text())["events_until"] > until
        assert path.stat().st_uid == pwd.getpwnam(USER).pw_uid
    finally:
        notify.close()
        engines.stop(own)
