# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The prune module's job (see _runner.py for what a job is): its options, the prune request they make, what it reads,
its plan and its result, with community.docker.docker_prune's keys."""

from __future__ import annotations

import re

from ansible_collections.reclaim.docker.plugins.module_utils._apply import untagged_by
from ansible_collections.reclaim.docker.plugins.module_utils._approval import Approval, approval_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec
from ansible_collections.reclaim.docker.plugins.module_utils._connection import connection_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._disk_usage import image_usage, predicted_usage
from ansible_collections.reclaim.docker.plugins.module_utils._filters import Filters
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import layer_cache_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._lock import lock_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._plan import race_skips, touched_images
from ansible_collections.reclaim.docker.plugins.module_utils._protection import Protection, protection_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._prune_plan import OBJECT_TYPES, PruneRequest, plan_prune
from ansible_collections.reclaim.docker.plugins.module_utils._snapshot import load_stop_times
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem, parse_size
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import usage_ledger_argument_spec

FULL_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")


class PruneJob:
    changes = "engine"
    # A race is a reported skip (skipped_items): a prune removes what it finds unused, and what is used now stays.
    races = "skip"
    failure = "Could not prune"

    @staticmethod
    def argument_spec():
        return ArgumentSpec(dict(
            containers=dict(type="bool", default=False),
            containers_filters=dict(type="dict"),
            images=dict(type="bool", default=False),
            images_filters=dict(type="dict"),
            networks=dict(type="bool", default=False),
            networks_filters=dict(type="dict"),
            volumes=dict(type="bool", default=False),
            volumes_filters=dict(type="dict"),
            builder_cache=dict(type="bool", default=False),
            builder_cache_all=dict(type="bool", default=False),
            builder_cache_filters=dict(type="dict"),
            builder_cache_keep_storage=dict(type="str"),
            assume_deleted=dict(type="list", elements="str", default=[]),
            usage=dict(type="bool", default=False),
        )).merge(connection_argument_spec(), protection_argument_spec(), layer_cache_argument_spec(),
                 lock_argument_spec(), usage_ledger_argument_spec(), approval_argument_spec())

    def __init__(self, params, check_mode, now):
        """Every option value, checked before the engine is even contacted."""
        self.params = params
        self.warnings = []
        # A switched-off type's filters are not read, as community.docker.docker_prune does not read them.
        filters = {t: Filters(t, params[f"{t}_filters"] if params[t] else None, now) for t in OBJECT_TYPES}
        protection = Protection(params["protect"], params["min_age"], now)
        keep = params["builder_cache_keep_storage"]
        keep_storage = parse_size(keep, "builder_cache_keep_storage") if keep is not None else None
        self.approval = Approval.from_params(params)
        if self.approval.restricts and params["builder_cache"]:
            # An approved record is pruned by its ID: BuildKit must not choose which records go.
            if keep_storage is not None:
                raise ValueProblem("builder_cache_keep_storage cannot be used with approved: BuildKit would choose the "
                                   "records, and only approved ones may go.")
            if "id" in filters["builder_cache"].values:
                raise ValueProblem("builder_cache_filters.id cannot be used with approved: each approved record is "
                                   "pruned by its own ID.")
        malformed = [i for i in params["assume_deleted"] if not FULL_IMAGE_ID.fullmatch(i)]
        if malformed:
            raise ValueProblem(f"assume_deleted takes full image IDs (sha256: and 64 hex digits), got {malformed}.")
        # Playbooks take a switch from a variable and leave its filters set: they are ignored, as docker_prune
        # ignores them, and the warning says so.
        idle = [(f"{t}_filters", t) for t in OBJECT_TYPES if params[f"{t}_filters"] and not params[t]]
        idle += [(option, "builder_cache") for option in ("builder_cache_all", "builder_cache_keep_storage")
                 if params[option] not in (None, False) and not params["builder_cache"]]
        for option, object_type in idle:
            self.warnings.append(f"{option} is ignored: {object_type} is false, so that prune does not run "
                                 "(community.docker.docker_prune ignores it too).")
        # The stricter of builder_cache_filters.until and min_age.
        untils = [getattr(filters["builder_cache"], "until", None)]
        if protection.min_age is not None:
            untils.append(now - protection.min_age)
        untils = [u for u in untils if u is not None]
        self.request = PruneRequest(
            [t for t in OBJECT_TYPES if params[t]], filters, protection, keep_all=params["builder_cache_all"],
            keep_storage=keep_storage, build_cache_until=min(untils) if untils else None,
            # Only a check run assumes: the real run of the earlier task has deleted them already.
            assume_deleted=params["assume_deleted"] if check_mode else ())
        self.usage_before = None

    @staticmethod
    def requirements(client):
        return None

    def read(self, reader):
        params = self.params
        if params["usage"]:
            self.usage_before = reader.read(image_usage)
        snapshot = reader.snapshot(networks=params["networks"], volumes=params["volumes"],
                                   build_cache=params["builder_cache"])
        if params["containers"] and "stopped_for" in self.request.filters["containers"].values:
            reader.read(lambda client: load_stop_times(client, snapshot))
        return snapshot

    def plan(self, snapshot, approval):
        return plan_prune(snapshot, self.request, approval)

    @staticmethod
    def priced_by(snapshot, plan):
        return touched_images(plan)

    def result(self, run):
        actions, done = run.actions, run.done

        def of(action_name, key):
            return [a[key] for a in done if a["action"] == action_name]

        def bytes_of(action_name):
            return sum(a["bytes"] for a in done if a["action"] == action_name)

        # One build cache prune, or one per approved record.
        caches = [a for a in actions if a["action"] == "prune_build_cache"]
        caches_done = [a for a in caches if a.get("status", "done") == "done"]
        result = dict(
            containers=of("remove_container", "container"),
            containers_space_reclaimed=bytes_of("remove_container"),
            images=of("delete_image", "image"),
            untagged=untagged_by(done),
            images_space_reclaimed=bytes_of("delete_image"),
            networks=of("remove_network", "name"),
            volumes=of("remove_volume", "name"),
            volumes_space_reclaimed=bytes_of("remove_volume"),
            builder_cache_space_reclaimed=sum(a["bytes"] for a in caches_done),
            builder_cache_caches_deleted=[record for a in caches_done for record in a.get("caches_deleted", [])],
            skipped_items=run.plan.skipped + race_skips(actions),
            check_mode=run.check_mode,
        )
        if self.params["builder_cache"]:
            # No call at all when an approved plan approves no record.
            result["builder_cache_prediction"] = dict(bytes=sum(a.get("predicted_bytes", a["bytes"]) for a in caches),
                                                      records=sum(a["records"] for a in caches),
                                                      exact=all(a["exact"] for a in caches))
        if self.params["usage"]:
            if run.check_mode:
                usage_after = predicted_usage(self.usage_before, result["images_space_reclaimed"],
                                              sum(a["bytes"] for a in done))
            else:
                usage_after = run.reader.read(image_usage)
            result.update(usage_before=self.usage_before, usage_after=usage_after)
        return result, []
