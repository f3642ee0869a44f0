# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The usage ledger: when each image was last seen in use on an engine, kept on the host in one file per engine (see
the _usage_ledger doc fragment), so that a container that ran and was removed (`docker run --rm`) still counts as a
use after it is gone.

Written by the modules that read the engine's containers (from the containers present and the engine's events since
the previous run) and by the usage tracker service of the role reclaim.docker.usage_tracker (from the event stream),
which runs this file and _layer_cache.py as they are, under the same package path: standard library only, Python 3.9
and later. Writers merge under an flock (the latest
use of each image wins), so none loses another's uses. Losing the file costs only history: every problem is stated in
`problems`, never raised, and the run goes on as if the ledger were empty.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os

from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import (
    _OPEN_FLAGS,
    _distrust,
    _make_dirs,
    _reason,
    default_cache_dir,
    engine_digest,
    write_atomically,
)

LEDGER_FORMAT = 1
# Uses older than this are dropped when the file is written: no retention policy looks that far back.
KEEP_SECONDS = 400 * 86400
# The container events that show an image in use.
USE_EVENTS = ("create", "start", "die", "destroy")


def usage_ledger_argument_spec():
    """The ledger options of the modules that read containers (see the _usage_ledger doc fragment)."""
    return dict(
        usage_ledger=dict(type="bool", default=True),
        usage_ledger_dir=dict(type="path"),
    )


def ledger_file_name(engine_id):
    """The ledger of ENGINE_ID, named by the same digest as its layer cache and lock."""
    return "usage-" + engine_digest(engine_id) + ".json"


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
            self.last_use, self.events_until = self._read()

    @classmethod
    def for_engine(cls, directory, engine_id):
        return cls(os.path.join(directory or default_cache_dir(), ledger_file_name(engine_id)), engine_id)

    @property
    def enabled(self):
        return self.path is not None

    def record(self, uses, events_until=None, now=None):
        """Merge USES ({image_id: unix seconds}) into the file, under its lock, keeping each image's latest use; set
        events_until if given (and later than the file's). Updates last_use with what the file holds then."""
        if not self.enabled or not self._trusted:
            return
        directory = os.path.dirname(self.path) or os.curdir
        try:
            _make_dirs(directory)
            distrust = _distrust(os.lstat(directory), directory=True)
            if distrust:
                raise OSError(errno.EPERM, f"its directory {directory} {distrust}")
            with _Locked(self.path + ".lock"):
                current, until = self._read()
                for image_id, seen in uses.items():
                    if seen > current.get(image_id, float("-inf")):
                        current[image_id] = seen
                if events_until is not None and (until is None or events_until > until):
                    until = events_until
                horizon = (now if now is not None else max(current.values(), default=0.0)) - KEEP_SECONDS
                current = {i: t for i, t in current.items() if t >= horizon}
                self._write(current, until)
        except OSError as exc:
            self.problems.append(f"The usage ledger {self.path} was not written: {_reason(exc)}.")
            return
        self.last_use, self.events_until = current, until

    def _read(self):
        """(uses, events_until) of the file; empty when there is none or it cannot be trusted (then stated)."""
        try:
            distrust = _distrust(os.lstat(self.path), directory=False)
        except (FileNotFoundError, NotADirectoryError):
            return {}, None  # none yet: record() makes the directory, or says why it cannot
        except OSError as exc:
            return self._ignore(f"it cannot be examined ({_reason(exc)})", keep=True)
        if distrust:
            return self._ignore("it " + distrust, keep=False)
        try:
            fd = os.open(self.path, _OPEN_FLAGS)
            with os.fdopen(fd, "rb") as handle:
                distrust = _distrust(os.fstat(handle.fileno()), directory=False)
                if distrust:
                    return self._ignore("it " + distrust, keep=False)
                raw = handle.read()
        except FileNotFoundError:
            return {}, None
        except OSError as exc:
            return self._ignore(f"it cannot be read ({_reason(exc)})", keep=exc.errno != errno.ELOOP)
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

    def _write(self, uses, events_until):
        text = json.dumps({"format": LEDGER_FORMAT, "engine_id": self.engine_id, "events_until": events_until,
                           "images": uses}, separators=(",", ":"), sort_keys=True)
        write_atomically(self.path, text, ".usage-")


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
    """An exclusive flock on PATH (created 0600) for a read-merge-write; released when the block ends or the process
    does."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
                          0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
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
