# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The usage ledger: when each image and each volume was last seen in use on an engine, kept on the host in one file
per engine (see the _usage_ledger doc fragment), so that a container that ran and was removed (`docker run --rm`) still
counts as a use after it is gone.

Written by the modules that read the engine's containers (from the containers present and the engine's events since
the previous run) and by the usage tracker service of the role reclaim.docker.usage_tracker (from the event stream),
which runs this file and _host_files.py as they are, under the same package path: standard library only, Python 3.9
and later. Writers merge under an flock (the latest use of each image and volume wins), so none loses another's uses.
Losing the file costs only history: every problem is stated in `problems`, never raised, and the run goes on as if the
ledger were empty.

Format 2 added `volumes` to format 1; a format 1 file reads as one with no volume uses, and is written as format 2. A
collection that reads format 1 only ignores a format 2 file with a warning and writes it anew (that history is lost):
the tracker's program must come from the same collection as the modules (the role installs it).

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

LEDGER_FORMAT = 2
# The formats this code reads: 1 has no volume uses.
READABLE_FORMATS = (1, 2)
# Uses older than this are dropped when the file is written: no retention policy looks that far back.
KEEP_SECONDS = 400 * 86400
# The container events that show an image, and the volumes the container mounts, in use.
USE_EVENTS = ("create", "start", "die", "destroy")
# The volume events that name the container using the volume (Actor.Attributes.container); container events carry no
# mounts (measured on Docker 20.10 and 28.5, both stores), and a destroyed container can no longer be inspected.
VOLUME_USE_EVENTS = ("mount", "unmount")
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | \
    getattr(os, "O_CLOEXEC", 0)


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
    """Last use per image ID (last_use) and per volume name (volume_last_use) of one engine, and the time up to which
    its events were read (events_until)."""

    def __init__(self, path, engine_id=None):
        self.path = path
        self.engine_id = engine_id
        self.problems = []
        self.last_use = {}
        self.volume_last_use = {}
        self.events_until = None
        self._trusted = path is not None
        if path is not None:
            self.last_use, self.volume_last_use, self.events_until = self._load()

    @classmethod
    def for_engine(cls, directory, engine_id):
        return cls(os.path.join(directory or default_cache_dir(), ledger_file_name(engine_id)), engine_id)

    @property
    def enabled(self):
        return self.path is not None

    @property
    def directory(self):
        return os.path.dirname(self.path) or os.curdir

    def record(self, uses, events_until=None, now=None, volume_uses=None):
        """Merge USES ({image_id: unix seconds}) and VOLUME_USES ({volume name: unix seconds}) into the file, under its
        lock, keeping each one's latest use; set events_until if given (and later than the file's). Updates last_use
        and volume_last_use with what the file holds then. Returns whether the file was written (when not, `problems`
        says why)."""
        if not self.enabled or not self._trusted:
            return False
        name = os.path.basename(self.path)
        try:
            with _Directory(self.directory, create=True) as directory, _Locked(name + ".lock", directory):
                images, volumes, until = self._read(directory)
                if not self._trusted:
                    return False  # the file became someone else's since it was loaded: never touched
                _merge(images, uses)
                _merge(volumes, volume_uses or {})
                if events_until is not None and (until is None or events_until > until):
                    until = events_until
                latest = max(list(images.values()) + list(volumes.values()), default=0.0)
                horizon = (now if now is not None else latest) - KEEP_SECONDS
                images = {i: t for i, t in images.items() if t >= horizon}
                volumes = {v: t for v, t in volumes.items() if t >= horizon}
                text = json.dumps({"format": LEDGER_FORMAT, "engine_id": self.engine_id, "events_until": until,
                                   "images": images, "volumes": volumes}, separators=(",", ":"), sort_keys=True)
                write_atomically(name, text, ".usage-", dir_fd=directory.fd, owner=directory.give)
        except _Distrusted as exc:
            self.problems.append(f"The usage ledger {self.path} was not written: its directory {self.directory} {exc}.")
            return False
        except OSError as exc:
            self.problems.append(f"The usage ledger {self.path} was not written: {os_error_text(exc)}.")
            return False
        self.last_use, self.volume_last_use, self.events_until = images, volumes, until
        return True

    def _load(self):
        """What the file holds when the ledger is made: empty when there is no directory yet (record() makes it)."""
        try:
            with _Directory(self.directory, create=False) as directory:
                return self._read(directory)
        except (FileNotFoundError, NotADirectoryError):
            return {}, {}, None
        except _Distrusted as exc:
            return self._ignore(f"its directory {self.directory} {exc}", keep=False)
        except OSError as exc:
            return self._ignore(f"its directory {self.directory} cannot be opened ({os_error_text(exc)})", keep=True)

    def _read(self, directory):
        """(image uses, volume uses, events_until) of the file in DIRECTORY; empty when there is none or it cannot be
        trusted (then stated)."""
        name = os.path.basename(self.path)
        try:
            distrust = file_distrust(os.stat(name, dir_fd=directory.fd, follow_symlinks=False), directory.owner[0])
        except FileNotFoundError:
            return {}, {}, None
        except OSError as exc:
            return self._ignore(f"it cannot be examined ({os_error_text(exc)})", keep=True)
        if distrust:
            return self._ignore("it " + distrust, keep=False)
        try:
            fd = os.open(name, OPEN_FLAGS, dir_fd=directory.fd)
        except FileNotFoundError:
            return {}, {}, None
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
        return ({i: float(t) for i, t in data["images"].items()},
                {v: float(t) for v, t in (data.get("volumes") or {}).items()}, data["events_until"])

    def _ignore(self, reason, keep):
        """KEEP: the file is ours but unusable, written anew; otherwise someone else could write it: never touched."""
        if keep:
            self.problems.append(f"The usage ledger {self.path} was ignored and will be written anew: {reason}.")
        else:
            self.problems.append(f"The usage ledger {self.path} was ignored and will not be written: {reason}.")
            self._trusted = False
        return {}, {}, None


def _merge(current, uses):
    """Each use of USES into CURRENT where it is later."""
    for key, seen in uses.items():
        if seen > current.get(key, float("-inf")):
            current[key] = seen


def _is_time_map(value):
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(t, (int, float)) and not isinstance(t, bool) for k, t in value.items())


def _problem(data, engine_id):
    """Why DATA is not a ledger this code reads (the end of a sentence), or None."""
    if not isinstance(data, dict):
        return "it is not a JSON object"
    if data.get("format") not in READABLE_FORMATS or isinstance(data.get("format"), bool):
        return (f"its format is {data.get('format')!r}, this collection reads formats "
                f"{', '.join(str(f) for f in READABLE_FORMATS)}")
    if engine_id is not None and data.get("engine_id") != engine_id:
        return f"it is for engine {data.get('engine_id')!r}, not {engine_id!r}"
    until = data.get("events_until")
    if until is not None and (isinstance(until, bool) or not isinstance(until, (int, float))):
        return "its events_until is not a time"
    if not _is_time_map(data.get("images")):
        return "its images are not a map of image IDs to times"
    if data["format"] >= 2 and not _is_time_map(data.get("volumes")):
        return "its volumes are not a map of volume names to times"
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


def _event_time(event):
    return event["timeNano"] / 1e9 if event.get("timeNano") else float(event.get("time") or 0)


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
        seen = _event_time(event)
        if seen > uses.get(image_id, float("-inf")):
            uses[image_id] = seen
    return uses


def event_volume_uses(events, volumes_of_container):
    """The volume uses EVENTS show: {volume name: latest event time}. A volume's mount and unmount events name it
    (Actor.ID) and the container (Actor.Attributes.container); a container event (create, start, die, destroy) is a use
    of every volume the container mounts: VOLUMES_OF_CONTAINER(container_id) while it exists (its Mounts), and those
    its mount events in EVENTS name, which is all that tells them once it is destroyed. A container created and
    removed without being started (no mount event) while nothing could inspect it leaves no use."""
    mounted = {}
    for event in events:
        container = _volume_event_container(event)
        if container:
            mounted.setdefault(container, set()).add((event.get("Actor") or {}).get("ID") or event.get("id"))
    uses = {}
    for event in events:
        container = _volume_event_container(event)
        if container:
            names = {(event.get("Actor") or {}).get("ID") or event.get("id")}
        elif event.get("Type") == "container" and event.get("Action") in USE_EVENTS:
            container = (event.get("Actor") or {}).get("ID") or event.get("id")
            names = set(volumes_of_container(container) or ()) | mounted.get(container, set())
        else:
            continue
        seen = _event_time(event)
        for name in names:
            if name and seen > uses.get(name, float("-inf")):
                uses[name] = seen
    return uses


def _volume_event_container(event):
    """The container a volume's mount or unmount EVENT names, or None (any other event)."""
    if event.get("Type") != "volume" or event.get("Action") not in VOLUME_USE_EVENTS:
        return None
    return ((event.get("Actor") or {}).get("Attributes") or {}).get("container") or None
