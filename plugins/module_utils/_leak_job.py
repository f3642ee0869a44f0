# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The storage_leaks module's job: its options checked before the engine is contacted, one scan of the root dir, the
plan (which leaks go, which stay and why), the removals, the result.

Standard library only, Python 3.9 and later (it runs on the Docker host's Python).
"""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._root_dir_scan import (
    remote_host_problem,
    root_dir_problem,
    scan,
)
from ansible_collections.reclaim.docker.plugins.module_utils._storage_leaks import current_mounts, plan_removals, remove
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem, parse_duration


class LeakJob:
    def __init__(self, params, now):
        self.now = now
        self.root = None
        self.removals, self.kept, self.leaks = [], [], []
        self.min_age = None
        self.problem = remote_host_problem(params, "storage_leaks")
        if self.problem:
            return
        try:
            self.min_age = parse_duration(params["min_age"], "min_age")
        except ValueProblem as exc:
            self.problem = str(exc)

    def scan(self, engine):
        """Walk the engine's root dir and plan; the problem that stops the run (None when there is none)."""
        self.root = engine["docker_root_dir"]
        problem = root_dir_problem(self.root, engine["id"])
        if problem:
            return problem
        try:
            report, self.leaks = scan(self.root, engine["image_store"])
            used = current_mounts(self.root)
        except OSError as exc:
            return f"{exc.filename or self.root} cannot be read ({exc.strerror or exc})"
        if not report["exact"]:
            return report["inexact_reason"]
        self.removals, self.kept = plan_removals(self.leaks, used, self.now, self.min_age)
        return None

    @property
    def actions(self):
        """The plan as actions (check mode returns them as they are)."""
        return [dict(action="remove_leak", name=r["path"], path=r["path"], kind=r["kind"], bytes=r["bytes"])
                for r in self.removals]

    def apply(self):
        newest = {leak["path"]: leak["newest"] for leak in self.leaks}
        return [remove(self.root, removal, newest[removal["path"]]) for removal in self.removals]

    def result(self):
        return dict(leaks=self.removals, kept=self.kept, leaked_bytes=sum(leak["bytes"] for leak in self.leaks),
                    root_dir=self.root)
