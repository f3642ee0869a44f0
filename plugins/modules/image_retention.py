#!/usr/bin/python
# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: image_retention
short_description: Check and enforce image retention policies, with exact space accounting
version_added: 0.1.0
description:
  - The O(keep_last) newest images of each repository are a floor, kept whatever O(max_age) and the watermarks say.
    Outside it, an image violates the policy when only O(keep_last) is set, or when it is older than O(max_age) (the floor
    is set aside first, then O(max_age) applies to the rest, as in GitLab's cleanup policy). Dangling images violate it
    (O(dangling)). Under disk pressure, unused images outside the floor are evicted least recently used first until usage
    is at the low mark; RV(eviction) says when what stays stops it short, with a warning.
  - Never touches an image that is protected (O(protect)), used by any container (running or stopped), or younger than
    O(min_age). These holds add to the floor; nothing else keeps an image that violates the policy.
  - Check mode is the audit. It reports every violation (image, tags, repositories, created, age, last use, each reason,
    bytes it would free), what is kept and why, and the predicted usage after enforcement. A real run enforces exactly
    that plan, never with force. Bytes come from the layer graph (shared layers counted once), unlike kubelet's image
    garbage collection, which adds image sizes.
  - An image counts in every repository it has a tag in. A tag outside the policy is untagged; an image left with no tag is
    deleted, and so are its untagged parents that nothing else needs.
  - The engine does not record when an image was last used. Last use is what the usage ledger (O(usage_ledger)) last
    saw, which survives C(docker run --rm); else the creation time of the newest container of the image; else the
    image's creation time. RV(violations[].last_use_source) says which.
  - Every option value is checked before the engine is contacted; options that give no policy (no O(keep_last),
    O(max_age), O(high_watermark) nor O(max_images_bytes), and O(dangling=false)) fail the task.
extends_documentation_fragment:
  - reclaim.docker._docker
  - reclaim.docker._protection
  - reclaim.docker._layer_cache
  - reclaim.docker._lock
  - reclaim.docker._usage_ledger
  - reclaim.docker._approval
attributes:
  check_mode:
    support: full
    description: The audit; it returns what a real run does and frees.
  diff_mode:
    support: none
    description: RV(violations) and RV(actions) say what changes.
  idempotent:
    support: full
    description: Once enforced, a second run finds no violation (unless time made images older than O(max_age)).
options:
  keep_last:
    description:
      - Per repository (the name without tag), the N newest images by creation time (the image ID breaks a tie) are kept
        whatever O(max_age), O(high_watermark) or O(max_images_bytes) say. Protected, in-use and too young images count
        among them when they are among the newest, and stay anyway.
      - Without O(max_age), the images beyond the N newest violate the policy; with it, only those older than O(max_age).
      - V(0) sets no floor.
    type: int
  max_age:
    description:
      - Images created longer ago than this violate the policy, except the O(keep_last) newest of each repository. A Go
        duration (V(720h)) or days and weeks (V(30d), V(2w)).
      - Not below O(min_age), which would keep the images that violate it.
    type: str
  dangling:
    description: Whether dangling (untagged) images are subject to the policy; when V(true) they violate it.
    type: bool
    default: true
  high_watermark:
    description:
      - Percent of the filesystem holding Docker's root directory. Above it, unused unprotected images are evicted, least
        recently used first, until the predicted usage is at or below O(low_watermark). Never one of the O(keep_last)
        newest of a repository; when only such images (or protected, in-use or too young ones) are left, eviction stops
        short of O(low_watermark), and RV(eviction) and a warning say by how much and what holds the rest.
      - Needs the module to run on the Docker host (a C(unix://) O(docker_host)). Reads every image's layer chain, since
        which images go depends on exactly what each frees.
    type: float
  low_watermark:
    description: Where eviction stops, in percent of the same filesystem. Below O(high_watermark).
    type: float
  max_images_bytes:
    description:
      - A budget for image storage (the engine's C(LayersSize)), in bytes or with a unit (V(500MB), V(10GiB), V(1.5G); units
        are powers of 1024, as in Docker). Above it, images are evicted as with O(high_watermark), down to the budget,
        never one of the O(keep_last) newest of a repository.
    type: str
  fail_on_violation:
    description: Fail (after reporting) when violations exist, for compliance audits in check mode.
    type: bool
    default: false
  report_kept:
    description: Return every kept image in RV(kept.images), not only the counts.
    type: bool
    default: false
notes:
  - A call that gets no answer within O(timeout) may still be carried out by the engine. It is reported with status
    V(unknown) unless its image is found gone afterwards, its bytes in RV(unknown_bytes), apart from RV(reclaimed_bytes);
    the task fails naming it, and the next run, which reads the engine afresh, settles it.
  - The bytes are exact to the engine's C(LayersSize) on every engine; on the containerd image store they include content
    blobs read from containerd's content store on the Docker host, and where that store cannot be read RV(exact) is false
    and they count snapshots only (eviction then frees more than it counts).
seealso:
  - module: reclaim.docker.prune
  - module: reclaim.docker.image_remove
author:
  - reclaim.docker developers (@reclaim-docker)
"""

EXAMPLES = r"""
- name: >-
    Audit: the 3 newest builds of each repository stay however old; older builds go once they are 30 days old;
    never prod images
  reclaim.docker.image_retention:
    keep_last: 3
    max_age: 30d
    min_age: 1h
    protect:
      references:
        - registry.example.com/prod/*
  check_mode: true
  register: audit

- name: >-
    Enforce it, and once the disk passes 85 percent, evict builds outside the newest 3 of their repository (least
    recently used first) down to 70 percent
  reclaim.docker.image_retention:
    keep_last: 3
    max_age: 30d
    high_watermark: 85
    low_watermark: 70
  register: retention

- name: Say when the newest builds alone keep the disk above the low mark
  ansible.builtin.debug:
    msg: "{{ retention.eviction.short_by_bytes }} bytes above the low mark; {{ retention.eviction.held }}"
  when: retention.eviction.short_by_bytes > 0

- name: Compliance check that fails when anything violates the policy
  reclaim.docker.image_retention:
    max_age: 90d
    fail_on_violation: true
  check_mode: true
"""

RETURN = r"""
violations:
  description: Each image that violates the policy, with why and what enforcing does.
  returned: always
  type: list
  elements: dict
  contains:
    image:
      description: The image ID.
      type: str
    tags:
      description: All its tags.
      type: list
      elements: str
    repositories:
      description: The repositories it has tags in.
      type: list
      elements: str
    created:
      description: When it was created (ISO 8601, UTC).
      type: str
    age_days:
      description: Its age in days.
      type: float
    last_use:
      description: When it was last used (ISO 8601, UTC).
      type: str
    last_use_source:
      description:
        - What RV(violations[].last_use) is based on, V(ledger) (the usage ledger's last use), V(containers) (the
          newest container's creation) or V(created) (the image's creation).
      type: str
    reasons:
      description: Every reason it violates the policy.
      type: list
      elements: str
    action:
      description:
        - V(untag) (some tags stay) or V(delete); with O(approved), V(not_approved) (kept, listed in RV(not_approved))
          or V(skipped) (approved but tagged since, so kept and listed in RV(skipped_items)).
      type: str
    untag:
      description: The tags removed.
      type: list
      elements: str
    bytes:
      description: Bytes deleting it frees (0 for an untag).
      type: int
  sample:
    - image: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
      tags: [app:1.0]
      repositories: [app]
      created: "2026-10-20T08:00:00Z"
      age_days: 45.2
      last_use: "2026-10-28T14:03:11Z"
      last_use_source: ledger
      reasons: [not among the last 3 of app, older than max_age]
      action: delete
      untag: [app:1.0]
      bytes: 2500000
kept:
  description: What stays and why.
  returned: always
  type: dict
  contains:
    counts:
      description:
        - Images kept per reason, V(protected), V(in_use), V(too_young), V(keep_last) (the floor, among the O(keep_last)
          newest of a repository), V(within_policy) (outside the floor, not older than O(max_age); eviction may take it),
          V(dangling_excluded).
      type: dict
      sample: {protected: 1, in_use: 4, too_young: 0, keep_last: 12, within_policy: 3, dangling_excluded: 0}
    images:
      description: With O(report_kept), each kept image with its reason.
      type: list
      elements: dict
      sample:
        - {image: "sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b", tags: ["app:1.4.0"],
           reason: keep_last, detail: "among the last 3 of app"}
  sample:
    counts: {protected: 1, in_use: 4, too_young: 0, keep_last: 12, within_policy: 3, dangling_excluded: 0}
untagged:
  description: References removed (or that would be) by untagging and deleting images, with the C(repo@digest) references
    that go with a repository's last tag.
  returned: always
  type: list
  elements: str
  sample: [app:1.0]
deleted:
  description: Image IDs deleted (or that would be).
  returned: always
  type: list
  elements: str
  sample: [sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b]
reclaimed_bytes:
  description: Bytes freed (predicted in check mode), from the layer graph.
  returned: always
  type: int
  sample: 2500000
unknown_bytes:
  description:
    - What the actions with status V(unknown) (sent, no answer, not found done afterwards) free if the engine carried
      them out, apart from RV(reclaimed_bytes). 0 in check mode and when every call was answered.
    - The next run reads the engine afresh, which settles them; what they freed is then counted by neither run.
  returned: always
  type: int
  sample: 0
eviction:
  description:
    - With O(high_watermark) or O(max_images_bytes), how far eviction gets; V(null) without them.
    - When RV(eviction.short_by_bytes) is not 0 the task also warns, naming what holds the rest.
  returned: always
  type: dict
  contains:
    mark:
      description: The high mark, as configured.
      type: str
    over_high_mark:
      description: Whether usage was above the high mark, so that eviction ran.
      type: bool
    low_mark_bytes:
      description:
        - Where eviction stops, in bytes of the filesystem's usage (O(low_watermark)) or of image storage
          (O(max_images_bytes)).
      type: int
    usage_after_bytes:
      description: That usage once the plan is carried out, as predicted from the layer graph.
      type: int
    short_by_bytes:
      description:
        - How far above the low mark usage stays because nothing left may go; 0 when eviction reaches the mark or did
          not run.
      type: int
    held:
      description:
        - What eviction may not take, the images that stay by reason, V(protected), V(in_use), V(too_young), V(keep_last)
          (the floor) and V(dangling_excluded).
      type: dict
  sample:
    mark: high_watermark (70.0% of /var/lib/docker)
    over_high_mark: true
    low_mark_bytes: 32196526080
    usage_after_bytes: 40243157600
    short_by_bytes: 8046631520
    held: {protected: 1, in_use: 4, too_young: 0, keep_last: 12, dangling_excluded: 0}
exact:
  description:
    - Whether the bytes are exact. False only on the containerd image store when containerd's content store cannot be
      read (a remote engine, no permission); the bytes then count the images' snapshots, not their content blobs.
  returned: always
  type: bool
  sample: true
inexact_reason:
  description: Why the bytes are not exact, when RV(exact) is false.
  returned: when RV(exact) is false
  type: str
  sample: >-
    containerd's content store cannot be read (the engine is not on this host (tcp://docker.example.com:2376)): the
    bytes count the images' unpacked snapshots, not their content blobs, which the engine frees too
usage_before:
  description: Image storage (the engine's C(LayersSize)) and, on the Docker host, the filesystem under Docker's root dir.
  returned: always
  type: dict
  contains:
    images_bytes:
      description: The engine's C(LayersSize).
      type: int
    filesystem:
      description: The filesystem holding Docker's root dir (C(path), C(total), C(used), C(free), C(used_percent)); null
        when the module does not run on the Docker host.
      type: dict
  sample:
    images_bytes: 8906643
    filesystem: {path: /var/lib/docker, total: 53660876800, used: 40245657600, free: 13415219200, used_percent: 75.0}
usage_after:
  description: The same after enforcement; predicted in check mode, measured after a real run.
  returned: always
  type: dict
  sample:
    images_bytes: 6406643
    filesystem: {path: /var/lib/docker, total: 53660876800, used: 40243157600, free: 13417719200, used_percent: 75.0}
plan:
  description:
    - What this run's plan removes (in check mode, what a real run would), item by item, and the engine it was made on;
      after a review, its objects and engine ID are what O(approved) and O(approved_engine_id) take.
    - In a real run, what was planned; RV(actions) says what took effect.
  returned: always
  type: dict
  contains:
    engine_id:
      description: The engine's ID (C(ID) in C(docker info)).
      type: str
    objects:
      description:
        - One per image removed or untagged, with C(type) (V(image)), C(id), C(name), C(bytes) (what its actions free)
          and C(references) (all it had when planned).
      type: list
      elements: dict
  sample:
    engine_id: "4c3e2b1a-0d9f-4e8d-b7c6-a5f4e3d2c1b0"
    objects:
      - type: image
        id: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
        name: "app:1.0"
        references: [app:1.0]
        bytes: 2500000
not_approved:
  description:
    - With O(approved), the items this run would have removed without it and kept because they are not approved,
      as RV(plan) lists items, C(bytes) being what each would have freed. Empty without O(approved).
  returned: always
  type: list
  elements: dict
  sample:
    - type: image
      id: sha256:9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b3f2a
      name: "app:0.9"
      references: [app:0.9]
      bytes: 300000
skipped_items:
  description: Each item of O(approved) this run keeps, with why (in use, tagged since, gone, within the policy now).
  returned: always
  type: list
  elements: dict
  sample:
    - type: image
      id: sha256:8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f
      name: app:0.8
      reason: approved, but gone since the plan was made
actions:
  description: The ordered plan with reasons and bytes; after a real run, each with its status.
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: V(untag) (a tag outside the policy on an image that stays) or V(delete_image).
      type: str
    image:
      description: The image ID concerned.
      type: str
    reference:
      description: What the engine is called with (a reference or an image ID).
      type: str
    untags:
      description: For V(delete_image), the references the deletion removes.
      type: list
      elements: str
    reason:
      description: Why this action is in the plan (the policy rule).
      type: str
    bytes:
      description:
        - Bytes this action frees, given the actions before it. After a real run, priced from the actions that took
          effect, so a layer that a skipped action's image still holds is freed by none.
      type: int
    status:
      description:
        - After a real run, V(done), V(partial) (the engine did less than planned), V(skipped) (the engine said the
          world changed), V(failed) (the engine's error, or the call could not be sent), V(unknown), or V(not_run) (an
          earlier call failed or got no answer, so no later one was started).
        - V(unknown) is a call sent that got no answer in O(timeout). It is checked afterwards, V(done) if its image was
          gone by then; still there proves nothing (a frozen engine carries a call out when it resumes), so it stays
          V(unknown), with C(bytes) what it frees if it took effect, counted in RV(unknown_bytes), and the task fails.
      type: str
    engine_reason:
      description: The engine's message for a skipped or failed action, or what a check found after no answer.
      type: str
  sample:
    - action: delete_image
      image: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
      reference: app:1.0
      untags: [app:1.0]
      reason: "image 3f2a9c1b7d0e: not among the last 3 of app; older than max_age"
      bytes: 2500000
      status: done
"""

import datetime
import time

from ansible_collections.reclaim.docker.plugins.module_utils._apply import took_effect, untagged_by
from ansible_collections.reclaim.docker.plugins.module_utils._approval import (
    Approval,
    approval_argument_spec,
    approval_result,
    finish_plan,
    priced_with_approval,
)
from ansible_collections.reclaim.docker.plugins.module_utils._connection import docker_module
from ansible_collections.reclaim.docker.plugins.module_utils._disk_usage import image_usage, predicted_usage
from ansible_collections.reclaim.docker.plugins.module_utils._filters import Protection, protection_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import layer_cache_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._lock import lock_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._model import repository_of
from ansible_collections.reclaim.docker.plugins.module_utils._pipeline import Pipeline, touched_images
from ansible_collections.reclaim.docker.plugins.module_utils._retention_plan import (
    KEPT_REASONS,
    RetentionPolicy,
    last_use,
    plan_retention,
)
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem, parse_duration, parse_size
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import usage_ledger_argument_spec


# How a warning names the images that stay under disk pressure, by kept reason.
HELD = dict(protected="protected", in_use="in use", too_young="younger than min_age",
            keep_last="among the keep_last newest of a repository", dangling_excluded="dangling (dangling: false)")


def short_of_the_low_mark(eviction):
    """The warning for eviction that cannot bring usage down to the low mark: by how much, and what holds the rest."""
    held = ", ".join(f"{count} {HELD[reason]}" for reason, count in eviction["held"].items() if count)
    return (f"Usage is over {eviction['mark']}, and eviction stops {eviction['short_by_bytes']} bytes short of the low "
            f"mark: no image left may go ({held or 'no image left'}). The keep_last newest of each repository are never "
            "evicted. See eviction in the result.")


def _iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RetentionEnforcer:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.now = time.time()

    def validate(self):
        """Every value, checked before the engine is contacted."""
        params = self.params
        try:
            self.protection = Protection(params["protect"], params["min_age"], self.now)
            self.max_age = parse_duration(params["max_age"], "max_age") if params["max_age"] is not None else None
            self.budget = parse_size(params["max_images_bytes"], "max_images_bytes") \
                if params["max_images_bytes"] is not None else None
            self.approval = Approval.from_params(params)
        except ValueProblem as exc:
            self.module.fail_json(msg=str(exc))
        if params["keep_last"] is not None and params["keep_last"] < 0:
            self.module.fail_json(msg=f"keep_last must be 0 or more, got {params['keep_last']}.")
        high, low = params["high_watermark"], params["low_watermark"]
        for option, value in (("high_watermark", high), ("low_watermark", low)):
            if value is not None and not 0 < value <= 100:
                self.module.fail_json(msg=f"{option} is a percent between 0 and 100, got {value}.")
        if high is not None and low > high:
            self.module.fail_json(msg=f"low_watermark ({low}) is above high_watermark ({high}).")
        min_age = self.protection.min_age
        if min_age is not None and self.max_age is not None and min_age > self.max_age:
            self.module.fail_json(msg=f"min_age ({params['min_age']}) is above max_age ({params['max_age']}): an image "
                                      "aged between the two would violate max_age and be kept by min_age.")
        if (params["keep_last"], self.max_age, high, self.budget) == (None,) * 4 and not params["dangling"]:
            self.module.fail_json(msg="image_retention has no policy to enforce: set keep_last, max_age, high_watermark, "
                                      "max_images_bytes, or dangling: true.")

    def pressure(self, usage):
        if self.budget is not None:
            return dict(used=usage["images_bytes"], high=self.budget, low=self.budget,
                        mark=f"max_images_bytes ({self.budget} bytes of images)")
        if self.params["high_watermark"] is None:
            return None
        filesystem = usage["filesystem"]
        capacity = filesystem["used"] + filesystem["free"]
        return dict(used=filesystem["used"], high=capacity * self.params["high_watermark"] / 100,
                    low=capacity * self.params["low_watermark"] / 100,
                    mark=f"high_watermark ({self.params['high_watermark']}% of {filesystem['path']})")

    def run(self):
        self.validate()
        pipeline = Pipeline(self.module)
        pipeline.check_approval(self.approval)
        client = pipeline.client
        if self.params["high_watermark"] is not None and not client.is_local:
            self.module.fail_json(msg=f"high_watermark needs the filesystem under Docker's root dir, so the module must run "
                                      f"on the Docker host (a unix:// docker_host, not {client.base_url}); or use "
                                      "max_images_bytes.")
        with pipeline.reading():
            usage_before = image_usage(client)
        snapshot = pipeline.snapshot()
        policy = RetentionPolicy(self.now, self.protection, keep_last=self.params["keep_last"], max_age=self.max_age,
                                 dangling=self.params["dangling"], pressure=self.pressure(usage_before))

        def priced_by(snapshot, plan):
            if policy.pressure:
                # Which images eviction takes depends on what each frees exactly: every candidate's chain is needed.
                return set(plan.kept) | set(plan.violations)
            return touched_images(snapshot, plan)

        def make_plan(snap):
            plan = plan_retention(snap, policy, self.approval)
            return finish_plan(snap, plan, self.approval, lambda: plan_retention(snap, policy))

        plan = pipeline.plan(snapshot, make_plan, priced_with_approval(self.approval, priced_by))
        if plan.eviction and plan.eviction["short_by_bytes"]:
            self.module.warn(short_of_the_low_mark(plan.eviction))
        actions = pipeline.apply(snapshot, plan)
        result = dict(self.result(snapshot, plan, actions, usage_before),
                      **approval_result(snapshot, plan, pipeline.engine_id()))
        if not self.module.check_mode:
            with pipeline.reading():
                result["usage_after"] = image_usage(client)
        problems = []
        if self.params["fail_on_violation"] and result["violations"]:
            problems.append(f"{len(result['violations'])} image(s) violate the retention policy")
        pipeline.finish(actions, result, problems, failure="Could not enforce")

    def result(self, snapshot, plan, actions, usage_before):
        done = took_effect(actions)
        violations = []
        for image_id, entry in sorted(plan.violations.items(), key=lambda item: snapshot.images[item[0]].created):
            image = snapshot.images[image_id]
            last_used, source = last_use(snapshot, image)
            violations.append(dict(
                image=image.id, tags=list(image.repo_tags), repositories=sorted({repository_of(t) for t in image.repo_tags}),
                created=_iso(image.created), age_days=round((self.now - image.created) / 86400, 2),
                last_use=_iso(last_used), last_use_source=source, reasons=entry["reasons"], action=entry["action"],
                untag=sorted(entry["untag"]), bytes=entry.get("bytes", 0),
            ))
        counts = {reason: 0 for reason in KEPT_REASONS}
        for kept in plan.kept.values():
            counts[kept["reason"]] += 1
        kept = dict(counts=counts)
        if self.params["report_kept"]:
            kept["images"] = [dict(image=i, tags=list(snapshot.images[i].repo_tags), **k) for i, k in sorted(plan.kept.items())]
        reclaimed = sum(a["bytes"] for a in done)
        return dict(
            violations=violations,
            kept=kept,
            untagged=untagged_by(done),
            deleted=sorted(a["image"] for a in done if a["action"] == "delete_image"),
            skipped_items=plan.skipped,
            usage_before=usage_before,
            usage_after=predicted_usage(usage_before, reclaimed, reclaimed),
            eviction=plan.eviction,
        )


def main():
    argument_spec = dict(
        keep_last=dict(type="int"),
        max_age=dict(type="str"),
        dangling=dict(type="bool", default=True),
        high_watermark=dict(type="float"),
        low_watermark=dict(type="float"),
        max_images_bytes=dict(type="str"),
        fail_on_violation=dict(type="bool", default=False),
        report_kept=dict(type="bool", default=False),
    )
    argument_spec.update(protection_argument_spec())
    argument_spec.update(layer_cache_argument_spec())
    argument_spec.update(lock_argument_spec())
    argument_spec.update(usage_ledger_argument_spec())
    argument_spec.update(approval_argument_spec())
    module = docker_module(argument_spec, supports_check_mode=True,
                           required_together=[("high_watermark", "low_watermark")],
                           mutually_exclusive=[("max_images_bytes", "high_watermark")])
    RetentionEnforcer(module).run()


if __name__ == "__main__":
    main()
