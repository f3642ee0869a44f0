# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The plan every planner returns, and the vocabulary of its actions: which object each removes, how a message names
it, the plan's objects as a result lists them. Pure: no I/O."""

from __future__ import annotations

from collections import namedtuple

from ansible_collections.reclaim.docker.plugins.module_utils._model import short_id

# The types of the engine objects a plan removes, as `plan.objects`, `skipped_items` and an approved plan name them
# (storage_leaks removes host files of type leak).
ITEM_TYPES = ("container", "image", "network", "volume", "build_cache")
# Each action: the type of object it removes, and the key of the action that names the object (None: build cache
# records, named by the action's record_items).
ACTIONS = dict(
    remove_container=("container", "container"),
    untag=("image", "image"),
    delete_image=("image", "image"),
    force_untag=("image", "image"),
    delete_platform=("image", "image"),
    remove_network=("network", "network"),
    remove_volume=("volume", "volume"),
    prune_build_cache=("build_cache", None),
    remove_leak=("leak", "path"),
)


class Hold(namedtuple("Hold", ("category", "detail"))):
    """Why something must stay: a CATEGORY to count by (protected, too_young, unknown_time, in_use, not_approved,
    changed, keep_last...) and DETAIL, the sentence for people, which is also what str() gives."""

    __slots__ = ()

    def __str__(self):
        return self.detail


UNKNOWN_TIME = Hold("unknown_time", "its creation time is unknown: kept as if new")
UNKNOWN_STOP = Hold("unknown_time", "when it stopped is unknown: kept as if it had just stopped")


class Plan:
    """A planner's answer: ordered actions (each with its reason and the bytes it frees) and what stays, with why.

    actions    the calls to make, in order.
    refusals   names the request asked for that cannot be removed (image_remove), with the reason.
    not_found  names that matched nothing (image_remove).
    orphaned   images force would untag while stopped containers keep their layers (image_remove).
    skipped    items the run chose that stay, each with type, id, name and reason (recorded by _planning.Planning.skip;
               approved items that stay, by _approval.complete).
    not_approved  items the run would remove without its approved plan (_approval.complete).
    violations images outside a retention policy, with reasons and what enforcing does (image_retention).
    kept       images a retention policy keeps, with the category and detail of why (image_retention).
    eviction   under a disk-pressure mark, how far eviction gets and what holds the rest (image_retention).
    """

    def __init__(self):
        self.actions = []
        self.refusals = []
        self.not_found = []
        self.orphaned = []
        self.skipped = []
        self.not_approved = []
        self.violations = {}
        self.kept = {}
        self.eviction = None

    def add(self, action, **fields):
        entry = dict(action=action, **fields)
        self.actions.append(entry)
        return entry

    def refuse(self, name, reason):
        self.refusals.append(dict(name=name, reason=reason))

    @property
    def reclaimed_bytes(self):
        return sum(a["bytes"] for a in self.actions)


def touched_images(plan):
    """The images a plan's actions delete or untag, and those of the containers it removes: the ones whose layers
    price it (a container's image may be gone already, its layers still held: see _snapshot.load_layers)."""
    return {a["image"] for a in plan.actions if a.get("image")}


def plan_objects(snapshot, actions):
    """The objects ACTIONS remove, in plan order: dict(type, id, name, bytes), an image's also with its references (all
    it has now: what the plan was made on), a build cache record's with its ID and size only."""
    objects = {}
    for action in actions:
        object_type, key = ACTIONS[action["action"]]
        if key is None:
            for record in action.get("record_items", ()):
                objects[(object_type, record["id"])] = dict(type=object_type, **record)
            continue
        object_id = action[key]
        entry = objects.get((object_type, object_id))
        if entry is None:
            entry = objects[(object_type, object_id)] = dict(type=object_type, id=object_id,
                                                             name=_object_name(snapshot, action), bytes=0)
            if object_type == "image":
                image = snapshot.images.get(object_id)
                entry["references"] = sorted(image.references) if image else []
        entry["bytes"] += action["bytes"]
    return list(objects.values())


def _object_name(snapshot, action):
    if ACTIONS[action["action"]][0] == "image":
        image = snapshot.images.get(action["image"])
        tags = sorted(image.repo_tags) if image else []
        return tags[0] if tags else short_id(action["image"])
    return action_label(action)


def action_label(action):
    """How a message names an action's object."""
    return (action.get("name") or action.get("reference") or action.get("container") or action.get("path")
            or action["action"])


def changed_something(action):
    """Whether an action that took effect changed anything (a build cache prune may find nothing to remove)."""
    if action["action"] != "prune_build_cache":
        return True
    return bool(action["caches_deleted"]) if "caches_deleted" in action else action["records"] > 0


def race_skips(actions):
    """The skipped_items entries of the actions the engine did not carry out because it changed since the plan (a 404
    or a 409: status skipped; less than planned: status partial), each with the engine's reason."""
    skips = []
    for action in actions:
        if action.get("status") not in ("skipped", "partial"):
            continue
        object_type, key = ACTIONS[action["action"]]
        skips.append(dict(type=object_type, id=action.get(key) if key else None, name=action_label(action),
                          reason=f"changed since the run read the engine: {action['engine_reason']}"))
    return skips
