# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The disk_usage_info module's job (see _runner.py for what a job is): it only reads, so it plans nothing. What
`docker system df` shows, the filesystem under Docker's root dir and, when asked, every byte of that root dir
explained."""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._approval import Approval
from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec
from ansible_collections.reclaim.docker.plugins.module_utils._connection import connection_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._disk_usage import (
    USAGE_TYPES,
    df_types,
    filesystem_usage,
    summarize,
)
from ansible_collections.reclaim.docker.plugins.module_utils._root_dir_scan import (
    remote_host_problem,
    root_dir_problem,
    scan,
)
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem


class DiskUsageJob:
    changes = None
    races = "skip"
    failure = "Could not read disk usage"

    @staticmethod
    def argument_spec():
        return ArgumentSpec(dict(
            images=dict(type="bool", default=True),
            containers=dict(type="bool", default=True),
            volumes=dict(type="bool", default=False),
            build_cache=dict(type="bool", default=True),
            filesystem=dict(type="bool", default=True),
            root_dir=dict(type="bool", default=False),
        )).merge(connection_argument_spec())

    def __init__(self, params, check_mode, now):
        self.params = params
        self.warnings = []
        self.approval = Approval.not_taken()
        if params["root_dir"]:
            problem = remote_host_problem(params, "root_dir")
            if problem:
                raise ValueProblem(problem)
        self.usage_types = [t for t in USAGE_TYPES if params[t]]

    @staticmethod
    def requirements(client):
        return None

    def read(self, reader):
        engine = reader.read(lambda client: client.facts())
        df = reader.read(lambda client: client.system_df(df_types(self.usage_types))) if self.usage_types else {}
        root = engine["docker_root_dir"]
        filesystem = None
        if self.params["filesystem"] and reader.client.is_local and root:
            try:
                filesystem = filesystem_usage(root)
            except OSError as exc:
                reader.warn(f"Cannot read the filesystem of {root}: {exc}")
        state = dict(disk_usage=summarize(df, self.usage_types), filesystem=filesystem, engine=engine)
        if self.params["root_dir"]:
            problem = root_dir_problem(root, engine["id"])
            if problem:
                reader.fail(f"Cannot explain the root dir: {problem}.")
            state["root_dir"], _leaks = scan(root, engine["image_store"])
        return state

    @staticmethod
    def plan(state, approval):
        return None

    @staticmethod
    def result(run):
        return run.state, []
