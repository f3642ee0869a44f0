# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The storage_leaks module's job (see _runner.py for what a job is): its options, one scan of the root dir, the plan
(which leaks go, which stay and why), the removals, the result.

Standard library only, Python 3.9 and later (it runs on the Docker host's Python).
"""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._approval import Approval
from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec
from ansible_collections.reclaim.docker.plugins.module_utils._connection import connection_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._lock import lock_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._plan import Plan
from ansible_collections.reclaim.docker.plugins.module_utils._root_dir_scan import (
    remote_host_problem,
    root_dir_problem,
    scan,
)
from ansible_collections.reclaim.docker.plugins.module_utils._storage_leaks import current_mounts, plan_removals, remove
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem, parse_duration


class LeakJob:
    changes = "host"
    # A leak found in use or changed just before its removal is a reported skip.
    races = "skip"
    failure = "Could not remove every leak"

    @staticmethod
    def argument_spec():
        return ArgumentSpec(dict(min_age=dict(type="str", default="24h"))).merge(connection_argument_spec(),
                                                                                 lock_argument_spec())

    def __init__(self, params, check_mode, now):
        self.now = now
        self.warnings = []
        self.approval = Approval.not_taken()
        problem = remote_host_problem(params, "storage_leaks")
        if problem:
            raise ValueProblem(problem)
        self.min_age = parse_duration(params["min_age"], "min_age")
        self.root = None
        self.leaks = []
        self.removals = []
        self.kept = []

    @staticmethod
    def requirements(client):
        return None

    def read(self, reader):
        """Walk the engine's root dir: the leaks found, and the mounts in use."""
        engine = reader.read(lambda client: client.facts())
        self.root = engine["docker_root_dir"]
        problem = root_dir_problem(self.root, engine["id"])
        if problem:
            reader.fail(f"Cannot tell leaked storage: {problem}. Nothing was changed.")
        try:
            report, self.leaks = scan(self.root, engine["image_store"])
            used = current_mounts(self.root)
        except OSError as exc:
            reader.fail(f"Cannot tell leaked storage: {exc.filename or self.root} cannot be read "
                        f"({exc.strerror or exc}). Nothing was changed.")
        if not report["exact"]:
            reader.fail(f"Cannot tell leaked storage: {report['inexact_reason']}. Nothing was changed.")
        return used

    def plan(self, used, approval):
        self.removals, self.kept = plan_removals(self.leaks, used, self.now, self.min_age)
        plan = Plan()
        for removal in self.removals:
            plan.add("remove_leak", name=removal["path"], path=removal["path"], kind=removal["kind"],
                     bytes=removal["bytes"])
        return plan

    def apply(self, client, used, plan):
        """Each planned removal, checked again just before (see _storage_leaks.remove), in plan order."""
        newest = {leak["path"]: leak["newest"] for leak in self.leaks}
        return [remove(self.root, removal, newest[removal["path"]]) for removal in self.removals]

    def result(self, run):
        return dict(leaks=self.removals, kept=self.kept, leaked_bytes=sum(leak["bytes"] for leak in self.leaks),
                    root_dir=self.root), []
