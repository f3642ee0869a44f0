"""The usage ledger: its file rules, the merge of concurrent writers, and the uses engine events show."""

from __future__ import annotations

import json
import multiprocessing
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import (
    KEEP_SECONDS,
    LEDGER_FORMAT,
    UsageLedger,
    event_uses,
    ledger_file_name,
)

ENGINE = "ABCD:EFGH"
NOW = 1_800_000_000.0
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def ledger_in(directory):
    directory.mkdir(mode=0o700, exist_ok=True)
    return UsageLedger.for_engine(str(directory), ENGINE)


def test_uses_are_merged_latest_first_and_kept_between_runs(tmp_path):
    first = ledger_in(tmp_path / "l")
    first.record({A: NOW - 10, B: NOW - 5}, events_until=int(NOW - 5), now=NOW)
    again = ledger_in(tmp_path / "l")
    assert again.last_use == {A: NOW - 10, B: NOW - 5} and again.events_until == int(NOW - 5)
    again.record({A: NOW - 20, B: NOW}, events_until=int(NOW - 30), now=NOW)  # an older use never wins
    assert ledger_in(tmp_path / "l").last_use == {A: NOW - 10, B: NOW}
    assert ledger_in(tmp_path / "l").events_until == int(NOW - 5)
    path = tmp_path / "l" / ledger_file_name(ENGINE)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(path.read_text())["format"] == LEDGER_FORMAT and not first.problems


def test_uses_older_than_the_horizon_are_dropped(tmp_path):
    ledger = ledger_in(tmp_path / "l")
    ledger.record({A: NOW - KEEP_SECONDS - 1, B: NOW - KEEP_SECONDS + 1}, now=NOW)
    assert ledger_in(tmp_path / "l").last_use == {B: NOW - KEEP_SECONDS + 1}


def test_a_corrupt_or_foreign_file_is_ignored_and_written_anew(tmp_path):
    directory = tmp_path / "l"
    directory.mkdir(mode=0o700)
    path = directory / ledger_file_name(ENGINE)
    for content, reason in (("{not json", "it is not valid JSON"),
                            (json.dumps({"format": 99, "images": {}}), "its format is 99"),
                            (json.dumps({"format": LEDGER_FORMAT, "engine_id": "other", "images": {}}),
                             "it is for engine 'other'"),
                            (json.dumps({"format": LEDGER_FORMAT, "engine_id": ENGINE, "images": {A: "x"}}),
                             "its images are not a map")):
        path.write_text(content)
        path.chmod(0o600)
        ledger = ledger_in(directory)
        assert ledger.last_use == {} and reason in ledger.problems[0] and "written anew" in ledger.problems[0]
        ledger.record({A: NOW}, now=NOW)
        assert ledger_in(directory).last_use == {A: NOW}


def test_a_file_others_can_write_or_a_link_is_never_trusted_nor_touched(tmp_path):
    directory = tmp_path / "l"
    ledger_in(directory).record({A: NOW}, now=NOW)
    path = directory / ledger_file_name(ENGINE)
    path.chmod(0o666)
    ledger = ledger_in(directory)
    assert ledger.last_use == {} and "writable by group or others" in ledger.problems[0]
    ledger.record({B: NOW}, now=NOW)
    assert B not in path.read_text()
    path.chmod(0o600)
    os.rename(path, directory / "real.json")
    os.symlink(directory / "real.json", path)
    ledger = ledger_in(directory)
    assert ledger.last_use == {} and "is a symbolic link" in ledger.problems[0]


def test_an_unwritable_directory_is_a_warning_not_a_failure(tmp_path):
    (tmp_path / "file").write_text("")
    ledger = UsageLedger.for_engine(str(tmp_path / "file" / "sub"), ENGINE)
    ledger.record({A: NOW}, now=NOW)
    assert ledger.problems and "was not written" in ledger.problems[0]


def _write_uses(directory, offset):
    ledger = UsageLedger.for_engine(directory, ENGINE)
    for i in range(50):
        ledger.record({f"sha256:{offset:02d}{i:062d}": NOW + i, A: NOW + offset * 100 + i}, now=NOW + 1000)


def test_concurrent_writers_lose_no_use(tmp_path):
    directory = tmp_path / "l"
    directory.mkdir(mode=0o700)
    writers = [multiprocessing.Process(target=_write_uses, args=(str(directory), n)) for n in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    uses = ledger_in(directory).last_use
    assert len(uses) == 4 * 50 + 1 and uses[A] == NOW + 3 * 100 + 49


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from([A, B, "sha256:" + "c" * 64]),
                                st.floats(min_value=NOW - 1000, max_value=NOW), max_size=3), max_size=6))
def test_the_ledger_holds_the_latest_use_of_each_image_whatever_the_order(tmp_path_factory, batches):
    directory = tmp_path_factory.mktemp("ledger")
    for batch in batches:
        UsageLedger.for_engine(str(directory), ENGINE).record(batch, now=NOW)
    expected = {}
    for batch in batches:
        for image_id, seen in batch.items():
            expected[image_id] = max(seen, expected.get(image_id, seen))
    assert UsageLedger.for_engine(str(directory), ENGINE).last_use == expected


def event(action, container, image, time_nano):
    return {"Type": "container", "Action": action, "timeNano": time_nano,
            "Actor": {"ID": container, "Attributes": {"image": image, "name": container}}}


def test_events_show_uses_of_containers_gone_since_by_the_reference_they_were_given():
    events = [event("create", "c1", "app:1", 1_000_000_000_000_000_000),
              event("start", "c1", "app:1", 1_000_000_001_000_000_000),
              event("die", "c1", "app:1", 1_000_000_002_500_000_000),
              event("destroy", "c1", "app:1", 1_000_000_003_000_000_000),
              event("start", "c2", "gone:tag", 1_000_000_004_000_000_000),  # its tag moved: cannot be resolved
              event("start", "c3", "sha256:" + "b" * 12, 1_000_000_005_000_000_000),
              {"Type": "image", "Action": "tag", "timeNano": 1_000_000_006_000_000_000, "Actor": {"ID": A}},
              event("exec_start: sh", "c1", "app:1", 1_000_000_007_000_000_000)]
    present = {"c3": B}
    uses = event_uses(events, present.get, {"app:1": A}.get)
    assert uses == {A: 1_000_000_003.0, B: 1_000_000_005.0}
