"""The linear accounting against its simple definition (accounting_oracle), on random layer graphs, and the bytes of
a real run re-priced from the actions that took effect."""

from __future__ import annotations

from accounting_oracle import OracleAccounting, oracle_bytes
from hypothesis import given
from hypothesis import strategies as st
from strategies import SETTINGS, content_graphs, layer_graphs, plans_with_outcomes

from ansible_collections.reclaim.docker.plugins.module_utils._apply import reprice
from ansible_collections.reclaim.docker.plugins.module_utils._model import Accounting


@SETTINGS
@given(st.one_of(layer_graphs(), content_graphs()))
def test_every_step_frees_what_the_definition_says(case):
    snapshot, removals = case
    fast, oracle = Accounting(snapshot), OracleAccounting(snapshot)
    for kind, target in removals:
        if kind == "held":
            if target in snapshot.images:
                assert fast.held_by_containers_only(target) == oracle.held_by_containers_only(target)
            continue
        if kind == "image":
            if target not in snapshot.images or target in oracle.deleted_images:
                continue  # the planners delete listed images, each once
            assert fast.delete_image(target) == oracle.delete_image(target)
        elif kind == "platform":
            assert fast.delete_platform(target) == oracle.delete_platform(target)
        else:
            if target not in snapshot.containers or target in oracle.removed_containers:
                continue
            assert fast.remove_container(target) == oracle.remove_container(target)
        assert fast.total == oracle.freed_bytes()


@SETTINGS
@given(plans_with_outcomes())
def test_a_real_run_is_priced_by_what_took_effect(case):
    """Any subset of a plan's actions failing, or finding their object removed by someone else: the bytes reported
    are the definition's for what took effect, and a skipped action leaves no layer counted by another."""
    snapshot, plan, fates = case
    outcomes = [dict(action, status="done" if fate == "done" else "skipped", bytes=action["bytes"] * (fate == "done"))
                for action, fate in zip(plan.actions, fates)]
    gone = [a for a, fate in zip(plan.actions, fates) if fate == "gone"]
    repriced = reprice(snapshot, outcomes, {a.get("container") or a["image"] for a in gone})
    before, after = type(plan)(), type(plan)()
    before.actions = gone
    after.actions = gone + [a for a in repriced if a["status"] == "done"]
    # What the engine frees in our run: everything gone at its end, less what someone else had removed first.
    assert sum(a["bytes"] for a in repriced) == oracle_bytes(snapshot, after) - oracle_bytes(snapshot, before)
    if all(fate == "done" for fate in fates):
        assert [a["bytes"] for a in repriced] == [a["bytes"] for a in plan.actions]
