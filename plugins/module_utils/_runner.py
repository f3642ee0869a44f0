# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The job runner: the one sequence every module runs. A module is a job (one per _*_job.py file) and a main() that
hands it to run_job().

    configure  the job checks every option value and combination, before anything else (job.__init__ is pure and
               raises ValueProblem);
    connect    the engine, or a message saying what to check;
    require    what the job needs of this engine (job.requirements: an API version, an image store);
    lock       a real run of a job that changes something holds the engine's lock (job.changes), from before it reads
               until it ends: a second run waits, then plans on what this one left;
    approve    an approved plan made on another engine is refused before anything is read for the plan;
    read       job.read(reader): the snapshot and whatever else the job needs, through the Reader (engine errors end
               the task saying nothing was changed; the layer cache and the usage ledger are kept on the way);
    plan       job.plan(state, approval), priced exactly (the images job.priced_by names get their layers, from the
               layer cache first, and the plan is made again on them); under an approved plan, also the plan the run
               would make without it, for `not_approved` (see _approval.complete);
    apply      the plan's actions, unless in check mode (then they are the prediction): job.apply, else the engine's;
    result     job.result(run), with the keys every run returns (changed, reclaimed_bytes, unknown_bytes, exact,
               actions) and an approved plan's (plan, not_approved);
    finish     exit; or fail naming every problem (a failed or unanswered action, a race the job does not skip, a
               problem the job names), with every outcome still in the result.

A job is a class with:
    argument_spec()            its options (an ArgumentSpec, the shared groups merged in);
    __init__(params, check_mode, now)
    changes                    None (it reads only), "engine" or "host" (files under Docker's root dir);
    approval                   an Approval (empty when the job takes none);
    races                      what an answer showing the engine changed since the plan (404, 409) is: "skip" (a
                               reported skip, the task succeeds) or "fail" (the task fails naming it, a 404 excepted:
                               what was asked is gone);
    failure                    the start of the message of a failed run ("Could not prune");
    warnings                   what configure has to say (a list of sentences);
    requirements(client)       None, or why this engine cannot run the job;
    read(reader)               the state the job plans on;
    plan(state, approval)      a Plan, or None for a job that only reads;
    priced_by(state, plan)     the image IDs whose layers price the plan (engine jobs);
    apply(client, state, plan) optional: the job's own apply (host jobs), returning the actions' outcomes;
    result(run)                the job's own result keys, and problems: (dict, [sentence, ...]).
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from ansible_collections.reclaim.docker.plugins.module_utils._apply import apply_plan, took_effect, unanswered
from ansible_collections.reclaim.docker.plugins.module_utils._approval import approval_result, complete
from ansible_collections.reclaim.docker.plugins.module_utils._connection import APIError, EngineConnectionError, connect
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import LayerCache
from ansible_collections.reclaim.docker.plugins.module_utils._lock import (
    EngineLock,
    LockError,
    check_lock_timeout,
    prepare_lock_dir,
)
from ansible_collections.reclaim.docker.plugins.module_utils._plan import action_label, changed_something
from ansible_collections.reclaim.docker.plugins.module_utils._snapshot import priced_plan, read_snapshot
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import UsageLedger
from ansible_collections.reclaim.docker.plugins.module_utils._usage_record import record_uses


class Run:
    """What a job's result() sees of its run: check mode and diff mode, the state it planned on, the plan, the actions
    (the prediction in check mode, the outcomes of a real run), the Reader for what it reads afterwards, and warn()."""

    def __init__(self, module, state, plan, actions, reader):
        self.check_mode = module.check_mode
        self.diff = module._diff  # pylint: disable=protected-access
        self.state = state
        self.plan = plan
        self.actions = actions
        self.reader = reader
        self.warn = module.warn

    @property
    def done(self):
        """The actions that took effect: all of a check run's (the prediction), the done ones of a real run."""
        return took_effect(self.actions)


class Reader:
    """The engine's reads for a job: errors end the task (nothing was changed yet), the host-local state (the layer
    cache, the usage ledger) is kept on the way. Check mode too: neither is engine state."""

    def __init__(self, module, client, release):
        self.module = module
        self.client = client
        self.engine_id = None
        self.inexact_reason = None
        self._release = release

    def warn(self, message):
        self.module.warn(message)

    def fail(self, message):
        """End the task with MESSAGE (a job that finds it cannot go on; the message says what was changed)."""
        self._release()
        self.module.fail_json(msg=message)

    @contextmanager
    def reading(self):
        try:
            yield
        except APIError as exc:
            self.module.fail_json(msg=f"Error reading engine state from {self.client.base_url}: {exc.explanation or exc}. "
                                      "Nothing was changed.")
        except OSError as exc:
            self.module.fail_json(msg=f"Error reading engine state from {self.client.base_url}: no answer ({exc}). "
                                      "Nothing was changed.")

    def read(self, read_with_client):
        """READ_WITH_CLIENT(client), its engine errors ending the task."""
        with self.reading():
            return read_with_client(self.client)

    def snapshot(self, networks=False, volumes=False, build_cache=False):
        """The engine's images and containers (and networks, volumes, build cache records when asked), with every
        last use the usage ledger knows, once it has recorded what this snapshot and the events since show in use."""
        with self.reading():
            snapshot = read_snapshot(self.client, networks=networks, volumes=volumes, build_cache=build_cache)
        params = self.module.params
        if params.get("usage_ledger"):
            ledger = UsageLedger.for_engine(params["usage_ledger_dir"] or params.get("layer_cache_dir"), self.engine_id)
            for problem in record_uses(self.client, snapshot, ledger, time.time()):
                self.module.warn(problem)
        return snapshot

    def priced_plan(self, snapshot, make_plan, priced_by):
        """MAKE_PLAN(snapshot) priced exactly (_snapshot.priced_plan), over the layer cache unless layer_cache is
        false."""
        params = self.module.params
        cache = LayerCache.for_engine(params["layer_cache_dir"], self.engine_id) if params["layer_cache"] \
            else LayerCache(None)
        with self.reading():
            plan = priced_plan(self.client, snapshot, make_plan, priced_by, cache)
        for problem in cache.problems:
            self.module.warn(problem)
        self.inexact_reason = snapshot.inexact_reason
        return plan


def run_job(job_class, connect_engine=None):
    """Run JOB_CLASS as the module's task: the whole sequence of this file, then exit. CONNECT_ENGINE(params) gives
    the client (connect(), unless a test gives a stub engine)."""
    module = job_class.argument_spec().create_ansible_module(supports_check_mode=True)
    _Runner(module, job_class, connect_engine or connect).run()


class _Runner:
    def __init__(self, module, job_class, connect_engine):
        self.module = module
        self.job_class = job_class
        self.connect_engine = connect_engine
        self.lock = None

    def run(self):
        module = self.module
        try:
            job = self.job_class(module.params, module.check_mode, time.time())
        except ValueProblem as exc:
            module.fail_json(msg=str(exc))
        for warning in job.warnings:
            module.warn(warning)
        lock_dir = self._lock_dir(job)
        try:
            client = self.connect_engine(module.params)
        except EngineConnectionError as exc:
            module.fail_json(msg=str(exc))
        problem = job.requirements(client)
        if problem:
            module.fail_json(msg=f"{problem} Nothing was changed.")
        reader = Reader(module, client, self._release)
        reader.engine_id = reader.read(lambda c: c.info().get("ID") or c.base_url)
        if lock_dir is not None:
            self._take_lock(lock_dir, reader.engine_id, client)
        problem = job.approval.engine_problem(reader.engine_id)
        if problem:
            module.fail_json(msg=problem)
        state = job.read(reader)
        plan = self._plan(job, reader, state)
        actions = self._apply(job, client, state, plan)
        run = Run(module, state, plan, actions, reader)
        result, problems = job.result(run)
        if plan is None:
            self._release()
            module.exit_json(changed=False, **result)
        if job.approval.taken:
            result.update(approval_result(state, plan, reader.engine_id))
        self._finish(job, run, result, problems, reader.inexact_reason)

    def _lock_dir(self, job):
        """The lock directory of a real run of a job that changes something, made and checked before the engine is
        contacted; None when no lock is taken (check mode, or a job that only reads)."""
        params = self.module.params
        if job.changes is None:
            return None
        try:
            check_lock_timeout(params["lock_timeout"])
            if self.module.check_mode:
                return None  # check mode changes nothing: it takes no lock, never waits and creates no file
            return prepare_lock_dir(params["lock_dir"])
        except LockError as exc:
            self.module.fail_json(msg=str(exc))

    def _take_lock(self, directory, engine_id, client):
        lock = EngineLock(directory, engine_id, engine_label=f"{engine_id} at {client.base_url}",
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

    def _release(self):
        if self.lock is not None:
            self.lock.release()

    def _plan(self, job, reader, state):
        approval = job.approval

        def make_plan(planned_state):
            plan = job.plan(planned_state, approval)
            if plan is not None and approval.restricts:
                complete(planned_state, plan, approval, job.plan(planned_state, approval.without()))
            return plan

        if job.changes != "engine":
            return make_plan(state)
        return reader.priced_plan(state, make_plan, lambda snapshot, plan: job.priced_by(snapshot, plan)
                                  | approval.priced(plan))

    def _apply(self, job, client, state, plan):
        """The plan's actions, executed unless in check mode (then they are the prediction)."""
        if plan is None or self.module.check_mode or not plan.actions:
            return [] if plan is None else plan.actions
        if hasattr(job, "apply"):
            return job.apply(client, state, plan)
        return apply_plan(client, state, plan.actions)

    def _finish(self, job, run, result, problems, inexact_reason):
        """Exit with RESULT and the keys every run returns; fail, naming every problem, when an action failed or got no
        answer (unknown), a race the job does not skip, or PROBLEMS. A failure during apply says what took effect
        (those actions keep their bytes in the result), what may yet (unknown: its bytes apart) and what not."""
        actions = run.actions
        done = run.done
        unknown = unanswered(actions)
        # An unknown call may have changed the engine: changed says so, as it would for a done one.
        result = dict(result, changed=any(changed_something(a) for a in done) or bool(unknown),
                      reclaimed_bytes=sum(a["bytes"] for a in done), unknown_bytes=sum(a["bytes"] for a in unknown),
                      exact=inexact_reason is None, actions=actions)
        if inexact_reason:
            result["inexact_reason"] = inexact_reason
            self.module.warn(f"The bytes are not exact: {inexact_reason}.")
        problems = list(problems) + [f"{action_label(a)}: {a['engine_reason']}"
                                     for a in actions if a.get("status") == "failed"]
        if job.races == "fail":
            # The engine refused what was asked since the plan (409), or did less than planned; gone (404) is what
            # was asked.
            problems += [f"{action_label(a)}: {a['engine_reason']}" for a in actions
                         if a.get("status") == "partial" or a.get("status") == "skipped" and a.get("engine_status") != 404]
        problems += [f"{action_label(a)} (status unknown): {a['engine_reason']}" for a in unknown]
        not_run = sum(a.get("status") == "not_run" for a in actions)
        if not_run:
            # What stopped the run may be a call found done afterwards (a slow engine): it is named too.
            problems += [f"{action_label(a)}: {a['engine_reason']}" for a in actions
                         if a.get("status") == "done" and "engine_status" in a]
            problems.append(f"{not_run} more action(s) not started after that (status not_run)")
        self._release()
        if problems:
            self.module.fail_json(msg=f"{job.failure}{progress(actions, result)}: " + "; ".join(problems), **result)
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
