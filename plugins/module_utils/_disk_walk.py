# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""One walk of a directory tree that counts bytes as `du -sx` does: allocated blocks (st_blocks * 512) of every file,
directory and link, each inode with several hard links once (where the walk meets it first), nothing on another
filesystem (a mount point and what is under it are left out, as du -x leaves them).

The walk sums the tree by units: a directory the caller names a unit (descend() says no) is summed whole, with the
newest change (mtime or ctime) of anything in it and the bytes its removal would free; a directory it descends into
counts its own inode only, and each entry in it is a unit of its own. So the units' bytes add up to the walk's total.

Standard library only, Python 3.9 and later (it runs on the Docker host's Python).
"""

from __future__ import annotations

import os
import stat

BLOCK = 512


class Unit:
    """What a unit holds: BYTES as du counts them in this walk (a hard-linked inode counted where met first),
    FREEABLE what deleting the unit would free (an inode with links outside it left out), NEWEST the latest mtime or
    ctime in it (a ctime cannot be set back by hand: this tells when anything in it last changed)."""

    __slots__ = ("path", "is_dir", "bytes", "freeable", "newest", "_links")

    def __init__(self, path, is_dir):
        self.path = path
        self.is_dir = is_dir
        self.bytes = 0
        self.freeable = 0
        self.newest = 0.0
        self._links = {}  # inode -> [blocks, links, links met in this unit]

    def add(self, st, first):
        size = st.st_blocks * BLOCK
        if first:
            self.bytes += size
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            met = self._links.setdefault(st.st_ino, [size, st.st_nlink, 0])
            met[2] += 1
        else:
            self.freeable += size
        self.newest = max(self.newest, st.st_mtime, st.st_ctime)

    def close(self):
        self.freeable += sum(size for size, links, met in self._links.values() if met >= links)
        self._links = {}

    def as_dict(self):
        return dict(path=self.path, is_dir=self.is_dir, bytes=self.bytes, freeable=self.freeable, newest=self.newest)


class Walk:
    """The units of a walk by relative path ("" for the top itself), their total and what could not be read."""

    def __init__(self, top, units, problems):
        self.top = top
        self.units = units
        self.problems = problems

    @property
    def bytes(self):
        return sum(unit.bytes for unit in self.units.values())


def walk(top, descend):
    """Walk TOP; DESCEND(parts) tells, for the directory at relative path PARTS (a tuple of names), whether to count
    each of its entries as a unit of its own (True) or to sum it whole as one unit (False). The top is always descended.
    A directory that cannot be read is named in the walk's problems, its bytes counted as far as they could be."""
    top_stat = os.lstat(top)
    device = top_stat.st_dev
    first = _first_sight()
    problems = []
    units = {}

    own = Unit("", True)
    own.add(top_stat, True)
    units[""] = own
    pending = [((), top)]
    while pending:
        parts, path = pending.pop()
        for name, st, child in _entries(path, problems):
            if st.st_dev != device:
                continue
            child_parts = parts + (name,)
            relative = "/".join(child_parts)
            if stat.S_ISDIR(st.st_mode) and descend(child_parts):
                unit = Unit(relative, True)
                unit.add(st, first(st))
                units[relative] = unit
                pending.append((child_parts, child))
                continue
            unit = Unit(relative, stat.S_ISDIR(st.st_mode))
            unit.add(st, first(st))
            if unit.is_dir:
                _sum_tree(child, device, unit, first, problems)
            unit.close()
            units[relative] = unit
    return Walk(top, units, problems)


def walk_unit(path, is_dir=True):
    """One unit on its own, as walk() would count it when it meets it first: what removing PATH frees (freeable),
    with its newest change. OSError when PATH is gone."""
    st = os.lstat(path)
    unit = Unit(path, stat.S_ISDIR(st.st_mode))
    problems = []
    unit.add(st, True)
    if unit.is_dir:
        _sum_tree(path, st.st_dev, unit, _first_sight(), problems)
    unit.close()
    if problems:
        raise OSError(problems[0])
    return unit


def _first_sight():
    """A test of whether a walk meets an entry's inode first: a file with several hard links counts once, where the walk
    meets it first (directories cannot be hard-linked)."""
    seen = set()

    def first(st):
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            if st.st_ino in seen:
                return False
            seen.add(st.st_ino)
        return True

    return first


def _sum_tree(path, device, unit, first, problems):
    pending = [path]
    while pending:
        directory = pending.pop()
        for _name, st, child in _entries(directory, problems):
            if st.st_dev != device:
                continue
            unit.add(st, first(st))
            if stat.S_ISDIR(st.st_mode):
                pending.append(child)


def _entries(directory, problems):
    """(name, lstat, path) of each entry of DIRECTORY; a problem noted when it cannot be read."""
    try:
        with os.scandir(directory) as scanner:
            found = []
            for entry in scanner:
                try:
                    found.append((entry.name, entry.stat(follow_symlinks=False), entry.path))
                except FileNotFoundError:
                    continue  # removed while we looked: nothing to count
            return found
    except FileNotFoundError:
        return []
    except OSError as exc:
        problems.append(f"{directory}: {exc.strerror or exc}")
        return []
