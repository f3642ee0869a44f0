"""The prune planner: its selection, holds and order on hand-made snapshots, and its invariants on generated ones
(strategies.py; the bytes against the simple definition, accounting_oracle.py); volumes by last use also on snapshots
and events recorded from each engine."""

from __future__ import annotations

import datetime
import json

import pytest
from accounting_oracle import oracle_bytes
from hypothesis import given
from snapshot_helpers import FLAVOURS, NOW, SNAPSHOTS, hid, make_snapshot, prune, remove_images
from strategies import SETTINGS, chained_cases, prune_cases, volume_cases

from ansible_collections.reclaim.docker.plugins.module_utils._approval import Approval
from ansible_collections.reclaim.docker.plugins.module_utils._filters import Filters
from ansible_collections.reclaim.docker.plugins.module_utils._model import Container, Network, Snapshot, Volume
from ansible_collections.reclaim.docker.plugins.module_utils._plan import (
    UNKNOWN_STOP,
    UNKNOWN_TIME,
    UNKNOWN_USE,
    Plan,
    plan_objects,
)
from ansible_collections.reclaim.docker.plugins.module_utils._protection import Protection
from ansible_collections.reclaim.docker.plugins.module_utils._prune_plan import (
    PruneRequest,
    plan_prune,
    volume_last_use,
)
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import UsageLedger
from ansible_collections.reclaim.docker.plugins.module_utils._usage_record import record_uses

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


# Volumes by last use (volumes_filters.unused_for), on snapshots and events recorded from each engine
# (record_volume_uses.py): what the usage ledger makes of them keeps a volume a `--rm` container used, and lets one go
# that nothing used since.

# Shorter than the recording's gap between the helpers' last uses and the `--rm` container's, longer than the time from
# its removal to the recording.
UNUSED_FOR = "3s"


class RecordedEvents:
    """The engine's events as record_uses reads them: those recorded."""

    def __init__(self, events):
        self._events = events

    def events(self, since, until, filters):
        assert filters == {"type": ["container", "volume"]}
        return [e for e in self._events if since <= e["time"] <= until]


def recorded_volumes(flavour):
    return json.loads((SNAPSHOTS / f"{flavour}.volumes.json").read_text())


def plan_volumes(data, filters, ledger_dir=None, snapshot=None, **types):
    """prune's plan on the recorded snapshot at its recording time, after a module run's record_uses into a ledger in
    LEDGER_DIR (None: usage_ledger false)."""
    snapshot = snapshot or Snapshot.from_dict(data["snapshot"])
    now = data["recorded_at"]
    if ledger_dir is not None:
        ledger_dir.mkdir(mode=0o700, exist_ok=True)
        assert record_uses(RecordedEvents(data["events"]), snapshot, UsageLedger.for_engine(str(ledger_dir), "E"),
                           now) == []
    types = dict(types, volumes=filters)
    request = PruneRequest(list(types), {t: Filters(t, f, now) for t, f in types.items()}, Protection(None, None, now))
    return snapshot, plan_prune(snapshot, request)


def destroyed(data, volume):
    """When the container that mounted VOLUME (by its mount event) was destroyed."""
    events = data["events"]
    container = next(e["Actor"]["Attributes"]["container"] for e in events
                     if e["Type"] == "volume" and e["Action"] == "mount" and e["Actor"]["ID"] == volume)
    return next(e["timeNano"] for e in events
                if e["Type"] == "container" and e["Action"] == "destroy" and e["Actor"]["ID"] == container) / 1e9


def iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_volume_a_removed_container_used_stays_and_one_unused_since_goes(flavour, tmp_path):
    data = recorded_volumes(flavour)
    volumes = data["volumes"]
    snapshot, planned = plan_volumes(data, {"unused_for": UNUSED_FOR}, tmp_path / "ledger")
    old = snapshot.volumes[volumes["old"]]
    # The helper that wrote it, removed since: its last use is the helper's destroy event.
    helper_destroyed = destroyed(data, old.name)
    assert planned.actions == [dict(
        action="remove_volume", volume=old.name, name=old.name, bytes=70_000, last_use=iso(helper_destroyed),
        last_use_source="ledger", reason=f"anonymous volume {old.name} is unused, last used {iso(helper_destroyed)} "
                                         "(ledger) and matches volumes_filters")]
    # recent: used by the --rm container, gone; held: its stopped container stays; named: not asked for.
    holder = next(iter(snapshot.containers.values()))
    assert planned.skipped == [dict(type="volume", id=volumes["held"], name=volumes["held"],
                                    reason=f"in use by container(s) vol-holder ({holder.id[:12]}, exited)")]
    assert plan_objects(snapshot, planned.actions) == [dict(
        type="volume", id=old.name, name=old.name, bytes=70_000, last_use=iso(helper_destroyed),
        last_use_source="ledger")]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_named_volumes_by_last_use_only_when_asked_twice(flavour, tmp_path):
    data = recorded_volumes(flavour)
    volumes = data["volumes"]
    _snapshot, planned = plan_volumes(data, {"unused_for": UNUSED_FOR, "all": True}, tmp_path / "ledger")
    assert [a["volume"] for a in planned.actions] == [volumes["old"]]  # named: the --rm container mounted it
    _snapshot, planned = plan_volumes(data, {"unused_for": "0s", "all": True}, tmp_path / "ledger")
    assert sorted(a["volume"] for a in planned.actions) == sorted([volumes["old"], volumes["recent"], volumes["named"]])
    assert {a["volume"]: a["bytes"] for a in planned.actions}[volumes["named"]] == 30_000


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_without_the_ledger_a_volume_counts_from_its_creation_or_its_containers(flavour):
    data = recorded_volumes(flavour)
    volumes = data["volumes"]
    snapshot, planned = plan_volumes(data, {"unused_for": UNUSED_FOR})
    assert {a["volume"]: a["last_use_source"] for a in planned.actions} == {
        volumes["old"]: "created", volumes["recent"]: "created"}
    # The holder removed in the same run: its stop time is the held volume's last use.
    holder = next(iter(snapshot.containers.values()))
    _snapshot, planned = plan_volumes(data, {"unused_for": "0s"}, containers={})
    held = next(a for a in planned.actions if a.get("volume") == volumes["held"])
    assert (held["last_use"], held["last_use_source"]) == (iso(holder.stopped), "containers")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_unknown_creation_time_keeps_a_volume_whatever_the_ledger_says(flavour, tmp_path):
    """A volume created anew under a name used before must not look as old as the uses of that name."""
    data = recorded_volumes(flavour)
    snapshot = Snapshot.from_dict(data["snapshot"])
    old = snapshot.volumes[data["volumes"]["old"]]
    old.created = None
    _snapshot, planned = plan_volumes(data, {"unused_for": UNUSED_FOR}, tmp_path / "ledger", snapshot=snapshot)
    assert planned.actions == []
    assert dict(type="volume", id=old.name, name=old.name, reason=str(UNKNOWN_TIME)) in planned.skipped
    # Without unused_for it goes as before, its last use reported unknown.
    _snapshot, planned = plan_volumes(data, {}, snapshot=snapshot)
    unknown = next(a for a in planned.actions if a["volume"] == old.name)
    assert (unknown["last_use"], unknown["last_use_source"]) == (None, "unknown")


def test_the_latest_known_use_counts_and_a_running_user_is_a_use_now():
    volume = Volume("v", created=NOW - 100)
    assert volume_last_use(volume, [], None, NOW) == (NOW - 100, "created")
    assert volume_last_use(volume, [], NOW - 200, NOW) == (NOW - 100, "created")  # a use of the name before it
    assert volume_last_use(volume, [], NOW - 100, NOW) == (NOW - 100, "ledger")
    stopped = Container("c1", "stopped", "sha256:x", state="exited", created=NOW - 90, stopped=NOW - 10)
    running = Container("c2", "running", "sha256:x", state="running", created=NOW - 90)
    assert volume_last_use(volume, [stopped], NOW - 50, NOW) == (NOW - 10, "containers")
    assert volume_last_use(volume, [stopped, running], NOW - 50, NOW) == (NOW, "containers")


def test_a_user_that_stopped_at_an_unknown_time_keeps_a_volume_unused_for_selects():
    """Its stop time is read for every stopped container that mounts a volume; one gone before it was read could have
    used the volume until then."""
    volume = Volume("a" * 64, created=OLD, size=7, anonymous=True)
    user = Container("c1", "gone", "sha256:x", state="exited", created=OLD, volumes=[volume.name])
    assert volume_last_use(volume, [user], None, NOW) == (None, "unknown")
    snapshot = Snapshot({}, [], [user], volumes=[volume])
    planned = prune(snapshot, containers={}, volumes={"unused_for": "1d"})
    assert [a["action"] for a in planned.actions] == ["remove_container"]
    assert planned.skipped == [dict(type="volume", id=volume.name, name=volume.name, reason=str(UNKNOWN_USE))]
    user.stopped = OLD + 60
    assert [a["action"] for a in prune(snapshot, containers={}, volumes={"unused_for": "1d"}).actions] == [
        "remove_container", "remove_volume"]


@SETTINGS
@given(volume_cases())
def test_an_unknown_or_recent_use_never_selects_a_volume(case):
    snapshot, options = case
    plan = prune(snapshot, **({"containers": {}} if options["containers"] else {}),
                 volumes={"unused_for": options["unused_for"], "all": options["all"]})
    unused_since = NOW - float(options["unused_for"][:-1])
    for action in (a for a in plan.actions if a["action"] == "remove_volume"):
        volume = snapshot.volumes[action["volume"]]
        users = [c for c in snapshot.containers.values() if volume.name in c.volumes]
        assert volume.anonymous or options["all"]
        assert volume.created is not None and volume.created < unused_since
        assert snapshot.volume_last_use.get(volume.name, float("-inf")) < unused_since
        assert not any(c.running for c in users)
        assert all(c.stopped is not None and c.stopped < unused_since for c in users)
        assert action["bytes"] == volume.size
        assert action["last_use_source"] in ("created", "containers", "ledger")
