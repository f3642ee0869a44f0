# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The image_remove module's job (see _runner.py for what a job is): the removal its options ask for, what it reads
(the snapshot, and the first name's image as community.docker.docker_image_remove returns it), its plan and its result
with docker_image_remove's keys and diff."""

from __future__ import annotations

import re

from ansible_collections.reclaim.docker.plugins.module_utils._apply import untagged_by
from ansible_collections.reclaim.docker.plugins.module_utils._approval import Approval
from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec
from ansible_collections.reclaim.docker.plugins.module_utils._connection import APIError, connection_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._image_plan import RemovalRequest, plan_image_removal
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import layer_cache_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._lock import lock_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._model import TAG, check_image_name, short_id
from ansible_collections.reclaim.docker.plugins.module_utils._plan import touched_images
from ansible_collections.reclaim.docker.plugins.module_utils._simulation import references_after_removing
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import usage_ledger_argument_spec

PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")
PLATFORM_MIN_API = "1.50"


class ImageRemoveJob:
    changes = "engine"
    # The names were asked for: the engine refusing one since the plan (409) fails the task; one already gone (404) is
    # what was asked.
    races = "fail"
    failure = "Could not remove"

    @staticmethod
    def argument_spec():
        return ArgumentSpec(dict(
            name=dict(type="list", elements="str", required=True),
            tag=dict(type="str", default="latest"),
            force=dict(type="bool", default=False),
            prune=dict(type="bool", default=True),
            remove_stopped_containers=dict(type="bool", default=False),
            platform=dict(type="str"),
        )).merge(connection_argument_spec(), layer_cache_argument_spec(), lock_argument_spec(),
                 usage_ledger_argument_spec())

    def __init__(self, params, check_mode, now):
        """Every option value, checked before the engine is contacted."""
        self.params = params
        self.warnings = []
        self.approval = Approval.not_taken()
        if not params["name"]:
            raise ValueProblem("name must list at least one image reference.")
        for name in params["name"]:
            check_image_name(name, "name")
        tag = params["tag"]
        if tag is None or not TAG.fullmatch(tag):
            raise ValueProblem(f"tag {tag!r} is not a tag: 1 to 128 letters, digits, _ . or - (not starting with . or -).")
        platform = params["platform"]
        if platform is not None and not PLATFORM.fullmatch(platform):
            raise ValueProblem(f"platform {platform!r} is not OS/ARCH[/VARIANT], for example linux/arm64.")
        self.request = RemovalRequest(params["name"], tag=tag, force=params["force"], prune_parents=params["prune"],
                                      remove_stopped_containers=params["remove_stopped_containers"], platform=platform)
        self.named = []
        self.image = {}

    def requirements(self, client):
        if self.params["platform"] is None:
            return None
        if not client.supports(PLATFORM_MIN_API):
            return (f"platform needs Docker Engine API {PLATFORM_MIN_API} or newer; the Docker daemon at "
                    f"{client.base_url} speaks {client.api_version}.")
        if not client.uses_containerd_store:
            return (f"platform needs the containerd image store (Docker 29, or Docker 28 with the containerd "
                    f"snapshotter); the Docker daemon at {client.base_url} uses {client.info().get('Driver')}.")
        return None

    def read(self, reader):
        snapshot = reader.snapshot()
        # The IDs of the images the names resolve to, in the order of the names (None for no match).
        resolved = [snapshot.resolve(name, self.params["tag"]) for name in self.params["name"]]
        self.named = [r[1].id if r else None for r in resolved]
        self.image = reader.read(lambda client: inspect(client, self.named[0]))
        return snapshot

    def plan(self, snapshot, approval):
        return plan_image_removal(snapshot, self.request, approval)

    @staticmethod
    def priced_by(snapshot, plan):
        return touched_images(plan)

    def result(self, run):
        snapshot, plan, effective = run.state, run.plan, run.done
        result = dict(
            untagged=untagged_by(effective),
            deleted=sorted({a["image"] for a in effective if a["action"] == "delete_image"
                            or a["action"] == "force_untag" and a["record_deleted"]}),
            removed_containers=[a["container"] for a in effective if a["action"] == "remove_container"],
            orphaned=[o for o in plan.orphaned
                      if any(a["action"] == "force_untag" and a["image"] == o["image"] for a in effective)],
            not_found=plan.not_found,
            image=self.image,
        )
        if run.diff or self.params["debug"]:
            result["diff"] = diff(snapshot, effective, self.named)
        for orphan in result["orphaned"]:
            run.warn(f"Image {short_id(orphan['image'])} was untagged but no space was freed: stopped container(s) "
                     f"{', '.join(orphan['container_names'])} still hold {orphan['bytes']} bytes of its layers. "
                     "Remove them (remove_stopped_containers) to free it.")
        return result, [f"{r['name']}: {r['reason']}" for r in plan.refusals]


def inspect(client, image_id):
    """community.docker.docker_image_remove's `image`: the inspect result before removal, {} when there is none."""
    if image_id is None:
        return {}
    try:
        return client.request("GET", f"/images/{image_id}/json") or {}
    except APIError as exc:
        if exc.status_code != 404:
            raise
    return {}  # gone since the snapshot: as for a name that matched nothing


def diff(snapshot, effective, named=()):
    """community.docker.docker_image_remove's before/after of the first name's image (NAMED[0]), plus `images`: the same
    for every image named or changed, after the actions that took effect (EFFECTIVE)."""
    concerned = sorted(({i for i in named if i} | {a["image"] for a in effective}) & set(snapshot.images))
    before = {i: set(snapshot.images[i].references) for i in concerned}
    after = {i: set(refs) for i, refs in before.items()}
    for action in effective:
        image = action["image"]
        if after.get(image) is None:
            continue
        if action["action"] == "untag":
            after[image] = references_after_removing(after[image], action["reference"], snapshot.containerd_store)
        elif action["action"] in ("delete_image", "force_untag"):
            after[image] -= set(action.get("untags", ()))
            if action["action"] == "delete_image" or action["record_deleted"]:
                after[image] = None
    first = named[0] if named else None

    def side(state):
        top = image_state(first, state[first]) if first in state else {"exists": False}
        return dict(top, images=[image_state(i, state[i], gone_keys=True) for i in concerned])

    return dict(before=side(before), after=side(after))


def image_state(image_id, references, gone_keys=False):
    """An image as community.docker.docker_image_remove's diff shows it: exists, id, tags and digests (sorted), or
    only exists=false when REFERENCES is None (gone); GONE_KEYS keeps the id and every key then (empty lists)."""
    if references is None:
        return dict(id=image_id, exists=False, tags=[], digests=[]) if gone_keys else dict(exists=False)
    return dict(id=image_id, exists=True, tags=sorted(r for r in references if "@" not in r),
                digests=sorted(r for r in references if "@" in r))
