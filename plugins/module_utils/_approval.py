# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""Approved plans: an audit's plan is the contract (see the _approval doc fragment). Pure, but for option parsing.

A plan's objects are what its actions remove (_plan.plan_objects), each with the bytes its actions free. A run given
`approved` plans as usual with one more hold at the end of the planners' chain: an object that is not approved stays;
`not_approved` lists those the run would have removed without approval (priced by that plan); an approved object
that changed (now in use, tagged anew, gone) is a reported skip.
"""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec
from ansible_collections.reclaim.docker.plugins.module_utils._plan import ITEM_TYPES, Hold, plan_objects
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem


def approval_argument_spec():
    """The options approved and approved_engine_id, as prune and image_retention take them (doc fragment _approval)."""
    return ArgumentSpec(dict(
        approved=dict(type="list", elements="raw"),
        approved_engine_id=dict(type="str"),
    ))


class Approval:
    """What may be removed: everything the plan selects (no approved plan), or approved objects by ID. TAKEN: whether
    the module takes approved plans at all (then its result gives its own plan back, and not_approved)."""

    def __init__(self, items=None, engine_id=None, taken=True):
        self.items = items
        self.engine_id = engine_id
        self.taken = taken

    @classmethod
    def not_taken(cls):
        return cls(taken=False)

    @classmethod
    def from_params(cls, params):
        """The options approved and approved_engine_id, checked; ValueProblem names the option and the element."""
        approved = params["approved"]
        if approved is None:
            if params["approved_engine_id"] is not None:
                raise ValueProblem("approved_engine_id is set but approved is not: it names the engine an approved "
                                   "plan was made on.")
            return cls()
        if params["approved_engine_id"] == "":
            raise ValueProblem("approved_engine_id: an empty engine ID; leave it unset to apply the plan without the "
                               "check, or give the engine ID the plan was made on.")
        items = {}
        for index, element in enumerate(approved):
            item = dict(id=element) if isinstance(element, str) else element
            where = f"approved[{index}]"
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                raise ValueProblem(f"{where}: an item ID (a string) or a plan item (a dict with an id), got {element!r}.")
            references = item.get("references")
            if references is not None and not (isinstance(references, list)
                                               and all(isinstance(r, str) for r in references)):
                raise ValueProblem(f"{where}.references: a list of image references, got {references!r}.")
            if item.get("type") is not None and item["type"] not in ITEM_TYPES:
                raise ValueProblem(f"{where}.type: one of {', '.join(ITEM_TYPES)}, got {item['type']!r}.")
            items[item["id"]] = item
        return cls(items, params["approved_engine_id"])

    @property
    def restricts(self):
        return self.items is not None

    def without(self):
        """The same run's approval with no approved plan: what it would remove unrestricted."""
        return Approval(taken=self.taken)

    def engine_problem(self, engine_id):
        """Why a plan approved on another engine cannot apply to ENGINE_ID, or None."""
        if self.engine_id is None or self.engine_id == engine_id:
            return None
        return (f"approved_engine_id: the approved plan was made on engine {self.engine_id}, this is engine {engine_id}; "
                "a plan applies only to the engine it was made on. Nothing was changed.")

    def hold(self, item_id, references=()):
        """Why ITEM_ID stays under this approval (a Hold), or None. REFERENCES: an image's, now; approved with
        references, it must have gained none since (a tag someone added is not approved for removal)."""
        if self.items is None:
            return None
        item = self.items.get(item_id)
        if item is None:
            return Hold("not_approved", "not in the approved plan")
        # An item approved with its references ([] for a dangling image) keeps to them; a bare ID does not say.
        approved_references = item.get("references")
        new = sorted(set(references) - set(approved_references)) if approved_references is not None else []
        if new:
            return Hold("changed", f"changed since the plan was approved: new reference(s) {', '.join(new)}")
        return None

    def priced(self, plan):
        """The images whose layers price what this approval keeps out of PLAN (not approved, or skipped): their bytes
        in not_approved come from the plan made without approval, which deletes them."""
        if not self.restricts:
            return set()
        return {i["id"] for i in plan.not_approved + plan.skipped if i["type"] == "image"}


def complete(snapshot, plan, approval, unrestricted):
    """Complete PLAN, made under APPROVAL: `not_approved` is every object that UNRESTRICTED (the plan the run would
    have made without approval) removes and approval does not name, with the bytes it would free there; each approved
    object the plan does not remove (gone, changed, kept, no longer selected) is reported in plan.skipped."""
    plan.not_approved = [o for o in plan_objects(snapshot, unrestricted.actions) if o["id"] not in approval.items]
    accounted = {o["id"] for o in plan_objects(snapshot, plan.actions)} | {s["id"] for s in plan.skipped}
    for item_id, item in approval.items.items():
        if item_id in accounted:
            continue
        item_type = item.get("type") or _type_of(snapshot, item_id)
        kept = plan.kept.get(item_id)
        if kept:
            reason = f"approved, but it stays now: {kept['detail'] or kept['reason']}"
        elif _found(snapshot, item_type, item_id):
            reason = ("approved, but no longer selected by this run: it changed since the plan (tagged, used, or "
                      "newer) or the run's options differ")
        elif item_type in ("image", "container"):
            reason = "approved, but gone since the plan was made"
        else:
            reason = "approved, but not found by this run: gone since the plan, or not of a type this run prunes"
        plan.skipped.append(dict(type=item_type or "unknown", id=item_id, name=item.get("name") or item_id,
                                 reason=reason))
    return plan


def _type_of(snapshot, item_id):
    for item_type, objects in (("image", snapshot.images), ("container", snapshot.containers),
                               ("network", snapshot.networks), ("volume", snapshot.volumes)):
        if item_id in objects:
            return item_type
    if any(r.get("ID") == item_id for r in snapshot.build_cache):
        return "build_cache"
    return None


def _found(snapshot, item_type, item_id):
    objects = dict(image=snapshot.images, container=snapshot.containers, network=snapshot.networks,
                   volume=snapshot.volumes).get(item_type)
    if objects is not None:
        return item_id in objects
    return any(r.get("ID") == item_id for r in snapshot.build_cache)


def approval_result(snapshot, plan, engine_id):
    """The result keys of a run that takes `approved`: its plan, as an approved plan gives it back, and not_approved."""
    return dict(plan=dict(engine_id=engine_id, objects=plan_objects(snapshot, plan.actions)),
                not_approved=plan.not_approved)
