"""The usage ledger: its file rules (also between root and the directory's owner, two real uids), its format (format 1
files still read), the merge of concurrent writers, and the uses engine events show (also as recorded from real
engines)."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from snapshot_helpers import FLAVOURS, SNAPSHOTS
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import (
    KEEP_SECONDS,
    LEDGER_FORMAT,
    UsageLedger,
    directory_distrust,
    event_uses,
    event_volume_uses,
    file_distrust,
    ledger_file_name,
)

ENGINE = "ABCD:EFGH"
NOW = 1_800_000_000.0
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
V, W = "f" * 64, "data"


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


def test_volume_uses_are_merged_latest_first_beside_the_images(tmp_path):
    ledger_in(tmp_path / "l").record({A: NOW - 10}, now=NOW, volume_uses={V: NOW - 10, W: NOW - 5})
    again = ledger_in(tmp_path / "l")
    assert again.volume_last_use == {V: NOW - 10, W: NOW - 5} and again.last_use == {A: NOW - 10}
    again.record({}, now=NOW, volume_uses={V: NOW, W: NOW - 20})  # an older use never wins
    assert ledger_in(tmp_path / "l").volume_last_use == {V: NOW, W: NOW - 5}
    data = json.loads((tmp_path / "l" / ledger_file_name(ENGINE)).read_text())
    assert data["format"] == LEDGER_FORMAT == 2 and data["volumes"] == {V: NOW, W: NOW - 5}


def test_a_format_1_file_reads_as_one_without_volume_uses_and_is_written_as_format_2(tmp_path):
    directory = tmp_path / "l"
    directory.mkdir(mode=0o700)
    path = directory / ledger_file_name(ENGINE)
    path.write_text(json.dumps({"format": 1, "engine_id": ENGINE, "events_until": int(NOW - 60), "images": {A: NOW - 60}}))
    path.chmod(0o600)
    ledger = ledger_in(directory)
    assert (ledger.last_use, ledger.volume_last_use, ledger.events_until) == ({A: NOW - 60}, {}, int(NOW - 60))
    assert not ledger.problems
    assert ledger.record({B: NOW}, events_until=int(NOW), now=NOW, volume_uses={V: NOW})
    assert json.loads(path.read_text()) == {"format": 2, "engine_id": ENGINE, "events_until": int(NOW),
                                            "images": {A: NOW - 60, B: NOW}, "volumes": {V: NOW}}


def test_uses_older_than_the_horizon_are_dropped(tmp_path):
    ledger = ledger_in(tmp_path / "l")
    ledger.record({A: NOW - KEEP_SECONDS - 1, B: NOW - KEEP_SECONDS + 1}, now=NOW,
                  volume_uses={V: NOW - KEEP_SECONDS - 1, W: NOW - KEEP_SECONDS + 1})
    assert ledger_in(tmp_path / "l").last_use == {B: NOW - KEEP_SECONDS + 1}
    assert ledger_in(tmp_path / "l").volume_last_use == {W: NOW - KEEP_SECONDS + 1}


def test_a_corrupt_or_foreign_file_is_ignored_and_written_anew(tmp_path):
    directory = tmp_path / "l"
    directory.mkdir(mode=0o700)
    path = directory / ledger_file_name(ENGINE)
    for content, reason in (("{not json", "it is not valid JSON"),
                            (json.dumps({"format": 99, "images": {}}), "its format is 99"),
                            (json.dumps({"format": LEDGER_FORMAT, "engine_id": "other", "images": {}}),
                             "it is for engine 'other'"),
                            (json.dumps({"format": LEDGER_FORMAT, "engine_id": ENGINE, "images": {A: "x"}}),
                             "its images are not a map"),
                            # A newer collection's format, as a format 1 reader meets this one's: not read, written anew.
                            (json.dumps({"format": 3, "engine_id": ENGINE, "images": {}, "volumes": {}}),
                             "its format is 3, this collection reads formats 1, 2"),
                            (json.dumps({"format": 2, "engine_id": ENGINE, "images": {}}),
                             "its volumes are not a map"),
                            (json.dumps({"format": 2, "engine_id": ENGINE, "images": {}, "volumes": {V: True}}),
                             "its volumes are not a map")):
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
        ledger.record({f"sha256:{offset:02d}{i:062d}": NOW + i, A: NOW + offset * 100 + i}, now=NOW + 1000,
                      volume_uses={f"v{offset}-{i}": NOW + i, V: NOW + offset * 100 + i})


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
    volume_uses = ledger_in(directory).volume_last_use
    assert len(volume_uses) == 4 * 50 + 1 and volume_uses[V] == NOW + 3 * 100 + 49


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from([A, B, "sha256:" + "c" * 64, "volume:" + V, "volume:" + W]),
                                st.floats(min_value=NOW - 1000, max_value=NOW), max_size=3), max_size=6))
def test_the_ledger_holds_the_latest_use_of_each_image_and_volume_whatever_the_order(tmp_path_factory, batches):
    directory = tmp_path_factory.mktemp("ledger")
    for batch in batches:
        UsageLedger.for_engine(str(directory), ENGINE).record(
            {k: t for k, t in batch.items() if k.startswith("sha256:")}, now=NOW,
            volume_uses={k[len("volume:"):]: t for k, t in batch.items() if k.startswith("volume:")})
    expected = {}
    for batch in batches:
        for key, seen in batch.items():
            expected[key] = max(seen, expected.get(key, seen))
    ledger = UsageLedger.for_engine(str(directory), ENGINE)
    assert ledger.last_use == {k: t for k, t in expected.items() if k.startswith("sha256:")}
    assert ledger.volume_last_use == {k[len("volume:"):]: t for k, t in expected.items() if k.startswith("volume:")}


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


def volume_event(action, volume, container, time_nano):
    return {"Type": "volume", "Action": action, "timeNano": time_nano,
            "Actor": {"ID": volume, "Attributes": {"container": container, "driver": "local"}}}


def test_volume_uses_are_the_mounting_containers_events_also_once_it_is_gone():
    events = [{"Type": "volume", "Action": "create", "timeNano": 999_999_999_000_000_000,
               "Actor": {"ID": "fresh", "Attributes": {"driver": "local"}}},  # no container: no use
              event("create", "c1", "app:1", 1_000_000_000_000_000_000),
              volume_event("mount", V, "c1", 1_000_000_001_000_000_000),
              event("start", "c1", "app:1", 1_000_000_001_100_000_000),
              event("die", "c1", "app:1", 1_000_000_002_000_000_000),
              volume_event("unmount", V, "c1", 1_000_000_002_100_000_000),
              event("destroy", "c1", "app:1", 1_000_000_003_000_000_000),  # gone: known by its mount event
              event("start", "c2", "app:1", 1_000_000_004_000_000_000),  # present: its Mounts
              event("destroy", "c3", "app:1", 1_000_000_005_000_000_000),  # never started, gone: unknown
              {"Type": "volume", "Action": "destroy", "timeNano": 1_000_000_006_000_000_000,
               "Actor": {"ID": W, "Attributes": {"driver": "local"}}}]
    present = {"c2": (W, "other")}
    assert event_volume_uses(events, lambda c: present.get(c, ())) == {
        V: 1_000_000_003.0, W: 1_000_000_004.0, "other": 1_000_000_004.0}


def recorded_volume_uses(flavour):
    return json.loads((SNAPSHOTS / f"{flavour}.volumes.json").read_text())


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_volume_uses_real_events_show(flavour):
    """Recorded from each engine (record_volume_uses.py): a `--rm` container that mounted a volume by name, gone when
    the events were read, and a new anonymous volume it made and took along."""
    recorded = recorded_volume_uses(flavour)
    volumes = recorded["volumes"]
    uses = event_volume_uses(recorded["events"], lambda container_id: ())
    rm_events = [e for e in recorded["events"] if (e.get("Actor") or {}).get("ID") == recorded["rm_container"]]
    assert uses[volumes["recent"]] == max(e["timeNano"] for e in rm_events) / 1e9  # its destroy event
    assert max(e["timeNano"] for e in rm_events) == next(e["timeNano"] for e in rm_events if e["Action"] == "destroy")
    assert uses[volumes["old"]] < uses[volumes["recent"]] - recorded["gap_seconds"]
    assert not [e for e in recorded["events"] if e.get("Type") == "container"
                and any("mount" in key.lower() for key in (e.get("Actor") or {}).get("Attributes") or {})]


# The ledger belongs to its directory's owner: the modules (root, through become) and the tracker (its own user)
# write one file. These run as root and make the other user's files and processes with a second, real uid.
OTHER_UID, OTHER_GID = 64_123, 64_123
THIRD_UID = 64_124
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to act as two users")


@pytest.fixture
def shared():
    """PARENT/ledger, not made yet, in a PARENT the other uid can reach (the test's tmp_path is root's only)."""
    parent = tempfile.mkdtemp(prefix="reclaim-ledger-")
    os.chmod(parent, 0o755)
    yield Path(parent) / "ledger"
    shutil.rmtree(parent)


def as_other(function, *args):
    """FUNCTION(*ARGS) in a forked process running as OTHER_UID (no supplementary groups): its result."""
    results = multiprocessing.get_context("fork").Queue()

    def run():
        os.setgroups([])
        os.setgid(OTHER_GID)
        os.setuid(OTHER_UID)
        results.put(function(*args))

    process = multiprocessing.get_context("fork").Process(target=run)
    process.start()
    process.join()
    assert process.exitcode == 0
    return results.get(timeout=5)


def _other_records(directory, uses):
    ledger = UsageLedger.for_engine(directory, ENGINE)
    written = ledger.record(uses, now=NOW)
    return written, ledger.last_use, ledger.problems


def owned_by_other(directory):
    directory.mkdir(mode=0o700)
    os.chown(directory, OTHER_UID, OTHER_GID)
    return directory


@as_root
def test_root_writes_the_directory_owners_files_and_each_reads_the_others_uses(shared):
    owned_by_other(shared)
    assert as_other(_other_records, str(shared), {A: NOW - 10}) == (True, {A: NOW - 10}, [])
    root = ledger_in(shared)
    assert root.last_use == {A: NOW - 10} and not root.problems
    assert root.record({B: NOW}, now=NOW)
    for name in (ledger_file_name(ENGINE), ledger_file_name(ENGINE) + ".lock"):
        st = (shared / name).stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (OTHER_UID, OTHER_GID, 0o600), name
    assert as_other(_other_records, str(shared), {}) == (True, {A: NOW - 10, B: NOW}, [])
    assert sorted(os.listdir(shared)) == sorted([ledger_file_name(ENGINE), ledger_file_name(ENGINE) + ".lock"])


@as_root
def test_root_trusts_its_own_file_in_the_owners_directory_and_gives_it_to_the_owner(shared):
    shared.mkdir(mode=0o700)
    assert ledger_in(shared).record({A: NOW}, now=NOW)  # before the tracker was installed: root's
    os.chown(shared, OTHER_UID, OTHER_GID)  # the role makes the directory the tracker's
    written, uses, problems = as_other(_other_records, str(shared), {B: NOW})
    assert not written and uses == {} and "owned by uid 0, not by uid 64123 that owns its directory" in problems[0]
    root = ledger_in(shared)
    assert root.last_use == {A: NOW} and not root.problems and root.record({}, now=NOW)
    assert (shared / ledger_file_name(ENGINE)).stat().st_uid == OTHER_UID
    assert as_other(_other_records, str(shared), {B: NOW})[:2] == (True, {A: NOW, B: NOW})


@as_root
def test_a_third_users_file_is_trusted_by_neither_and_never_touched(shared):
    owned_by_other(shared)
    ledger_in(shared).record({A: NOW}, now=NOW)
    path = shared / ledger_file_name(ENGINE)
    os.chown(path, THIRD_UID, THIRD_UID)
    before = path.read_text()
    root = ledger_in(shared)
    assert root.last_use == {} and "owned by uid 64124, neither by uid 64123 that owns its directory nor by uid 0" \
        in root.problems[0] and "will not be written" in root.problems[0]
    assert not root.record({B: NOW}, now=NOW)
    written, _uses, problems = as_other(_other_records, str(shared), {B: NOW})
    assert not written and "owned by uid 64124" in problems[0]
    assert path.read_text() == before and path.stat().st_uid == THIRD_UID


@as_root
def test_a_user_never_uses_a_directory_another_user_owns(shared):
    shared.mkdir(mode=0o755)  # root's
    written, _uses, problems = as_other(_other_records, str(shared), {A: NOW})
    assert not written and f"its directory {shared} is owned by uid 0, not by uid 64123" in problems[0]
    assert os.listdir(shared) == []


@as_root
@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_root_never_uses_a_directory_group_or_others_can_write(shared, mode):
    owned_by_other(shared)
    shared.chmod(mode)
    root = ledger_in(shared)
    assert not root.record({A: NOW}, now=NOW) and "writable by group or others" in root.problems[0]
    assert os.listdir(shared) == []


@as_root
def test_root_never_follows_a_symlinked_directory(shared, tmp_path):
    real = owned_by_other(tmp_path / "real")
    os.symlink(real, shared)
    root = UsageLedger.for_engine(str(shared), ENGINE)
    assert "is a symbolic link" in root.problems[0] and not root.record({A: NOW}, now=NOW)
    assert os.listdir(real) == []


@as_root
def test_root_and_the_owner_writing_at_once_lose_no_use(shared):
    owned_by_other(shared)
    context = multiprocessing.get_context("fork")

    def other_writes():
        os.setgroups([])
        os.setgid(OTHER_GID)
        os.setuid(OTHER_UID)
        _write_uses(str(shared), 1)

    writers = [context.Process(target=other_writes), context.Process(target=_write_uses, args=(str(shared), 2))]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    uses = ledger_in(shared).last_use
    assert len(uses) == 2 * 50 + 1 and uses[A] == NOW + 2 * 100 + 49
    assert (shared / ledger_file_name(ENGINE)).stat().st_uid == OTHER_UID


def test_the_trust_rules():
    def st(mode, uid):
        return os.stat_result((mode, 0, 0, 1, uid, uid, 0, 0, 0, 0))

    directory, regular = stat.S_IFDIR | 0o700, stat.S_IFREG | 0o600
    assert directory_distrust(st(directory, 1000), euid=1000) is None
    assert directory_distrust(st(directory, 1000), euid=0) is None
    assert "owned by uid 1000, not by uid 1001" in directory_distrust(st(directory, 1000), euid=1001)
    assert "writable by group or others" in directory_distrust(st(stat.S_IFDIR | 0o720, 0), euid=0)
    assert directory_distrust(st(stat.S_IFLNK | 0o777, 0), euid=0) == "is a symbolic link"
    assert file_distrust(st(regular, 1000), 1000, euid=1000) is None
    assert file_distrust(st(regular, 1000), 1000, euid=0) is None
    assert file_distrust(st(regular, 0), 1000, euid=0) is None
    assert "owned by uid 0" in file_distrust(st(regular, 0), 1000, euid=1000)
    assert "owned by uid 1002" in file_distrust(st(regular, 1002), 1000, euid=0)
    assert "writable by group or others" in file_distrust(st(stat.S_IFREG | 0o620, 1000), 1000, euid=0)
    assert file_distrust(st(stat.S_IFIFO | 0o600, 1000), 1000, euid=1000) == "is not a regular file"
