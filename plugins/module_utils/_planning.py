# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""What every planner works with: the snapshot, the plan it fills, the simulator of the engine's images as the plan
changes them (`images`), and the chain of holds each candidate goes through. Pure: no I/O.

The chain, in order: protection (protected by reference or label, younger than min_age, or of unknown age), in use by
containers that stay, and the approved plan (not approved, or changed since it was approved). A planner asks hold()
and decides; skip() is the one place a candidate that stays is recorded.
"""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._approval import Approval
from ansible_collections.reclaim.docker.plugins.module_utils._plan import Hold, Plan
from ansible_collections.reclaim.docker.plugins.module_utils._simulation import ImageDeletion, describe_containers


class Planning:
    def __init__(self, snapshot, approval=None, protection=None):
        self.snapshot = snapshot
        self.plan = Plan()
        self.images = ImageDeletion(snapshot, self.plan)
        self.approval = approval or Approval()
        self.protection = protection

    def hold(self, item_id, labels=None, created=None, references=(), users=(), protected=True):
        """The first hold of the chain on an object (a Hold), or None when it may go. LABELS, CREATED and REFERENCES
        are the object's, USERS the containers that stay and use it; PROTECTED false leaves protection out (a hold the
        caller already asked)."""
        hold = self.protection.hold(labels, created, references) if protected and self.protection else None
        if hold is None and users:
            hold = Hold("in_use", f"in use by container(s) {describe_containers(sorted(users, key=lambda c: c.name))}")
        return hold or self.approval.hold(item_id, references)

    def skip(self, item_type, item_id, name, hold):
        """Record that an object the run chose stays, for HOLD. One that is not approved is reported with the others the
        approved plan leaves out (_approval.complete lists them in not_approved)."""
        if hold.category != "not_approved":
            self.plan.skipped.append(dict(type=item_type, id=item_id, name=name, reason=str(hold)))

    def decide(self, item_type, item_id, name, selected, hold):
        """The planners' step for one candidate: SELECTED (True, False, or the Hold of an object that only an unknown
        time keeps out), then HOLD() (a Hold, or None; asked only of a selected object). Records the skip of a selected
        object that stays; True when the object goes."""
        if selected is False:
            return False
        why = selected if isinstance(selected, Hold) else hold()
        if why is not None:
            self.skip(item_type, item_id, name, why)
            return False
        return True
