# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""Leaked storage under Docker's root dir, removed safely: which leaks a run may remove (pure: age and mounts), and
the removal of one, re-checked against the engine's metadata and the mounts just before.

The safety rules (the storage_leaks module's documentation states them):
- never a leak whose newest change (mtime or ctime of anything in it) is less than min_age ago: a pull, load or build
  in progress writes there before the engine's metadata names it;
- never one that a mount uses (its mount point, or an overlay's lowerdir, upperdir or workdir, in /proc/self/mountinfo);
- just before removal, the metadata is read again and the leak judged again; the mounts too; and a leak that changed
  since the walk (bytes or newest change) is kept;
- only paths where the engine keeps layers, snapshots and blobs (_root_dir.STORE_SLOTS, `-removing` entries), never a
  symbolic link followed.

Standard library only, Python 3.9 and later (it runs on the Docker host's Python).
"""

from __future__ import annotations

import datetime
import os
import re
import shutil

from ansible_collections.reclaim.docker.plugins.module_utils._disk_walk import walk_unit
from ansible_collections.reclaim.docker.plugins.module_utils._root_dir import judge, judge_link
from ansible_collections.reclaim.docker.plugins.module_utils._storage_index import OVERLAY2, read_index

MOUNTINFO = "/proc/self/mountinfo"
_OCTAL = re.compile(r"\\([0-7]{3})")
# The overlay options that name directories a mount uses.
OVERLAY_DIR_OPTIONS = ("lowerdir", "upperdir", "workdir")


def _unescape(text):
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text):
    """[(mount point, filesystem type, {option: value})] of the mounts in a /proc/PID/mountinfo TEXT."""
    mounts = []
    for line in text.splitlines():
        head, separator, tail = line.partition(" - ")
        fields = head.split()
        if not separator or len(fields) < 5:
            continue
        described = tail.split(" ", 2)
        fstype = described[0]
        options = {}
        for option in (described[2] if len(described) > 2 else "").split(","):
            key, _equals, value = option.partition("=")
            options[key] = value
        mounts.append((_unescape(fields[4]), fstype, options))
    return mounts


def paths_in_use(mounts, overlay_home, resolve):
    """The absolute paths MOUNTS use: each mount point, and each directory an overlay mount names (relative ones are
    relative to OVERLAY_HOME, where dockerd's overlay2 mounts from; RESOLVE turns overlay2's short links into the
    layer directories they point to)."""
    used = set()
    for mount_point, fstype, options in mounts:
        used.add(os.path.normpath(mount_point))
        if fstype != "overlay":
            continue
        for option in OVERLAY_DIR_OPTIONS:
            for directory in filter(None, _unescape(options.get(option, "")).split(":")):
                directory = os.path.normpath(os.path.join(overlay_home, directory))
                used.add(directory)
                used.add(os.path.normpath(resolve(directory)))
    return used


def used_by_mount(path, used):
    """Whether a path in USED is PATH or lies under it."""
    prefix = path.rstrip("/") + "/"
    return any(u == path or u.startswith(prefix) for u in used)


def plan_removals(leaks, used, now, min_age):
    """Which LEAKS (from _root_dir.categorize) a run removes: (removals, kept), each a list of
    {path, kind, bytes, age, last_changed} in path order, the kept ones with a reason. Pure."""
    removals, kept = [], []
    for leak in leaks:
        entry = describe(leak, now)
        if not leak["newest"] or now - leak["newest"] < min_age:
            kept.append(dict(entry, reason=f"too young: changed less than min_age ({int(min_age)} s) ago"))
        elif used_by_mount(leak["path"], used):
            kept.append(dict(entry, reason="a mount uses it (/proc/self/mountinfo)"))
        else:
            removals.append(entry)
    return removals, kept


def describe(leak, now):
    """A leak as the module returns it."""
    changed = datetime.datetime.fromtimestamp(leak["newest"], datetime.timezone.utc) if leak["newest"] else None
    return dict(path=leak["path"], relative_path=leak["relative_path"], kind=leak["kind"], bytes=leak["bytes"],
                links=leak["links"], age=int(now - leak["newest"]) if leak["newest"] else None,
                last_changed=changed.strftime("%Y-%m-%dT%H:%M:%SZ") if changed else None)


def current_mounts(root):
    """The paths the mounts of this host (as this process sees them) use, read now."""
    with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as handle:
        text = handle.read()
    home = os.path.join(root, OVERLAY2)
    return paths_in_use(parse_mountinfo(text), home, os.path.realpath)


def remove(root, removal, newest):
    """Remove one planned leak (REMOVAL, its NEWEST change as the walk saw it) after checking it again: the metadata
    read anew must still call it leaked, no mount may use it, and it must be as the walk found it. Returns the action:
    status done (bytes: what the removal freed, measured just before), skipped (with the reason) or failed."""
    action = dict(action="remove_leak", name=removal["path"], path=removal["path"], kind=removal["kind"],
                  bytes=removal["bytes"])
    path = removal["path"]
    links = [os.path.join(root, link) for link in removal["links"]]
    try:
        index = read_index(root)
        relative = removal["relative_path"]
        if removal["kind"] == "layer_link":
            target = index.links.get(relative)
            category, _kind = judge_link(relative, index, bool(target) and os.path.lexists(os.path.join(root, target)))
        else:
            category, _kind = judge(tuple(relative.split("/")), relative, index)
        if category != "leaked":
            return _skip(action, "the engine's metadata refers to it now" if category
                         else f"the engine's metadata cannot be read whole now ({'; '.join(index.problems)})")
        if used_by_mount(path, current_mounts(root)):
            return _skip(action, "a mount uses it now")
        if os.path.islink(path) != (removal["kind"] == "layer_link") or not all(map(os.path.islink, links)):
            return _skip(action, "it is not what the walk found (a symbolic link where none was, or none where one was)")
        units = [walk_unit(p) for p in [path] + links]
        if sum(u.freeable for u in units) != removal["bytes"] or max(u.newest for u in units) > newest:
            return _skip(action, "it changed since the walk")
        if units[0].is_dir:
            shutil.rmtree(path)
        else:
            os.unlink(path)
        for link in links:
            os.unlink(link)
    except FileNotFoundError:
        return _skip(action, "it is gone already")
    except OSError as exc:
        return dict(action, status="failed", bytes=0, engine_reason=f"cannot remove it: {exc.strerror or exc}")
    return dict(action, status="done")


def _skip(action, reason):
    return dict(action, status="skipped", bytes=0, engine_reason=reason)
