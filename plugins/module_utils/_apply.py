# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""Apply a plan: one engine call per action, in order, and nothing else.

An answer that the world changed since the snapshot (404: already gone, 409: now in use) makes the action
a reported skip with the engine's reason. Nothing is ever retried, and never with force.
"""

from __future__ import annotations

import json
import time

from ansible_collections.reclaim.docker.plugins.module_utils._connection import APIError
from ansible_collections.reclaim.docker.plugins.module_utils._units import go_duration

RACE_STATUSES = (404, 409)


def _delete_image(client, reference, force):
    # noprune: untagged parents are separate, planned actions (children first), never a side effect.
    return client.api.remove_image(reference, force=force, noprune=True) or []


def _delete_platform(client, reference, platform):
    parts = platform.split("/")
    wanted = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2:
        wanted["variant"] = parts[2]
    # The SDK has no platforms parameter. The engine demands force: the variant's content goes from
    # every image that references it, which the planner checked.
    response = client.api._delete(client.api._url("/images/{0}", reference),
                                  params={"force": 1, "noprune": 1, "platforms": json.dumps(wanted)})
    return client.api._result(response, json=True) or []


def _prune_build_cache(client, action):
    filters = dict(action["filters"])
    if action["until"] is not None:
        # BuildKit takes `until` as a duration before the moment it runs.
        filters["until"] = [go_duration(max(time.time() - action["until"], 0))]
    return client.api.prune_builds(filters=filters or None, keep_storage=action["keep_storage"],
                                   all=action["all"] or None)


def _call(client, action):
    kind = action["action"]
    if kind == "remove_container":
        client.api.remove_container(action["container"], v=False, force=False)
        return []
    if kind == "remove_network":
        client.api.remove_network(action["network"])
        return []
    if kind == "remove_volume":
        client.api.remove_volume(action["volume"], force=False)
        return []
    if kind == "prune_build_cache":
        return _prune_build_cache(client, action)
    if kind == "delete_platform":
        return _delete_platform(client, action["reference"], action["platform"])
    return _delete_image(client, action["reference"], action["force"])


def _check_outcome(outcome, records):
    """Correct OUTCOME by what the engine reports it did; return a note when it did less than planned."""
    deleted = {r["Deleted"] for r in records if r.get("Deleted")}
    if outcome["action"] == "force_untag":
        # A container started since the snapshot makes the engine untag without dropping the record.
        outcome["record_deleted"] = outcome["image"] in deleted
    if outcome["action"] == "delete_image" and outcome["image"] not in deleted:
        return "the engine untagged the image but kept it (something references it since the snapshot)"
    return None


def took_effect(actions):
    """The actions that happened: all of a check run's (they carry no status), the done ones of a real run."""
    return [a for a in actions if a.get("status", "done") == "done"]


def untagged_by(actions):
    """The references ACTIONS removed: an untag's reference, a deletion's (or force untag's) references."""
    return sorted({r for a in actions for r in ([a["reference"]] if a["action"] == "untag" else a.get("untags", []))})


def apply_plan(client, actions):
    """Execute ACTIONS in order; return them annotated with status done, skipped or failed."""
    applied = []
    for action in actions:
        outcome = dict(action)
        try:
            records = _call(client, action)
        except APIError as exc:
            status = exc.status_code
            outcome.update(status="skipped" if status in RACE_STATUSES else "failed", bytes=0,
                           engine_status=status, engine_reason=exc.explanation or str(exc))
            applied.append(outcome)
            continue
        outcome["status"] = "done"
        if action["action"] == "prune_build_cache":
            # BuildKit chose the records: report what it did next to what was predicted.
            outcome.update(predicted_bytes=action["bytes"], bytes=records.get("SpaceReclaimed") or 0,
                           caches_deleted=records.get("CachesDeleted") or [])
            applied.append(outcome)
            continue
        outcome["engine_response"] = records
        note = _check_outcome(outcome, records)
        if note:
            outcome.update(status="partial", bytes=0, engine_reason=note)
        applied.append(outcome)
    return applied
