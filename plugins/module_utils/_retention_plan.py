# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The retention planner: which images violate a policy, why, what enforcing it does and frees. Pure.

Policy: the N newest images of each repository are a floor (keep_last) that nothing else in the policy crosses;
outside it, a tag goes when keep_last alone is set, or when it is older than max_age; dangling images out; and under
disk pressure unused images outside the floor are evicted least recently used first until usage is at the low mark.
Never anything protected, in use (by any container, running or stopped), or younger than min_age.
"""

from __future__ import annotations

import math

from ansible_collections.reclaim.docker.plugins.module_utils._model import repository_of, short_id
from ansible_collections.reclaim.docker.plugins.module_utils._plan import Hold
from ansible_collections.reclaim.docker.plugins.module_utils._planning import Planning
from ansible_collections.reclaim.docker.plugins.module_utils._simulation import describe_containers

KEPT_REASONS = ("protected", "in_use", "too_young", "keep_last", "within_policy", "dangling_excluded")


class RetentionPolicy:
    def __init__(self, now, protection, keep_last=None, max_age=None, dangling=True, pressure=None):
        """PRESSURE: None, or dict(used, high, low, mark) with the usage and marks in bytes, and the mark as configured."""
        self.now = now
        self.protection = protection
        self.keep_last = keep_last
        self.max_age = max_age
        self.dangling = dangling
        self.pressure = pressure


def last_use(snapshot, image):
    """When IMAGE was last used, and what says so: the usage ledger's last use when it knows one (the engine records
    none), else the newest container of the image, else its creation time."""
    seen = snapshot.last_use.get(image.id)
    if seen is not None:
        return seen, "ledger"
    containers = snapshot.containers_of(image.id)
    if containers:
        return max(c.created for c in containers), "containers"
    return image.created, "created"


class _RetentionPlanner:
    def __init__(self, snapshot, policy, approval):
        self.snapshot = snapshot
        self.policy = policy
        # Retention's own hold (protection, then use by any container, then age) comes before the approved plan's.
        self.planning = Planning(snapshot, approval)
        self.plan = self.planning.plan
        self.images = self.planning.images

    def _policy_hold(self, image):
        """Protected, in use (by any container, running or stopped), or too young: a Hold, or None."""
        hold = self.policy.protection.hold(image.labels, image.created, image.repo_tags)
        if hold and hold.category == "protected":
            return hold
        containers = self.snapshot.containers_of(image.id)
        if containers:
            return Hold("in_use", f"in use by container(s) {describe_containers(containers)}")
        return hold

    def _keep(self, image, category, detail):
        self.plan.kept[image.id] = dict(reason=category, detail=detail)

    def _violate(self, image, reason, tags):
        entry = self.plan.violations.setdefault(image.id, dict(reasons=[], untag=set()))
        if reason not in entry["reasons"]:
            entry["reasons"].append(reason)
        entry["untag"].update(tags)

    def _ranks(self):
        """Each image's rank, newest first, in each repository it has a tag in."""
        by_repo = {}
        for image in self.snapshot.images.values():
            for tag in image.repo_tags:
                by_repo.setdefault(repository_of(tag), set()).add(image.id)
        ranks = {}
        for repo, ids in by_repo.items():
            ordered = sorted(ids, key=lambda i: (-self.snapshot.images[i].created, i))
            for rank, image_id in enumerate(ordered):
                ranks[(repo, image_id)] = rank
        return ranks

    def evaluate(self):
        policy = self.policy
        ranks = self._ranks()
        for image in sorted(self.snapshot.images.values(), key=lambda i: (i.created, i.id)):
            if not image.repo_tags and self.snapshot.children_of(image.id):
                continue  # an untagged parent: it goes with its last child, not on its own
            hold = self._policy_hold(image)
            if hold:
                self._keep(image, hold.category, str(hold))
                continue
            if not image.repo_tags:
                if policy.dangling:
                    self._violate(image, "dangling", [])
                else:
                    self._keep(image, "dangling_excluded", "dangling: false")
                continue
            too_old = policy.max_age is not None and image.created < policy.now - policy.max_age
            floor = set()
            for tag in image.repo_tags:
                repository = repository_of(tag)
                if policy.keep_last is not None and ranks[(repository, image.id)] < policy.keep_last:
                    floor.add(repository)  # among the N newest: max_age and disk pressure never take the tag
                    continue
                for reason in self._reasons_outside_the_floor(repository, too_old):
                    self._violate(image, reason, [tag])
            if image.id in self.plan.violations:
                continue
            if floor:
                self._keep(image, "keep_last", f"among the last {policy.keep_last} of {', '.join(sorted(floor))}")
            else:
                self._keep(image, "within_policy", "not older than max_age" if policy.max_age is not None else "")
        self._enforce_violations()
        if policy.pressure:
            self._relieve_pressure()
        return self.plan

    def _reasons_outside_the_floor(self, repository, too_old):
        """Why a tag outside the keep_last floor of REPOSITORY violates the policy: keep_last alone takes it; with
        max_age, only when the image is older (the floor is set aside first, then max_age applies to the rest)."""
        policy = self.policy
        if policy.max_age is not None and not too_old:
            return []
        reasons = [f"not among the last {policy.keep_last} of {repository}"] if policy.keep_last is not None else []
        return reasons + (["older than max_age"] if too_old else [])

    def _delete(self, image, reason):
        # An untagged parent goes with its last child only if nothing holds it (protected, too young, not approved).
        freed, kept_parents = self.images.delete_unused(
            image, reason, lambda parent: self._policy_hold(parent) or self.planning.approval.hold(parent.id))
        for parent, hold in kept_parents:
            if hold.category in KEPT_REASONS:
                self._keep(parent, hold.category, str(hold))
            else:
                self.planning.skip("image", parent.id, short_id(parent.id), hold)
        return freed

    def _approval_hold(self, image):
        """The approved plan's hold on IMAGE (not approved, or tagged anew since), or None."""
        return self.planning.approval.hold(image.id, image.repo_tags)

    def _enforce_violations(self):
        for image_id, entry in self.plan.violations.items():
            image = self.snapshot.images[image_id]
            reason = "; ".join(entry["reasons"])
            hold = self._approval_hold(image)
            if hold:
                self.planning.skip("image", image.id, short_id(image.id), hold)
                entry["action"] = "not_approved" if hold.category == "not_approved" else "skipped"
            elif entry["untag"] < set(image.repo_tags):
                for tag in sorted(entry["untag"]):
                    self.images.untag(image, tag, f"{tag}: {reason}")
                entry["action"] = "untag"
            else:
                entry["action"] = "delete"
                entry["bytes"] = self._delete(image, f"image {short_id(image.id)}: {reason}")

    def _relieve_pressure(self):
        pressure = self.policy.pressure
        used = pressure["used"] - self.plan.reclaimed_bytes
        over = pressure["used"] > pressure["high"]
        if over:
            used = self._evict(pressure, used)
        kept = [k["reason"] for k in self.plan.kept.values()]
        self.plan.eviction = dict(
            mark=pressure["mark"], over_high_mark=over, low_mark_bytes=int(pressure["low"]), usage_after_bytes=int(used),
            short_by_bytes=math.ceil(used - pressure["low"]) if over and used > pressure["low"] else 0,
            held={category: kept.count(category) for category in KEPT_REASONS if category != "within_policy"})

    def _evict(self, pressure, used):
        """Delete unused images within the policy, least recently used first, until USED is at the low mark; the
        usage left."""
        kept = self.plan.kept
        # Only images within the policy: not the keep_last floor, nor (dangling: false) dangling images.
        eligible = [self.snapshot.images[i] for i, k in kept.items() if k["reason"] == "within_policy"]
        eligible.sort(key=lambda i: (last_use(self.snapshot, i)[0], i.id))
        # The configured mark, not live byte counts: a check run and the real run must give the same reasons.
        reason = f"disk pressure: over {pressure['mark']}"
        for image in eligible:
            if used <= pressure["low"]:
                break
            if self.images.gone(image.id):
                continue
            hold = self._approval_hold(image)
            if hold:
                self.planning.skip("image", image.id, short_id(image.id), hold)
                continue
            del kept[image.id]
            freed = self._delete(image, f"image {short_id(image.id)}: {reason}")
            used -= freed
            self.plan.violations[image.id] = dict(reasons=[reason], untag=set(image.repo_tags), action="delete",
                                                  bytes=freed)
        return used


def plan_retention(snapshot, policy, approval=None):
    """What enforcing the retention POLICY (a RetentionPolicy) does on SNAPSHOT, under APPROVAL (an Approval; None:
    everything the policy selects)."""
    return _RetentionPlanner(snapshot, policy, approval).evaluate()
