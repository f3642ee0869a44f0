"""The prune planner: its selection, holds and order on hand-made snapshots, and its invariants on generated ones
(strategies.py; the bytes against the simple definition, accounting_oracle.py)."""

from __future__ import annotations

from accounting_oracle import oracle_bytes
from hypothesis import given
from snapshot_helpers import NOW, hid, make_snapshot, prune, remove_images
from strategies import SETTINGS, chained_cases, prune_cases

from ansible_collections.reclaim.docker.plugins.module_utils._approval import Approval
from ansible_collections.reclaim.docker.plugins.module_utils._model import Container, Network, Snapshot, Volume
from ansible_collections.reclaim.docker.plugins.module_utils._plan import UNKNOWN_STOP, UNKNOWN_TIME, Plan

OLD = NOW - 40 * 86400
NEW = NOW - 60


def plan_of(snapshot, options, assume_deleted=()):
    types = dict(containers={}) if options["containers"] else {}
    return prune(snapshot, protect={"labels": [options["protect_label"]] if options["protect_label"] else []},
                 assume_deleted=assume_deleted, images={"dangling": options["dangling"]}, **types)


def test_prune_keeps_and_reports_what_only_an_unknown_time_keeps_out():
    old, unknown, unlabelled = (Network(f"n{i}", name, created=created, labels=labels) for i, (name, created, labels)
                                in enumerate([("old", OLD, {"a": "1"}), ("unknown", None, {"a": "1"}),
                                              ("other", None, {})]))
    plan = prune(Snapshot({}, [], [], networks=[old, unknown, unlabelled]), networks={"until": "720h", "label": "a"})
    assert [a["name"] for a in plan.actions] == ["old"]
    assert plan.skipped == [dict(type="network", id="n1", name="unknown", reason=str(UNKNOWN_TIME))]


def test_stopped_for_compares_when_a_container_stopped_and_until_when_it_was_created():
    # Created long ago: until selects both; only the one that stopped long ago has stopped for a day.
    long_stopped, just_stopped, unknown, running = (
        Container(f"c{i}", name, "sha256:" + "a" * 64, state=state, created=OLD, stopped=stopped)
        for i, (name, state, stopped) in enumerate([("long", "exited", OLD + 3600), ("just", "exited", NEW),
                                                    ("unknown", "exited", None), ("up", "running", None)]))
    snapshot = Snapshot({}, [], [long_stopped, just_stopped, unknown, running])
    until = prune(snapshot, containers={"until": "24h"})
    assert sorted(a["container"] for a in until.actions) == ["c0", "c1", "c2"]
    stopped_for = prune(snapshot, containers={"stopped_for": "24h"})
    assert [a["container"] for a in stopped_for.actions] == ["c0"]
    assert stopped_for.skipped == [dict(type="container", id="c2", name="unknown", reason=str(UNKNOWN_STOP))]


def test_a_network_or_volume_stays_while_a_container_that_stays_uses_it():
    image = hid("img")
    users = [Container("c-run", "run", image, state="running", networks=["backend"], volumes=["data"]),
             Container("c-old", "old", image, state="exited", created=OLD, networks=["front"], volumes=["cache"])]
    snapshot = Snapshot({}, [], users,
                        networks=[Network("n-back", "backend", created=OLD), Network("n-front", "front", created=OLD),
                                  Network("n-bridge", "bridge", created=OLD, predefined=True)],
                        volumes=[Volume(name, created=OLD, size=10, anonymous=True) for name in ("data", "cache", "free")])
    kept = prune(snapshot, networks={}, volumes={})
    assert [a["name"] for a in kept.actions] == ["free"]
    assert {(s["type"], s["name"]) for s in kept.skipped} == {
        ("network", "backend"), ("network", "front"), ("volume", "data"), ("volume", "cache")}
    # Removing the stopped container in the same run frees what only it used; the predefined network never goes.
    freed = prune(snapshot, containers={}, networks={}, volumes={})
    assert [a["action"] for a in freed.actions] == [
        "remove_container", "remove_network", "remove_volume", "remove_volume"]
    assert [a["name"] for a in freed.actions][1:] == ["front", "cache", "free"]


def test_named_volumes_only_with_all():
    volumes = [Volume("named", created=OLD, size=5), Volume("a" * 64, created=OLD, size=7, anonymous=True)]
    snapshot = Snapshot({}, [], [], volumes=volumes)
    assert [a["volume"] for a in prune(snapshot, volumes={}).actions] == ["a" * 64]
    assert [a["volume"] for a in prune(snapshot, volumes={"all": True}).actions] == ["a" * 64, "named"]


def test_the_chain_of_holds_in_order_and_not_approved_left_to_not_approved():
    snapshot = make_snapshot([("old", [], ["o"], None), ("kept", [], ["k"], None)])
    snapshot.images[hid("kept")].labels = {"keep": "1"}
    plan = prune(snapshot, approval=Approval({hid("kept"): {"id": hid("kept")}}), protect={"labels": ["keep"]},
                 images={})
    # Protection comes first: the approved but protected image is a skip for protection; the unapproved one is no
    # skip (the run reports it in not_approved).
    assert plan.actions == []
    assert [(s["id"], s["reason"]) for s in plan.skipped] == [(hid("kept"), "protected: label keep")]


def test_build_cache_records_are_one_prune_unless_approved_one_by_one():
    records = [dict(ID=f"r{i}", Size=10 * i, InUse=i == 3, Shared=i == 2, LastUsedAt="2020-01-01T00:00:00Z")
               for i in range(1, 4)]
    snapshot = Snapshot({}, [], [], build_cache=records)
    [whole] = prune(snapshot, builder_cache={}).actions
    assert (whole["records"], whole["bytes"], whole["exact"]) == (1, 10, True)
    assert [a["filters"]["id"] for a in prune(snapshot, approval=Approval({"r1": {"id": "r1"}}), keep_all=True,
                                              builder_cache={}).actions] == [["r1"]]


@SETTINGS
@given(prune_cases())
def test_nothing_in_use_and_nothing_protected_goes(case):
    snapshot, options = case
    plan = plan_of(snapshot, options)
    removed = {a["container"] for a in plan.actions if a["action"] == "remove_container"}
    deleted = {a["image"] for a in plan.actions if a["action"] == "delete_image"}
    assert not any(snapshot.containers[c].running for c in removed)
    for container in snapshot.containers.values():
        if container.id not in removed:
            assert container.image_id not in deleted, "an image a remaining container uses was deleted"
    if options["protect_label"]:
        assert not any("keep" in snapshot.images[i].labels for i in deleted)
    if options["dangling"]:
        # Dangling only: nothing tagged is touched (pruned parents are untagged too).
        assert not any(a["action"] == "untag" for a in plan.actions)
        assert all(not snapshot.images[i].repo_tags for i in deleted)


@SETTINGS
@given(prune_cases())
def test_bytes_equal_the_oracle_and_planning_is_pure(case):
    snapshot, options = case
    before = snapshot.to_dict()
    plan = plan_of(snapshot, options)
    assert snapshot.to_dict() == before
    assert plan.reclaimed_bytes == oracle_bytes(snapshot, plan)
    assert all(a["bytes"] >= 0 for a in plan.actions)
    again = plan_of(snapshot, options)
    assert again.actions == plan.actions


@SETTINGS
@given(chained_cases())
def test_a_check_mode_chain_predicts_the_bytes_of_both_steps(case):
    """The prune told what the removal deletes counts the layers the two share, so the two predictions add up to
    what the real run (removal, then prune on what is left) frees."""
    snapshot, request, options = case
    first = remove_images(snapshot, **request)
    deleted_first = {a["image"] for a in first.actions if a["action"] == "delete_image"}
    second = plan_of(snapshot, options, sorted(deleted_first))
    assert not deleted_first & {a["image"] for a in second.actions if a["action"] == "delete_image"}
    both = Plan()
    both.actions = first.actions + second.actions
    assert first.reclaimed_bytes + second.reclaimed_bytes == oracle_bytes(snapshot, both)
