"""The prune planner's volumes by last use (volumes_filters.unused_for), on snapshots and events recorded from each
engine (record_volume_uses.py): what the usage ledger makes of them keeps a volume a `--rm` container used, and lets one
go that nothing used since."""

from __future__ import annotations

import datetime
import json

import pytest
from snapshot_helpers import FLAVOURS, SNAPSHOTS

from ansible_collections.reclaim.docker.plugins.module_utils._approval import plan_items
from ansible_collections.reclaim.docker.plugins.module_utils._filters import UNKNOWN_TIME, Filters, Protection
from ansible_collections.reclaim.docker.plugins.module_utils._model import Container, Snapshot, Volume
from ansible_collections.reclaim.docker.plugins.module_utils._prune_plan import PrunePlanner, volume_last_use
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import event_volume_uses


def recorded(flavour):
    return json.loads((SNAPSHOTS / f"{flavour}.volumes.json").read_text())


def ledger_uses(data, snapshot):
    """The volume uses a module run at the recording time records, as _pipeline.Pipeline._track_usage does: those the
    events show, and the containers present (a stopped one when it was created: stopped_for is not asked for)."""
    uses = event_volume_uses(data["events"], lambda c: snapshot.containers[c].volumes if c in snapshot.containers else ())
    for container in snapshot.containers.values():
        seen = data["recorded_at"] if container.running else (container.stopped or container.created)
        for name in container.volumes:
            uses[name] = max(seen, uses.get(name, seen))
    return uses


def plan(data, filters, ledger=True, snapshot=None):
    snapshot = snapshot or Snapshot.from_dict(data["snapshot"])
    if ledger:
        snapshot.volume_last_use = ledger_uses(data, snapshot)
    planner = PrunePlanner(snapshot, Protection({}, None, data["recorded_at"]))
    planner.volumes(Filters("volumes", filters, data["recorded_at"]))
    return snapshot, planner.plan


def destroyed(data, volume):
    """When the container that mounted VOLUME (by its mount event) was destroyed."""
    events = data["events"]
    container = next(e["Actor"]["Attributes"]["container"] for e in events
                     if e["Type"] == "volume" and e["Action"] == "mount" and e["Actor"]["ID"] == volume)
    return next(e["timeNano"] for e in events
                if e["Type"] == "container" and e["Action"] == "destroy" and e["Actor"]["ID"] == container) / 1e9


def iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# Shorter than the recording's gap between the helpers' last uses and the `--rm` container's, longer than the time from
# its removal to the recording.
UNUSED_FOR = "3s"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_volume_a_removed_container_used_stays_and_one_unused_since_goes(flavour):
    data = recorded(flavour)
    volumes = data["volumes"]
    snapshot, planned = plan(data, {"unused_for": UNUSED_FOR})
    old = snapshot.volumes[volumes["old"]]
    # The helper that wrote it, removed since: its last use is the helper's destroy event.
    helper_destroyed = destroyed(data, old.name)
    assert planned.actions == [dict(
        action="remove_volume", volume=old.name, name=old.name, bytes=70_000, last_use=iso(helper_destroyed),
        last_use_source="ledger", reason=f"anonymous volume {old.name} is unused, last used {iso(helper_destroyed)} "
                                         "(ledger) and matches volumes_filters")]
    # recent: used by the --rm container, gone; held: its stopped container stays; named: not asked for.
    assert planned.skipped == [dict(type="volume", id=volumes["held"], name=volumes["held"],
                                    reason=f"in use by container(s) vol-holder ({next(iter(snapshot.containers))[:12]}, "
                                           "exited)")]
    items = plan_items(snapshot, planned.actions)
    assert items == [dict(type="volume", id=old.name, name=old.name, bytes=70_000, last_use=iso(helper_destroyed),
                          last_use_source="ledger")]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_named_volumes_by_last_use_only_when_asked_twice(flavour):
    data = recorded(flavour)
    volumes = data["volumes"]
    _snapshot, planned = plan(data, {"unused_for": UNUSED_FOR, "all": True})
    assert [a["volume"] for a in planned.actions] == [volumes["old"]]  # named: the --rm container mounted it
    _snapshot, planned = plan(data, {"unused_for": "0s", "all": True})
    assert sorted(a["volume"] for a in planned.actions) == sorted([volumes["old"], volumes["recent"], volumes["named"]])
    assert {a["volume"]: a["bytes"] for a in planned.actions}[volumes["named"]] == 30_000


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_without_the_ledger_a_volume_counts_from_its_creation_or_its_containers(flavour):
    data = recorded(flavour)
    volumes = data["volumes"]
    snapshot, planned = plan(data, {"unused_for": UNUSED_FOR}, ledger=False)
    sources = {a["volume"]: a["last_use_source"] for a in planned.actions}
    assert sources == {volumes["old"]: "created", volumes["recent"]: "created"}
    held = snapshot.volumes[volumes["held"]]
    holder = next(iter(snapshot.containers.values()))
    assert volume_last_use(snapshot, held, [holder], data["recorded_at"]) == (holder.created, "containers")
    assert volume_last_use(snapshot, held, [], data["recorded_at"]) == (held.created, "created")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_unknown_creation_time_keeps_a_volume_whatever_the_ledger_says(flavour):
    """A volume created anew under a name used before must not look as old as the uses of that name."""
    data = recorded(flavour)
    snapshot = Snapshot.from_dict(data["snapshot"])
    old = snapshot.volumes[data["volumes"]["old"]]
    old.created = None
    _snapshot, planned = plan(data, {"unused_for": UNUSED_FOR}, snapshot=snapshot)
    assert planned.actions == []
    assert dict(type="volume", id=old.name, name=old.name, reason=str(UNKNOWN_TIME)) in planned.skipped
    # Without unused_for it goes as before, its last use reported unknown.
    _snapshot, planned = plan(data, {}, snapshot=snapshot)
    unknown = next(a for a in planned.actions if a["volume"] == old.name)
    assert (unknown["last_use"], unknown["last_use_source"]) == (None, "unknown")


def test_the_latest_known_use_counts_and_a_running_user_is_a_use_now():
    now = 1_800_000_000.0
    volume = Volume("v", created=now - 100)
    snapshot = Snapshot({}, [], [], volumes=[volume])
    assert volume_last_use(snapshot, volume, [], now) == (now - 100, "created")
    snapshot.volume_last_use = {"v": now - 200}  # a use of the name before this volume was created
    assert volume_last_use(snapshot, volume, [], now) == (now - 100, "created")
    snapshot.volume_last_use = {"v": now - 100}
    assert volume_last_use(snapshot, volume, [], now) == (now - 100, "ledger")
    snapshot.volume_last_use = {"v": now - 50}
    stopped = Container("c1", "stopped", "sha256:x", state="exited", created=now - 90, stopped=now - 10)
    running = Container("c2", "running", "sha256:x", state="running", created=now - 90)
    assert volume_last_use(snapshot, volume, [stopped], now) == (now - 10, "containers")
    assert volume_last_use(snapshot, volume, [stopped, running], now) == (now, "containers")
