# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The steps every module runs, once: connect, read a snapshot, plan and price it, apply, finish.

Each module parses its own options, makes its own plan and result, and names its own problems; the steps here own
the rest: the engine's lock (a real run of a module that changes the engine reads, plans and applies under it), engine
errors while reading, the layer cache, check mode, the result keys every module returns
(changed, reclaimed_bytes, unknown_bytes, exact, actions) and the failure policy (a failed or unknown action, or a
problem the module names, fails the task with every outcome still in the result).
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from ansible_collections.reclaim.docker.plugins.module_utils._apply import apply_plan, took_effect, unanswered
from ansible_collections.reclaim.docker.plugins.module_utils._connection import APIError, connect_module
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import LayerCache
from ansible_collections.reclaim.docker.plugins.module_utils._lock import (
    EngineLock,
    LockError,
    check_lock_timeout,
    prepare_lock_dir,
)
from ansible_collections.reclaim.docker.plugins.module_utils._snapshot import load_layers, read_snapshot
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import (
    UsageLedger,
    event_uses,
    event_volume_uses,
)


def touched_images(snapshot, plan):
    """The images a plan's actions delete or untag, and those of the containers it removes: the ones whose layers
    price it (a container's image may be gone already, its layers still held: see load_layers)."""
    return {a["image"] for a in plan.actions if a.get("image")}


def changed_something(action):
    """Whether an action that took effect changed the engine (a build cache prune may find nothing to remove)."""
    if action["action"] != "prune_build_cache":
        return True
    return bool(action["caches_deleted"]) if "caches_deleted" in action else action["records"] > 0


def priced_plan(client, snapshot, make_plan, cache, priced_by=touched_images):
    """MAKE_PLAN(snapshot), priced exactly: a first plan tells which images' layers matter (PRICED_BY), those
    are loaded (CACHE first), and the plan is made again on them. Both passes are linear in the host's size."""
    plan = make_plan(snapshot)
    if load_layers(client, snapshot, priced_by(snapshot, plan), cache):
        plan = make_plan(snapshot)
    return plan


class Pipeline:
    def __init__(self, module):
        self.module = module
        self.lock = None
        lock_dir = self._lock_dir()
        self.client = connect_module(module)
        self.inexact_reason = None
        if lock_dir is not None:
            self._take_lock(lock_dir)

    def _lock_dir(self):
        """The lock directory of a real run of a module that changes the engine (it has lock_timeout), made and
        checked before the engine is contacted; None when no lock is taken (check mode, or a module that only reads)."""
        params = self.module.params
        if "lock_timeout" not in params:
            return None
        try:
            check_lock_timeout(params["lock_timeout"])
            if self.module.check_mode:
                return None  # check mode changes nothing: it takes no lock, never waits and creates no file
            return prepare_lock_dir(params["lock_dir"])
        except LockError as exc:
            self.module.fail_json(msg=str(exc))

    def _take_lock(self, directory):
        """Hold the engine's lock from here (before anything is read for the plan) until finish(), or the module's
        process ends: a second run waits, then plans on what this one left."""
        engine_id = self.engine_id()
        lock = EngineLock(directory, engine_id, engine_label=f"{engine_id} at {self.client.base_url}",
                          module_name=getattr(self.module, "_name", None))
        try:
            lock.acquire(self.module.params["lock_timeout"])
        except LockError as exc:
            self.module.fail_json(msg=str(exc))
        self.lock = lock
        if lock.waited is not None:
            self.module.warn(lock.waited_message())
        for problem in lock.problems:
            self.module.warn(problem)

    def engine_id(self):
        """The engine's identity (ID in docker info; its address if it has none): what the host's files are named by
        and an approved plan is checked against. The client keeps the info it read."""
        with self.reading():
            return self.client.info().get("ID") or self.client.base_url

    def check_approval(self, approval):
        """Refuse a plan approved on another engine, before anything is read for the plan."""
        problem = approval.engine_problem(self.engine_id())
        if problem:
            self.module.fail_json(msg=problem)

    def release(self):
        """Give the engine's lock back (once the run has nothing more to read or change)."""
        if self.lock is not None:
            self.lock.release()

    @contextmanager
    def reading(self):
        """Engine errors while reading end the task with one message; nothing was changed yet."""
        try:
            yield
        except APIError as exc:
            self.module.fail_json(msg=f"Error reading engine state from {self.client.base_url}: {exc.explanation or exc}. "
                                      "Nothing was changed.")
        except OSError as exc:
            self.module.fail_json(msg=f"Error reading engine state from {self.client.base_url}: no answer ({exc}). "
                                      "Nothing was changed.")

    def snapshot(self, networks=False, volumes=False, build_cache=False):
        with self.reading():
            snapshot = read_snapshot(self.client, networks=networks, volumes=volumes, build_cache=build_cache)
        self._track_usage(snapshot)
        return snapshot

    def _track_usage(self, snapshot):
        """Record in the usage ledger the images and volumes that SNAPSHOT's containers and the engine's events since the
        previous run show in use, and give the snapshot every last use the ledger knows. Check mode too: the ledger is
        host-local state, like the layer cache. Nothing here fails the run."""
        params = self.module.params
        if not params.get("usage_ledger"):
            return
        ledger = UsageLedger.for_engine(params["usage_ledger_dir"] or params.get("layer_cache_dir"), self.engine_id())
        now = time.time()
        # Whole seconds, as the API takes them; the next run starts at this second again (a use counts once as well
        # as twice: the latest wins).
        until = int(now)
        try:
            events = self.client.events(since=int(ledger.events_until or 0), until=until,
                                        filters={"type": ["container", "volume"]})
        except (APIError, OSError) as exc:
            events, until = [], None
            self.module.warn(f"Could not read the engine's events for the usage ledger: {exc}")

        def image_of_container(container_id):
            container = snapshot.containers.get(container_id)
            return container.image_id if container else None

        def resolve(reference):
            try:
                found = snapshot.resolve(reference) if reference else None
            except ValueError:
                return None
            return found[1].id if found else None

        def volumes_of_container(container_id):
            container = snapshot.containers.get(container_id)
            return container.volumes if container else ()

        uses = event_uses(events, image_of_container, resolve)
        volume_uses = event_volume_uses(events, volumes_of_container)
        for container in snapshot.containers.values():
            seen = now if container.running else (container.stopped or container.created)
            if not seen:
                continue
            for used, key in [(uses, container.image_id)] + [(volume_uses, name) for name in container.volumes]:
                if seen > used.get(key, float("-inf")):
                    used[key] = seen
        ledger.record(uses, events_until=until, now=now, volume_uses=volume_uses)
        snapshot.last_use = dict(ledger.last_use)
        snapshot.volume_last_use = dict(ledger.volume_last_use)
        for problem in ledger.problems:
            self.module.warn(problem)

    def _layer_cache(self):
        params = self.module.params
        if not params["layer_cache"]:
            return LayerCache(None)
        return LayerCache.for_engine(params["layer_cache_dir"], self.engine_id())

    def plan(self, snapshot, make_plan, priced_by=touched_images):
        """priced_plan() with the module's layer cache, saved afterwards (check mode too: it changes no engine state)."""
        cache = self._layer_cache()
        with self.reading():
            plan = priced_plan(self.client, snapshot, make_plan, cache, priced_by)
        # A container keeps the layers of its image after the image record goes (rmi -f): kept in the cache too.
        cache.save(set(snapshot.images) | {c.image_id for c in snapshot.containers.values()})
        self.inexact_reason = snapshot.inexact_reason
        if self.inexact_reason:
            self.module.warn(f"The bytes are not exact: {self.inexact_reason}.")
        for problem in cache.problems:
            self.module.warn(problem)
        return plan

    def apply(self, snapshot, plan):
        """The plan's actions, executed unless in check mode (then they are the prediction)."""
        if self.module.check_mode or not plan.actions:
            return plan.actions
        return apply_plan(self.client, snapshot, plan.actions)

    def finish(self, actions, result, problems=(), failure="Could not complete"):
        """Exit with RESULT and the common keys; fail, naming every problem, when an action failed or got no answer
        (unknown), or PROBLEMS. A failure during apply says what took effect (those actions keep their bytes in the
        result), what may yet (unknown: its bytes apart, in unknown_bytes) and what not."""
        done = took_effect(actions)
        unknown = unanswered(actions)
        # An unknown call may have changed the engine: changed says so, as it would for a done one.
        result = dict(result, changed=any(changed_something(a) for a in done) or bool(unknown),
                      reclaimed_bytes=sum(a["bytes"] for a in done), unknown_bytes=sum(a["bytes"] for a in unknown),
                      exact=self.inexact_reason is None, actions=actions)
        if self.inexact_reason:
            result["inexact_reason"] = self.inexact_reason
        problems = list(problems) + [f"{action_label(a)}: {a['engine_reason']}"
                                     for a in actions if a.get("status") == "failed"]
        problems += [f"{action_label(a)} (status unknown): {a['engine_reason']}" for a in unknown]
        not_run = sum(a.get("status") == "not_run" for a in actions)
        if not_run:
            # What stopped the run may be a call found done afterwards (a slow engine): it is named too.
            problems += [f"{action_label(a)}: {a['engine_reason']}" for a in actions
                         if a.get("status") == "done" and "engine_status" in a]
            problems.append(f"{not_run} more action(s) not started after that (status not_run)")
        self.release()
        if problems:
            self.module.fail_json(msg=f"{failure}{progress(actions, result)}: " + "; ".join(problems), **result)
        self.module.exit_json(**result)


def progress(actions, result):
    """What a message says of an apply that stopped: what took effect, what may yet, and that a rerun settles the
    rest. Empty when every action ran and answered."""
    statuses = [a.get("status") for a in actions]
    if not any(status in ("failed", "unknown", "not_run") for status in statuses):
        return ""
    said = (f" ({statuses.count('done')} of {len(actions)} actions took effect, freeing {result['reclaimed_bytes']} "
            "bytes")
    if "unknown" not in statuses:
        return said + ": see actions; a rerun plans the rest afresh)"
    return said + (f"; {statuses.count('unknown')} got no answer and may still take effect, freeing up to "
                   f"{result['unknown_bytes']} bytes more (status unknown, unknown_bytes): see actions; a rerun reads "
                   "the engine afresh, which settles them, and plans the rest)")


def action_label(action):
    """How a message names an action's object."""
    return action.get("name") or action.get("reference") or action.get("container") or action["action"]
