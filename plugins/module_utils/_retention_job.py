# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The image_retention module's job (see _runner.py for what a job is): the policy its options make, the usage it reads
before and after, its plan and its result."""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._apply import untagged_by
from ansible_collections.reclaim.docker.plugins.module_utils._approval import Approval, approval_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec
from ansible_collections.reclaim.docker.plugins.module_utils._connection import connection_argument_spec, is_local_endpoint
from ansible_collections.reclaim.docker.plugins.module_utils._disk_usage import image_usage, predicted_usage
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import layer_cache_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._lock import lock_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._model import repository_of
from ansible_collections.reclaim.docker.plugins.module_utils._plan import race_skips, touched_images
from ansible_collections.reclaim.docker.plugins.module_utils._protection import Protection, protection_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._retention_plan import (
    KEPT_REASONS,
    RetentionPolicy,
    last_use,
    plan_retention,
)
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem, iso_time, parse_duration, parse_size
from ansible_collections.reclaim.docker.plugins.module_utils._usage_record import usage_ledger_argument_spec

# How a warning names the images that stay under disk pressure, by kept reason.
HELD = dict(protected="protected", in_use="in use", too_young="younger than min_age",
            keep_last="among the keep_last newest of a repository", dangling_excluded="dangling (dangling: false)")


def short_of_the_low_mark(eviction):
    """The warning for eviction that cannot bring usage down to the low mark: by how much, and what holds the rest."""
    held = ", ".join(f"{count} {HELD[reason]}" for reason, count in eviction["held"].items() if count)
    return (f"Usage is over {eviction['mark']}, and eviction stops {eviction['short_by_bytes']} bytes short of the low "
            f"mark: no image left may go ({held or 'no image left'}). The keep_last newest of each repository are never "
            "evicted. See eviction in the result.")


class RetentionJob:
    changes = "engine"
    # A race is a reported skip (skipped_items), as in prune: the policy removes what it finds, what changed stays.
    races = "skip"
    failure = "Could not enforce"

    @staticmethod
    def argument_spec():
        return ArgumentSpec(dict(
            keep_last=dict(type="int"),
            max_age=dict(type="str"),
            dangling=dict(type="bool", default=True),
            high_watermark=dict(type="float"),
            low_watermark=dict(type="float"),
            max_images_bytes=dict(type="str"),
            fail_on_violation=dict(type="bool", default=False),
            report_kept=dict(type="bool", default=False),
        ), required_together=[("high_watermark", "low_watermark")],
            mutually_exclusive=[("max_images_bytes", "high_watermark")],
        ).merge(connection_argument_spec(), protection_argument_spec(), layer_cache_argument_spec(),
                lock_argument_spec(), usage_ledger_argument_spec(), approval_argument_spec())

    def __init__(self, params, check_mode, now):
        """Every value and combination, checked before the engine is contacted."""
        self.params = params
        self.now = now
        self.warnings = []
        self.protection = Protection(params["protect"], params["min_age"], now)
        self.max_age = parse_duration(params["max_age"], "max_age") if params["max_age"] is not None else None
        self.budget = parse_size(params["max_images_bytes"], "max_images_bytes") \
            if params["max_images_bytes"] is not None else None
        self.approval = Approval.from_params(params)
        if params["keep_last"] is not None and params["keep_last"] < 0:
            raise ValueProblem(f"keep_last must be 0 or more, got {params['keep_last']}.")
        high, low = params["high_watermark"], params["low_watermark"]
        for option, value in (("high_watermark", high), ("low_watermark", low)):
            if value is not None and not 0 < value <= 100:
                raise ValueProblem(f"{option} is a percent between 0 and 100, got {value}.")
        if high is not None and low > high:
            raise ValueProblem(f"low_watermark ({low}) is above high_watermark ({high}).")
        if high is not None and not is_local_endpoint(params):
            raise ValueProblem(f"high_watermark needs the filesystem under Docker's root dir, so the module must run on "
                               f"the Docker host (a unix:// docker_host, not {params['docker_host']}); or use "
                               "max_images_bytes.")
        min_age = self.protection.min_age
        if min_age is not None and self.max_age is not None and min_age > self.max_age:
            raise ValueProblem(f"min_age ({params['min_age']}) is above max_age ({params['max_age']}): an image aged "
                               "between the two would violate max_age and be kept by min_age.")
        if (params["keep_last"], self.max_age, high, self.budget) == (None,) * 4 and not params["dangling"]:
            raise ValueProblem("image_retention has no policy to enforce: set keep_last, max_age, high_watermark, "
                               "max_images_bytes, or dangling: true.")
        self.usage_before = None
        self.policy = None

    @staticmethod
    def requirements(client):
        return None

    def _pressure(self, usage):
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

    def read(self, reader):
        self.usage_before = reader.read(image_usage)
        self.policy = RetentionPolicy(self.now, self.protection, keep_last=self.params["keep_last"],
                                      max_age=self.max_age, dangling=self.params["dangling"],
                                      pressure=self._pressure(self.usage_before))
        return reader.snapshot()

    def plan(self, snapshot, approval):
        return plan_retention(snapshot, self.policy, approval)

    def priced_by(self, snapshot, plan):
        if self.policy.pressure:
            # Which images eviction takes depends on what each frees exactly: every candidate's chain is needed.
            return set(plan.kept) | set(plan.violations)
        return touched_images(plan)

    def result(self, run):
        snapshot, plan, done = run.state, run.plan, run.done
        if plan.eviction and plan.eviction["short_by_bytes"]:
            run.warn(short_of_the_low_mark(plan.eviction))
        violations = []
        for image_id, entry in sorted(plan.violations.items(), key=lambda item: snapshot.images[item[0]].created):
            image = snapshot.images[image_id]
            last_used, source = last_use(snapshot, image)
            violations.append(dict(
                image=image.id, tags=list(image.repo_tags), repositories=sorted({repository_of(t) for t in image.repo_tags}),
                created=iso_time(image.created), age_days=round((self.now - image.created) / 86400, 2),
                last_use=iso_time(last_used), last_use_source=source, reasons=entry["reasons"], action=entry["action"],
                untag=sorted(entry["untag"]), bytes=entry.get("bytes", 0),
            ))
        counts = {reason: 0 for reason in KEPT_REASONS}
        for kept in plan.kept.values():
            counts[kept["reason"]] += 1
        kept = dict(counts=counts)
        if self.params["report_kept"]:
            kept["images"] = [dict(image=i, tags=list(snapshot.images[i].repo_tags), **k) for i, k in sorted(plan.kept.items())]
        reclaimed = sum(a["bytes"] for a in done)
        result = dict(
            violations=violations,
            kept=kept,
            untagged=untagged_by(done),
            deleted=sorted(a["image"] for a in done if a["action"] == "delete_image"),
            skipped_items=plan.skipped + race_skips(run.actions),
            usage_before=self.usage_before,
            usage_after=predicted_usage(self.usage_before, reclaimed, reclaimed) if run.check_mode
            else run.reader.read(image_usage),
            eviction=plan.eviction,
        )
        problems = []
        if self.params["fail_on_violation"] and violations:
            problems.append(f"{len(violations)} image(s) violate the retention policy")
        return result, problems
