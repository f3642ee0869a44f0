# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The usage ledger: when each image was last seen in use on an engine, kept on the host in one file per engine (see
the _usage_ledger doc fragment), so that a container that ran and was removed (`docker run --rm`) still counts as a
use after it is gone.

Written by the modules that read the engine's containers (from the containers present and the engine's events since
the previous run) and by the usage tracker service of the role reclaim.docker.usage_tracker (from the event stream),
which runs this file and _host_files.py as they are, under the same package path: standard library only, Python 3.9
and later. Writers merge under an flock (the latest use of each image wins), so none loses another's uses. Losing the
file costs only history: every problem is stated in `problems`, never raised, and the run goes on as if the ledger
were empty.

The modules usually run as root and the tracker as its own user, and both write the one file, so the ledger belongs
to its directory's owner (see the doc fragment): a reader trusts the directory when it owns it, or when it is root;
it trusts a file there that the directory's owner owns (or it does itself); nothing that group or others may write,
no symbolic link. Root writes the files as the directory's owner's. The directory is opened once and every file is
reached through that descriptor, so a directory swapped for a symbolic link after the check is never followed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat

from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec
from ansible_collections.reclaim.docker.plugins.module_utils._host_files import (
    DIRECTORY_FLAGS,
    OPEN_FLAGS,
    UNSAFE_MODE_BITS,
    default_cache_dir,
    engine_digest,
    make_dirs,
    os_error_text,
    write_atomically,
)

LEDGER_FORMAT = 1
# Uses older than this are dropped when the file is written: no retention policy looks that far back.
KEEP_SECONDS = 400 * 86400
# The container events that show an image in use.
USE_EVENTS = ("create", "start", "die", "destroy")
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | \
    getattr(os, "O_CLOEXEC", 0)


def usage_ledger_argument_spec():
    """The ledger options of the modules that read containers (see the _usage_ledger doc fragment)."""
    return ArgumentSpec(dict(
        usage_ledger=dict(type="bool", default=True),
        usage_ledger_dir=dict(type="path"),
    ))


def ledger_file_name(engine_id):
    """The ledger of ENGINE_ID, named by the same digest as its layer cache and lock."""
    return "usage-" + engine_digest(engine_id) + ".json"


def directory_distrust(st, euid=None):
    """Why the ledger's directory, with stat ST, must not be used by EUID (default: this process), or None. Its owner
    owns the ledger: a user trusts a directory it owns; root trusts any (the tracker's user's)."""
    euid = os.geteuid() if euid is None else euid
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_mode & UNSAFE_MODE_BITS:
        return f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    if st.st_uid != euid and euid != 0:
        return f"is owned by uid {st.st_uid}, not by uid {euid} that runs this (only root uses another user's)"
    return None


def file_distrust(st, directory_owner, euid=None):
    """Why a file of the ledger (stat ST) in a directory DIRECTORY_OWNER owns must not be used by EUID, or None: it
    must be a regular file that the directory's owner owns, or EUID itself (root's own file in the tracker's
    directory), and that group and others cannot write."""
    euid = os.geteuid() if euid is None else euid
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid not in (directory_owner, euid):
        if directory_owner == euid:
            return f"is owned by uid {st.st_uid}, not by uid {euid} that owns its directory and runs this"
        return f"is owned by uid {st.st_uid}, neither by uid {directory_owner} that owns its directory nor by uid {euid}"
    if st.st_mode & UNSAFE_MODE_BITS:
        return f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


class _Distrusted(Exception):
    """The ledger's directory must not be used; the message says why (the end of a sentence)."""


class _Directory:
    """The ledger's directory, opened without following a symbolic link and checked by the stat of what was opened:
    FD for the calls that take dir_fd, OWNER (uid, gid), and GIVE, the (uid, gid) that root gives the files it writes
    there (None: the writer's own files are the owner's)."""

    def __init__(self, path, create):
        if create:
            make_dirs(path)
        try:
            self.fd = os.open(path, DIRECTORY_FLAGS)
        except OSError as exc:
            # O_NOFOLLOW with O_DIRECTORY: a symbolic link fails with ELOOP or ENOTDIR.
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
                raise _Distrusted("is a symbolic link") from None
            raise
        st = os.fstat(self.fd)
        distrust = directory_distrust(st)
        if distrust:
            os.close(self.fd)
            raise _Distrusted(distrust)
        self.owner = (st.st_uid, st.st_gid)
        self.give = self.owner if os.geteuid() != st.st_uid else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


class UsageLedger:
    """Last use per image ID of one engine, and the time up to which its events were read (events_until)."""

    def __init__(self, path, engine_id=None):
        self.path = path
        self.engine_id = engine_id
        self.problems = []
        self.last_use = {}
        self.events_until = None
        self._trusted = path is not None
        if path is not None:
            self.last_use, self.events_until = self._load()

    @classmethod
    def for_engine(cls, directory, engine_id):
        return cls(os.path.join(directory or default_cache_dir(), ledger_file_name(engine_id)), engine_id)

    @property
    def enabled(self):
        return self.path is not None

    @property
    def directory(self):
        return os.path.dirname(self.path) or os.curdir

    def record(self, uses, events_until=None, now=None):
        """Merge USES ({image_id: unix seconds}) into the file, under its lock, keeping each image's latest use; set
        events_until if given (and later than the file's). Updates last_use with what the file holds then. Returns
        whether the file was written (when not, `problems` says why)."""
        if not self.enabled or not self._trusted:
            return False
        name = os.path.basename(self.path)
        try:
            with _Directory(self.directory, create=True) as directory, _Locked(name + ".lock", directory):
                current, until = self._read(directory)
                if not self._trusted:
                    return False  # the file became someone else's since it was loaded: never touched
                for image_id, seen in uses.items():
                    if seen > current.get(image_id, float("-inf")):
                        current[image_id] = seen
                if events_until is not None and (until is None or events_until > until):
                    until = events_until
                horizon = (now if now is not None else max(current.values(), default=0.0)) - KEEP_SECONDS
                current = {i: t for i, t in current.items() if t >= horizon}
                text = json.dumps({"format": LEDGER_FORMAT, "engine_id": self.engine_id, "events_until": until,
                                   "images": current}, separators=(",", ":"), sort_keys=True)
                write_atomically(name, text, ".usage-", dir_fd=directory.fd, owner=directory.give)
        except _Distrusted as exc:
            self.problems.append(f"The usage ledger {self.path} was not written: its directory {self.directory} {exc}.")
            return False
        except OSError as exc:
            self.problems.append(f"The usage ledger {self.path} was not written: {os_error_text(exc)}.")
            return False
        self.last_use, self.events_until = current, until
        return True

    def _load(self):
        """What the file holds when the ledger is made: empty when there is no directory yet (record() makes it)."""
        try:
            with _Directory(self.directory, create=False) as directory:
                return self._read(directory)
        except (FileNotFoundError, NotADirectoryError):
            return {}, None
        except _Distrusted as exc:
            return self._ignore(f"its directory {self.directory} {exc}", keep=False)
        except OSError as exc:
            return self._ignore(f"its directory {self.directory} cannot be opened ({os_error_text(exc)})", keep=True)

    def _read(self, directory):
        """(uses, events_until) of the file in DIRECTORY; empty when there is none or it cannot be trusted (then
        stated)."""
        name = os.path.basename(self.path)
        try:
            distrust = file_distrust(os.stat(name, dir_fd=directory.fd, follow_symlinks=False), directory.owner[0])
        except FileNotFoundError:
            return {}, None
        except OSError as exc:
            return self._ignore(f"it cannot be examined ({os_error_text(exc)})", keep=True)
        if distrust:
            return self._ignore("it " + distrust, keep=False)
        try:
            fd = os.open(name, OPEN_FLAGS, dir_fd=directory.fd)
        except FileNotFoundError:
            return {}, None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return self._ignore("it is a symbolic link", keep=False)
            return self._ignore(f"it cannot be read ({os_error_text(exc)})", keep=True)
        try:
            with os.fdopen(fd, "rb") as handle:
                distrust = file_distrust(os.fstat(fd), directory.owner[0])  # what was opened, not what was examined
                if distrust:
                    return self._ignore("it " + distrust, keep=False)
                raw = handle.read()
        except OSError as exc:
            return self._ignore(f"it cannot be read ({os_error_text(exc)})", keep=True)
        problem = None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            data, problem = None, "it is not valid JSON"
        if problem is None:
            problem = _problem(data, self.engine_id)
        if problem:
            return self._ignore(problem, keep=True)
        return {i: float(t) for i, t in data["images"].items()}, data["events_until"]

    def _ignore(self, reason, keep):
        """KEEP: the file is ours but unusable, written anew; otherwise someone else could write it: never touched."""
        if keep:
            self.problems.append(f"The usage ledger {self.path} was ignored and will be written anew: {reason}.")
        else:
            self.problems.append(f"The usage ledger {self.path} was ignored and will not be written: {reason}.")
            self._trusted = False
        return {}, None


def _problem(data, engine_id):
    """Why DATA is not a ledger this code writes (the end of a sentence), or None."""
    if not isinstance(data, dict):
        return "it is not a JSON object"
    if data.get("format") != LEDGER_FORMAT or isinstance(data.get("format"), bool):
        return f"its format is {data.get('format')!r}, this collection reads format {LEDGER_FORMAT}"
    if engine_id is not None and data.get("engine_id") != engine_id:
        return f"it is for engine {data.get('engine_id')!r}, not {engine_id!r}"
    until = data.get("events_until")
    if until is not None and (isinstance(until, bool) or not isinstance(until, (int, float))):
        return "its events_until is not a time"
    images = data.get("images")
    if not isinstance(images, dict) or not all(
            isinstance(i, str) and isinstance(t, (int, float)) and not isinstance(t, bool) for i, t in images.items()):
        return "its images are not a map of image IDs to times"
    return None


class _Locked:
    """An exclusive flock on NAME (created 0600) in DIRECTORY for a read-merge-write; released when the block ends or
    the process does. Root gives it to the directory's owner, so that the owner's own writers can open it too."""

    def __init__(self, name, directory):
        self.name = name
        self.directory = directory
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.name, _LOCK_FLAGS, 0o600, dir_fd=self.directory.fd)
        try:
            st = os.fstat(self.fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EPERM, f"its lock {self.name} is not a regular file")
            if self.directory.give and (st.st_uid, st.st_gid) != self.directory.give:
                os.fchown(self.fd, *self.directory.give)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the flock


def event_uses(events, image_of_container, resolve):
    """The image uses EVENTS show: {image_id: latest event time}. A container event names the container (its image is
    IMAGE_OF_CONTAINER(container_id) while it exists) and the image as the user gave it (Actor.Attributes.image, a
    tag, digest reference or ID), which RESOLVE(reference) turns into an image ID or None (a tag moved or removed since
    cannot be resolved: that use is lost)."""
    uses = {}
    for event in events:
        if event.get("Type") != "container" or event.get("Action") not in USE_EVENTS:
            continue
        actor = event.get("Actor") or {}
        image_id = image_of_container(actor.get("ID") or event.get("id")) or \
            resolve((actor.get("Attributes") or {}).get("image") or event.get("from") or "")
        if not image_id:
            continue
        seen = event["timeNano"] / 1e9 if event.get("timeNano") else float(event.get("time") or 0)
        if seen > uses.get(image_id, float("-inf")):
            uses[image_id] = seen
    return uses
