"""The engine lock: taken and given back, a waiter that gives up names the holder, a killed holder never blocks, and
check mode never touches it."""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml

from ansible_collections.reclaim.docker.plugins.module_utils import _lock
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import cache_file_name
from ansible_collections.reclaim.docker.plugins.module_utils._lock import (
    LOCK_FORMAT,
    EngineLock,
    LockError,
    check_lock_timeout,
    identity,
    lock_argument_spec,
    lock_file_name,
    parse_identity,
    prepare_lock_dir,
)

ENGINE = "ABCD:EFGH:IJKL:MNOP:QRST:UVWX:YZ12:3456:7890:ABCD:EFGH:IJKL"
MODULE = "reclaim.docker.prune"

# A process that takes the lock, says so, and holds it until its stdin closes (or it is killed).
HOLDER = """
import os, sys
from ansible_collections.reclaim.docker.plugins.module_utils._lock import EngineLock
lock = EngineLock(sys.argv[1], sys.argv[2], module_name=sys.argv[3]).acquire(5)
print("held", flush=True)
sys.stdin.read()
lock.release()
"""


@pytest.fixture
def holder(tmp_path):
    """Start a process holding the lock of ENGINE in a directory: returns its Popen once it holds it."""
    started = []

    def start(directory, job_id=None):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        env.pop("JOB_ID", None)
        env.pop("AWX_JOB_ID", None)
        if job_id:
            env["JOB_ID"] = job_id
        process = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory), ENGINE, MODULE], env=env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def lock(directory, **kwargs):
    return EngineLock(str(directory), ENGINE, module_name=MODULE, **kwargs)


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def test_argument_spec_matches_the_doc_fragment():
    spec = lock_argument_spec().argument_spec
    assert spec == {"lock_timeout": {"type": "int", "default": 300}, "lock_dir": {"type": "path"}}
    fragment = importlib.import_module("ansible_collections.reclaim.docker.plugins.doc_fragments._lock")
    options = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]
    assert set(options) == set(spec)
    for name, option in options.items():
        assert option["type"] == spec[name]["type"]
        assert option.get("default") == spec[name].get("default")


def test_the_file_is_named_by_the_engine_digest_of_the_layer_cache():
    assert lock_file_name(ENGINE) == "lock-" + cache_file_name(ENGINE)[len("layers-"):]
    assert lock_file_name("a/b:c") != lock_file_name("a/b:d") and "/" not in lock_file_name("../x")


def test_taken_names_its_holder_then_given_back_empty(tmp_path):
    first = lock(tmp_path, environ={"AWX_JOB_ID": "42"}).acquire(0)
    held = parse_identity(read(first.path))
    assert held["pid"] == os.getpid() and held["host"] == socket.gethostname() and held["module"] == MODULE
    assert held["job_id"] == "42" and held["engine_id"] == ENGINE and held["format"] == LOCK_FORMAT
    assert first.waited is None and first.waited_message() is None
    with pytest.raises(LockError):
        lock(tmp_path).acquire(0)  # another open file description: excluded, in this process too
    first.release()
    assert read(first.path) == b""  # a clean release names no holder
    first.release()  # twice is harmless
    with lock(tmp_path) as second:
        assert second.held
    assert not second.held


def test_a_waiter_that_gives_up_names_the_holder(tmp_path, holder):
    process = holder(tmp_path, job_id="77")
    started = time.monotonic()
    with pytest.raises(LockError) as error:
        lock(tmp_path, engine_label=f"{ENGINE} at unix:///x.sock").acquire(0.5)
    assert time.monotonic() - started >= 0.5
    message = str(error.value)
    assert message.startswith(f"Another cleanup holds the lock of engine {ENGINE} at unix:///x.sock since ")
    assert f"pid {process.pid} on host {socket.gethostname()} ({MODULE}, job 77)" in message
    assert "waited 0.5 s (lock_timeout)" in message and "Nothing was changed" in message


def never_called(*args):
    raise AssertionError(f"called with {args}")


def test_lock_timeout_0_fails_at_once(tmp_path, holder):
    process = holder(tmp_path)
    with pytest.raises(LockError, match=f"pid {process.pid} .*waited 0 s \\(lock_timeout\\)"):
        lock(tmp_path).acquire(0, sleep=never_called)


def test_a_waiter_gets_the_lock_when_the_holder_ends_and_warns(tmp_path, holder):
    process = holder(tmp_path)
    threading.Timer(0.4, process.stdin.close).start()
    taken = lock(tmp_path).acquire(10)
    assert taken.waited > 0
    assert parse_identity(read(taken.path))["pid"] == os.getpid()
    [(holder, seconds)] = taken.waited_for
    assert holder["pid"] == process.pid and seconds == taken.waited
    # One holder: its time is the wait's, said once.
    assert taken.waited_message() == (f"Waited {taken.waited:.1f} s for the lock of engine {ENGINE}, held by "
                                      f"pid {process.pid} on host {socket.gethostname()} ({MODULE}) since "
                                      f"{holder['since']}.")
    taken.release()


def test_a_waiter_names_each_holder_its_tries_read_with_the_time_behind_each(tmp_path):
    """The lock changes hands while a run waits: its warning names each holder a try read, in order, each with the
    time from the try that first read it to the one that read the next; a try that read no one names no one; a run
    that held the lock only between two tries is not named. Here the tries are one (fake) second apart."""
    locks, seen = {}, {}

    def take(name):
        locks[name] = EngineLock(str(tmp_path), ENGINE, module_name=name).acquire(0)
        seen[name] = parse_identity(read(locks[name].path))

    def take_unnamed():  # a holder that has the flock but has not written who it is
        locks["unnamed"] = os.open(locks["first"].path, os.O_RDWR)
        _lock.fcntl.flock(locks["unnamed"], _lock.fcntl.LOCK_EX | _lock.fcntl.LOCK_NB)

    def first_lets_go():
        locks["first"].release()

    def second_takes_over():
        os.close(locks["unnamed"])
        take("second")

    def third_comes_and_goes():
        locks["second"].release()
        take("third")
        locks["third"].release()

    after_try = {2: (first_lets_go, take_unnamed), 3: (second_takes_over,), 6: (third_comes_and_goes,)}
    now, tries = [100.0], []

    def sleep(_seconds):
        tries.append(now[0])
        now[0] += 1
        for step in after_try.get(len(tries), ()):
            step()

    take("first")
    taken = EngineLock(str(tmp_path), ENGINE, module_name="waiter").acquire(30, sleep=sleep, clock=lambda: now[0])
    assert len(tries) == 6 and taken.waited == 6
    assert taken.waited_for == [(seen["first"], 2), (None, 1), (seen["second"], 3)]
    holder = f"pid {os.getpid()} on host {socket.gethostname()}"
    assert taken.waited_message() == (
        f"Waited 6.0 s for the lock of engine {ENGINE}, held by {holder} (first) since {seen['first']['since']} for "
        f"2.0 s, then by a process that has not yet written who it is for 1.0 s, then by {holder} (second) since "
        f"{seen['second']['since']} for 3.0 s.")
    taken.release()


def test_a_killed_holder_never_blocks(tmp_path, holder):
    process = holder(tmp_path)
    path = tmp_path / lock_file_name(ENGINE)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert parse_identity(read(path))["pid"] == process.pid  # its text is left behind
    taken = lock(tmp_path).acquire(0)
    assert taken.waited is None  # taken at once, no warning about the dead holder
    assert parse_identity(read(path))["pid"] == os.getpid()
    taken.release()


def test_text_left_by_a_killed_holder_is_never_named_as_the_holder(tmp_path, holder):
    process = holder(tmp_path)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    path = str(tmp_path / lock_file_name(ENGINE))
    # A new holder that has the flock but has not written who it is yet: the file still says the dead pid.
    fd = os.open(path, os.O_RDWR)
    try:
        _lock.fcntl.flock(fd, _lock.fcntl.LOCK_EX | _lock.fcntl.LOCK_NB)
        with pytest.raises(LockError) as error:
            lock(tmp_path).acquire(0)
    finally:
        os.close(fd)
    assert str(process.pid) not in str(error.value)
    assert "has not yet written who it is" in str(error.value)


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"format": 1}', b'{"format": 2, "pid": 1, "host": "h", "since": "t"}',
                                 b'{"format": 1, "pid": true, "host": "h", "since": "t"}',
                                 b'{"format": 1, "pid": 5, "host": 3, "since": "t"}', b"x" * 5000])
def test_text_not_written_by_this_code_names_no_holder(raw):
    assert parse_identity(raw) is None


def test_identity_round_trips():
    mine = identity(ENGINE, MODULE, environ={"JOB_ID": "9", "AWX_JOB_ID": "8"}, now=0)
    assert mine["since"] == "1970-01-01T00:00:00Z" and mine["job_id"] == "9"
    assert parse_identity(json.dumps(mine).encode()) == mine
    assert identity(ENGINE, environ={})["job_id"] is None


def test_a_file_replaced_while_waiting_is_not_trusted(tmp_path):
    """A waiter that gets the flock of a file that was deleted meanwhile takes the one now at the path instead."""
    first = lock(tmp_path).acquire(0)
    got = {}

    def wait():
        got["lock"] = lock(tmp_path).acquire(5)
    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    os.unlink(first.path)
    third = lock(tmp_path).acquire(0)  # a new file at the path
    first.release()  # the waiter gets the old file's flock, sees it is not at the path any more, and waits for third
    time.sleep(0.4)
    assert "lock" not in got
    third.release()
    waiter.join(5)
    taken = got["lock"]
    assert os.fstat(taken.fd).st_ino == os.stat(taken.path).st_ino
    taken.release()


def test_lock_timeout_must_not_be_negative():
    check_lock_timeout(0)
    check_lock_timeout(300)
    with pytest.raises(LockError, match=r"^lock_timeout must be 0 or more seconds .* got -1\.$"):
        check_lock_timeout(-1)


def test_the_default_dir_is_the_layer_cache_s_made_0700(tmp_path):
    directory = prepare_lock_dir(None, environ={"XDG_CACHE_HOME": str(tmp_path / "xdg"), "HOME": "/nonexistent"})
    assert directory == str(tmp_path / "xdg" / "reclaim.docker")
    assert os.stat(directory).st_mode & 0o777 == 0o700


def test_a_dir_that_cannot_be_created_is_named(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(LockError, match=f"^lock_dir {tmp_path}/file/locks cannot be created: .*Nothing was changed"):
        prepare_lock_dir(str(tmp_path / "file" / "locks"))
    with pytest.raises(LockError, match=f"^lock_dir {tmp_path}/file is not a directory"):
        prepare_lock_dir(str(tmp_path / "file"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any directory")
def test_a_dir_that_cannot_be_written_is_named(tmp_path):
    (tmp_path / "locks").mkdir(mode=0o500)
    with pytest.raises(LockError, match=f"^lock_dir {tmp_path}/locks is not writable by uid"):
        prepare_lock_dir(str(tmp_path / "locks"))


def test_a_file_that_cannot_be_opened_is_named_with_lock_dir(tmp_path):
    os.symlink(tmp_path / "elsewhere", tmp_path / lock_file_name(ENGINE))
    with pytest.raises(LockError, match="cannot be opened: it is a symbolic link \\(lock_dir "):
        lock(tmp_path).acquire(0)
    assert not (tmp_path / "elsewhere").exists()
    with pytest.raises(LockError, match="cannot be opened: .*\\(lock_dir /proc\\)"):
        EngineLock("/proc", ENGINE).acquire(0)
