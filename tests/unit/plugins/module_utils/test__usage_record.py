"""What a run records in the usage ledger: the uses of images and volumes its snapshot's containers show and those of
the engine's events since the previous run, the snapshot given every last use the ledger knows, and problems returned, never raised."""

from __future__ import annotations

import pytest
from snapshot_helpers import NOW, hid, make_snapshot

from ansible_collections.reclaim.docker.plugins.module_utils._transport import APIError
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import UsageLedger
from ansible_collections.reclaim.docker.plugins.module_utils._usage_record import record_uses

ENGINE = "STUB:LEDGER"
IMAGES = [("web", ["lab/web:1"], ["w"], None), ("job", ["lab/job:1"], ["j"], None), ("old", ["lab/old:1"], ["o"], None),
          ("gone", ["lab/once:1"], ["g"], None), ("idle", ["lab/idle:1"], ["i"], None)]
CONTAINERS = [("up", "web", "running", 0), ("done", "job", "exited", 0), ("never", "old", "created", 0)]


def host():
    snapshot = make_snapshot(IMAGES, CONTAINERS)
    for container in snapshot.containers.values():
        container.created = NOW - 5000
    done = next(c for c in snapshot.containers.values() if c.name == "done")
    done.stopped, done.volumes = NOW - 100, ["cache"]
    return snapshot


def event(action, when, image, container="f" * 64):
    return {"Type": "container", "Action": action, "time": int(when), "timeNano": int(when * 1e9),
            "Actor": {"ID": container, "Attributes": {"image": image}}}


def volume_event(action, when, volume, container):
    return {"Type": "volume", "Action": action, "time": int(when), "timeNano": int(when * 1e9),
            "Actor": {"ID": volume, "Attributes": {"container": container, "driver": "local"}}}


class Events:
    """The events part of an EngineClient: ANSWER (a list, or an exception to raise), and the calls made."""

    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def events(self, since, until, filters):
        self.calls.append(dict(since=since, until=until, filters=filters))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def ledger_in(tmp_path):
    (tmp_path / "ledger").mkdir(mode=0o700, exist_ok=True)
    return UsageLedger.for_engine(str(tmp_path / "ledger"), ENGINE)


def test_the_snapshots_containers_and_the_events_are_uses_kept_in_the_ledger(tmp_path):
    snapshot = host()
    # `docker run --rm -v scratch:/s` between two runs: only its events show the image and the volume were used (the
    # volume's mount event names the container, the container's destroy event is its last use).
    rm = "e" * 64
    client = Events([event("start", NOW - 3000, "lab/once:1", rm), volume_event("mount", NOW - 3000, "scratch", rm),
                     event("destroy", NOW - 2000, "lab/once:1", rm),
                     event("start", NOW - 50, "lab/job:1"), event("start", NOW - 10, "lab/nowhere:1")])
    problems = record_uses(client, snapshot, ledger_in(tmp_path), NOW + 0.5)
    assert problems == []
    assert client.calls == [dict(since=0, until=int(NOW), filters={"type": ["container", "volume"]})]
    expected = {hid("web"): NOW + 0.5,  # running: in use now
                hid("job"): NOW - 50,  # an event later than its container's stop wins
                hid("old"): NOW - 5000,  # never started: created
                hid("gone"): NOW - 2000}
    assert snapshot.last_use == expected
    assert ledger_in(tmp_path).last_use == expected and ledger_in(tmp_path).events_until == int(NOW)
    volumes = {"cache": NOW - 100,  # its stopped container's stop
               "scratch": NOW - 2000}
    assert snapshot.volume_last_use == volumes and ledger_in(tmp_path).volume_last_use == volumes


def test_the_next_run_reads_the_events_since_and_keeps_the_uses_it_no_longer_sees(tmp_path):
    record_uses(Events([event("die", NOW - 2000, "lab/once:1")]), host(), ledger_in(tmp_path), NOW)
    later = make_snapshot(IMAGES)  # every container removed since
    client = Events([])
    assert record_uses(client, later, ledger_in(tmp_path), NOW + 600) == []
    assert client.calls[0]["since"] == int(NOW) and client.calls[0]["until"] == int(NOW + 600)
    assert later.last_use[hid("gone")] == NOW - 2000 and later.last_use[hid("job")] == NOW - 100
    assert later.last_use[hid("web")] == NOW and hid("idle") not in later.last_use


@pytest.mark.parametrize("failure", [APIError("500 for GET /events", 500, "boom"), TimeoutError("timed out")])
def test_unreadable_events_are_a_problem_and_are_read_again_next_time(tmp_path, failure):
    record_uses(Events([]), make_snapshot(IMAGES), ledger_in(tmp_path), NOW - 1000)
    snapshot = host()
    problems = record_uses(Events(failure), snapshot, ledger_in(tmp_path), NOW)
    assert len(problems) == 1 and problems[0].startswith("Could not read the engine's events for the usage ledger: ")
    # The snapshot's own uses are recorded all the same; the events not read stay to read.
    assert snapshot.last_use[hid("web")] == NOW and ledger_in(tmp_path).events_until == int(NOW - 1000)
    client = Events([])
    record_uses(client, host(), ledger_in(tmp_path), NOW + 1)
    assert client.calls[0]["since"] == int(NOW - 1000)


def test_a_ledger_that_cannot_be_trusted_is_a_problem_not_a_failure(tmp_path):
    directory = tmp_path / "ledger"
    directory.mkdir()
    directory.chmod(0o777)  # others could write it: never trusted
    snapshot = host()
    problems = record_uses(Events([]), snapshot, UsageLedger.for_engine(str(directory), ENGINE), NOW)
    assert len(problems) == 1 and "writable by group or others" in problems[0]
    assert snapshot.last_use == {} and not list(directory.iterdir())
