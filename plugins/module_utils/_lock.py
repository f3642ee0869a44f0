# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""A lock per engine on the host that runs the module, so that two runs that change an engine (an AWX schedule and a
manual run) never read, plan and apply at once: the second waits, up to lock_timeout, and plans on what the first left
(see the _lock doc fragment).

The lock is the kernel's exclusive flock(2) on a file named by a digest of the engine's ID, in the layer cache's
directory by default. The kernel releases it when its holder ends, however it ends (SIGKILL included): a lock left by
a dead process never blocks. Once it holds the lock, a run writes who it is into the file (pid, host, start time,
module, AWX job ID), for a waiter to name it (in its warning, or its failure when it gives up); the file is emptied on
release. What the file says is read only while the flock is held by someone else, and text a killed holder left is
never taken for a holder: the file is versioned and checked whole, and a pid of this host that is no longer running is
known stale. Losing the file loses nothing (it is made again); deleting it while a run holds the lock lets a second run
in.

Standard library only, Python 3.9 and later (it runs on the Docker host's Python).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time

from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec
from ansible_collections.reclaim.docker.plugins.module_utils._host_files import (
    default_cache_dir,
    engine_digest,
    make_dirs,
    os_error_text,
)
from ansible_collections.reclaim.docker.plugins.module_utils._units import iso_time

LOCK_FORMAT = 1
DEFAULT_LOCK_TIMEOUT = 300
# How often a waiter tries again (flock with LOCK_NB): a bounded poll, so that lock_timeout is kept to the poll.
POLL_INTERVAL = 0.15
# Environment variables naming the Ansible job (AWX and AAP set JOB_ID; AWX_JOB_ID for the older ones).
JOB_ID_VARIABLES = ("JOB_ID", "AWX_JOB_ID")
# The file holds one small JSON object; anything longer is not what this code writes.
IDENTITY_LIMIT = 4096
# O_NOFOLLOW: never write through a symbolic link put in the lock's place; O_NONBLOCK: nor block on a FIFO.
OPEN_FLAGS = (
    os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
)
# Who holds the lock is no secret: others may read it (a run as another user can then name the holder).
FILE_MODE = 0o644


def lock_argument_spec():
    """The lock options of the modules that change an engine (see the _lock doc fragment)."""
    return ArgumentSpec(dict(
        lock_timeout=dict(type="int", default=DEFAULT_LOCK_TIMEOUT),
        lock_dir=dict(type="path"),
    ))


def lock_file_name(engine_id):
    """A safe file name for the lock of ENGINE_ID, by the same digest as its layer cache's."""
    return "lock-" + engine_digest(engine_id) + ".json"


class LockError(Exception):
    """The lock cannot be taken; the message is for the operator and names the option or the holder."""


def check_lock_timeout(value):
    """LockError naming lock_timeout unless VALUE (an int, as the argument spec converts it) is 0 or more."""
    if value < 0:
        raise LockError(f"lock_timeout must be 0 or more seconds (0: fail at once when another run holds the lock), "
                        f"got {value}.")


def prepare_lock_dir(directory, environ=None):
    """The lock directory (DIRECTORY, or default_cache_dir() when it is None or empty), made 0700 if missing with its
    missing parents. LockError naming lock_dir when it cannot be made or written by the user that runs the module."""
    directory = directory or default_cache_dir(environ)
    try:
        make_dirs(directory)
    except OSError as exc:
        raise LockError(f"lock_dir {directory} cannot be created: {os_error_text(exc)}. Nothing was changed.") from None
    if not os.path.isdir(directory):
        raise LockError(f"lock_dir {directory} is not a directory. Nothing was changed.")
    if not os.access(directory, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
        raise LockError(f"lock_dir {directory} is not writable by uid {os.geteuid()} that runs the module. "
                        "Nothing was changed.")
    return directory


def identity(engine_id, module_name=None, environ=None, now=None):
    """Who this process is, as the lock file holds it."""
    environ = os.environ if environ is None else environ
    job_id = next((environ[name] for name in JOB_ID_VARIABLES if environ.get(name)), None)
    return {"format": LOCK_FORMAT, "engine_id": engine_id, "pid": os.getpid(), "host": socket.gethostname(),
            "since": iso_time(time.time() if now is None else now), "module": module_name, "job_id": job_id}


def parse_identity(raw):
    """The identity in RAW (the file's bytes) if it is exactly what identity() writes, else None."""
    if not raw or len(raw) > IDENTITY_LIMIT:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != LOCK_FORMAT or isinstance(data.get("format"), bool):
        return None
    pid = data.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    if not all(isinstance(data.get(key), str) for key in ("host", "since")):
        return None
    if not all(data.get(key) is None or isinstance(data.get(key), str) for key in ("engine_id", "module", "job_id")):
        return None
    return data


def describe_holder(holder):
    """The holder as a message names it: 'pid 1234 on host h (reclaim.docker.prune, job 42)'."""
    if holder is None:
        return "a process that has not yet written who it is"
    details = [part for part in (holder.get("module"), holder.get("job_id") and f"job {holder['job_id']}") if part]
    return f"pid {holder['pid']} on host {holder['host']}" + (f" ({', '.join(details)})" if details else "")


class EngineLock:
    """The lock of one engine: acquire() takes it (waiting up to a timeout), release() gives it back; also a context
    manager. Nothing is written before the lock is held, and only into the lock's own file."""

    def __init__(self, directory, engine_id, engine_label=None, module_name=None, environ=None):
        self.directory = directory
        self.engine_id = engine_id
        self.engine_label = engine_label or engine_id
        self.module_name = module_name
        self.environ = environ
        self.path = os.path.join(directory, lock_file_name(engine_id))
        self.fd = None
        # After acquire() (both None when the lock was free at once): the seconds it waited, and each holder it waited
        # behind as (holder, seconds) in the order they held the lock (see waited_message()).
        self.waited = None
        self.waited_for = None
        self.problems = []

    @property
    def held(self):
        return self.fd is not None

    def __enter__(self):
        if not self.held:
            self.acquire(DEFAULT_LOCK_TIMEOUT)
        return self

    def __exit__(self, *exc_info):
        self.release()

    def acquire(self, timeout, sleep=time.sleep, clock=time.monotonic):
        """Take the lock, trying every POLL_INTERVAL for up to TIMEOUT seconds (0: once). LockError, naming the holder
        the file names, when it is still held then, or when the file cannot be opened."""
        if self.held:
            return self
        start = clock()
        deadline = start + timeout
        holder, seen = None, []  # seen: (holder, when a try first read it), a new one each time the file names another
        fd = self._open()
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise LockError(f"The lock file {self.path} cannot be locked: {os_error_text(exc)} "
                                        f"(lock_dir {self.directory}). Nothing was changed.") from None
                    holder = self._read_holder(fd)
                    now = clock()
                    if not seen or seen[-1][0] != holder:
                        seen.append((holder, now))
                    if now >= deadline:
                        raise LockError(self._held_message(holder, timeout)) from None
                    sleep(min(POLL_INTERVAL, deadline - now))
                    continue
                if self._at_path(fd):
                    break
                # Removed or replaced while this run waited: a lock on it excludes nobody. The file now at the path.
                os.close(fd)
                fd = None
                fd = self._open()
            self._write_identity(fd)
        except BaseException:
            if fd is not None:
                os.close(fd)  # releases the flock if it was taken
            raise
        self.fd = fd
        if seen:
            end = clock()
            # Each holder from the try that first read it (the first from the start) until the next one's, or the end.
            ends = [when for _holder, when in seen[1:]] + [end]
            begins = [start] + ends[:-1]
            self.waited = end - start
            self.waited_for = [(holder, until - since) for (holder, _when), since, until in zip(seen, begins, ends)]
        return self

    def release(self):
        """Empty the file (a clean release leaves no holder named) and give the lock back. Never raises OSError; the
        kernel releases it anyway when the process ends."""
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            pass
        os.close(fd)

    def waited_message(self):
        """The warning of a run that waited for the lock, or None. It names each holder that this run's tries read in
        the file, in the order they held the lock, each with the seconds waited behind it when there were several:
        'Waited 2.1 s for the lock of engine E, held by pid 7 on host h (reclaim.docker.prune) since T for 0.4 s, then
        by pid 9 on host h (reclaim.docker.prune) since T2 for 1.7 s.' A holder's time runs from the try that first
        read it (the first holder's from the start of the wait) to the try that read the next one (the last holder's
        to when the lock was taken), so it is known to within the time between two tries (POLL_INTERVAL, more on a busy
        host), and a run that held the lock only between two tries is not named. A try that read no one is named as
        such (describe_holder(None)): a holder between taking the lock and writing who it is, one that could not write
        it, or one between emptying the file and letting go."""
        if self.waited is None:
            return None
        several = len(self.waited_for) > 1
        held = ", then by ".join(
            describe_holder(holder) + (f" since {holder['since']}" if holder else "")
            + (f" for {seconds:.1f} s" if several else "")
            for holder, seconds in self.waited_for)
        return f"Waited {self.waited:.1f} s for the lock of engine {self.engine_label}, held by {held}."

    # The file

    def _open(self):
        try:
            fd = os.open(self.path, OPEN_FLAGS, FILE_MODE)
        except OSError as exc:
            reason = "it is a symbolic link" if exc.errno == errno.ELOOP else os_error_text(exc)
            raise LockError(f"The lock file {self.path} cannot be opened: {reason} (lock_dir {self.directory}). "
                            "Nothing was changed.") from None
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            mode = 0
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise LockError(f"The lock file {self.path} is not a regular file (lock_dir {self.directory}). "
                            "Nothing was changed.")
        return fd

    def _at_path(self, fd):
        """Whether FD is still the file at the lock's path."""
        try:
            here, there = os.fstat(fd), os.stat(self.path, follow_symlinks=False)
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def _write_identity(self, fd):
        data = json.dumps(identity(self.engine_id, self.module_name, self.environ), separators=(",", ":"))
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data.encode("utf-8", "surrogateescape"), 0)
        except OSError as exc:
            # The lock is held all the same; only a waiter that gives up cannot name this run.
            self.problems.append(f"The lock file {self.path} does not say who holds the lock: {os_error_text(exc)}.")

    def _read_holder(self, fd):
        """The holder's identity as the file gives it, or None when it gives none that can be trusted: empty (the
        holder has not written yet), not what identity() writes, or text left by a process of this host that has
        ended (a killed holder's, read in the moment before the new holder writes)."""
        try:
            holder = parse_identity(os.pread(fd, IDENTITY_LIMIT + 1, 0))
        except OSError:
            return None
        if holder is not None and holder["host"] == socket.gethostname() and not _running(holder["pid"]):
            return None
        return holder

    def _held_message(self, holder, timeout):
        if holder is None:
            held = f"Another run holds the lock of engine {self.engine_label} ({describe_holder(holder)})"
        else:
            held = (f"Another cleanup holds the lock of engine {self.engine_label} since {holder['since']}: "
                    f"{describe_holder(holder)}")
        return (f"{held}; waited {timeout} s (lock_timeout). Nothing was changed. The lock is released when that "
                f"run ends; its file is {self.path}.")


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it runs, as another user
    return True
