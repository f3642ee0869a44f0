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
  - An image that changed since the run read the engine (404 gone, 409 now in use) is skipped and reported in
    RV(skipped_items) with the engine's reason, as in M(reclaim.docker.prune); nothing is retried, and never with force.
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
  description:
    - Each item of O(approved) this run keeps, with why (in use, tagged since, gone, within the policy now).
    - Each image a real run planned to change that the engine no longer allowed (gone, or in use now), with the
      engine's reason.
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

from ansible_collections.reclaim.docker.plugins.module_utils._retention_job import RetentionJob
from ansible_collections.reclaim.docker.plugins.module_utils._runner import run_job


def main():
    run_job(RetentionJob)


if __name__ == "__main__":
    main()
