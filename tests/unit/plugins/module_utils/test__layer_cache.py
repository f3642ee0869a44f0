"""The layer cache: what it keeps, when it trusts a file, and that no file problem ever raises out of it."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import signal
import stat

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.reclaim.docker.plugins.module_utils import _host_files, _layer_cache
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import (
    CACHE_FORMAT,
    LayerCache,
    cache_file_name,
    layer_cache_argument_spec,
)

ENGINE = "ABCD:EFGH:IJKL:MNOP:QRST:UVWX:YZ12:3456:7890:ABCD:EFGH:IJKL"
FOREIGN_UID = 12345
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another uid needs root")


def digest(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


BASE, MIDDLE, TOP, OTHER = (digest(f"layer {n}") for n in range(4))
IMAGE_A, IMAGE_B, IMAGE_C = (digest(f"image {n}") for n in range(3))
# The containerd store: manifests naming a config and layer blobs, some blobs shared.
MANIFEST_1, MANIFEST_2, CONFIG_1, CONFIG_2, BLOB_BASE, BLOB_TOP = (digest(f"blob {n}") for n in range(6))
NO_SECTIONS = {"layers": {}, "images": {}, "blobs": {}, "manifests": {}, "image_manifests": {}}


@pytest.fixture
def directory(tmp_path):
    return str(tmp_path / "cache")


def filled(directory, engine=ENGINE):
    """A saved cache: A and B share BASE; C has a layer of its own."""
    cache = LayerCache.for_engine(directory, engine)
    cache.put(IMAGE_A, [BASE, MIDDLE], [100, 20])
    cache.put(IMAGE_B, [BASE, TOP], [100, 3])
    cache.put(IMAGE_C, [OTHER], [0])
    cache.save({IMAGE_A, IMAGE_B, IMAGE_C})
    assert cache.problems == []
    return cache


def cache_path(directory, engine=ENGINE):
    return os.path.join(directory, cache_file_name(engine))


def write_json(path, data):
    """DATA as JSON, or as it is when bytes, in a file the cache would trust."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else json.dumps(data).encode())
    os.chmod(path, 0o600)


def valid_data(engine=ENGINE):
    return {"format": CACHE_FORMAT, "engine_id": engine, "layers": {BASE: 100, MIDDLE: 20},
            "images": {IMAGE_A: [BASE, MIDDLE]}, "blobs": {CONFIG_1: 7, BLOB_BASE: 90},
            "manifests": {MANIFEST_1: [CONFIG_1, BLOB_BASE]}, "image_manifests": {IMAGE_A: [MANIFEST_1]}}


def read(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def one_problem(cache, *words):
    assert len(cache.problems) == 1, cache.problems
    problem = cache.problems[0]
    assert problem.endswith(".") and problem.count(". ") == 0, problem  # one sentence
    for word in words:
        assert word in problem, problem
    return problem


# What it keeps


def test_round_trip(directory):
    filled(directory)
    cache = LayerCache.for_engine(directory, ENGINE)
    assert cache.problems == []
    assert cache.get(IMAGE_A) == ((BASE, MIDDLE), (100, 20))
    assert cache.get(IMAGE_B) == ((BASE, TOP), (100, 3))
    assert cache.get(IMAGE_C) == ((OTHER,), (0,))
    assert cache.get(digest("never seen")) is None


def test_file_is_compact_with_each_layer_once(directory):
    filled(directory)
    data = read(cache_path(directory))
    assert data == {
        **NO_SECTIONS, "format": 2, "engine_id": ENGINE,
        "layers": {BASE: 100, MIDDLE: 20, TOP: 3, OTHER: 0},
        "images": {IMAGE_A: [BASE, MIDDLE], IMAGE_B: [BASE, TOP], IMAGE_C: [OTHER]},
    }
    with open(cache_path(directory), encoding="utf-8") as handle:
        text = handle.read()
    assert "\n" not in text and " " not in text  # no indentation, no spaces after separators


def test_an_image_with_no_layers_is_kept(directory):
    cache = LayerCache.for_engine(directory, ENGINE)
    assert cache.put(IMAGE_A, [], []) is True
    cache.save({IMAGE_A})
    assert LayerCache.for_engine(directory, ENGINE).get(IMAGE_A) == ((), ())


def test_entries_never_expire(directory):
    filled(directory)
    os.utime(cache_path(directory), (0, 0))  # written in 1970
    os.utime(directory, (0, 0))
    assert LayerCache.for_engine(directory, ENGINE).get(IMAGE_A) == ((BASE, MIDDLE), (100, 20))


def test_entries_of_gone_images_are_dropped_and_layers_no_one_uses(directory):
    filled(directory)
    cache = LayerCache.for_engine(directory, ENGINE)
    cache.save({IMAGE_A, digest("listed, never cached")})
    assert cache.problems == []
    data = read(cache_path(directory))
    assert data["images"] == {IMAGE_A: [BASE, MIDDLE]}
    assert data["layers"] == {BASE: 100, MIDDLE: 20}  # TOP and OTHER were used only by B and C
    assert cache.get(IMAGE_B) is None


def test_a_shared_layer_stays_while_an_image_uses_it(directory):
    filled(directory)
    cache = LayerCache.for_engine(directory, ENGINE)
    cache.save({IMAGE_B})
    assert read(cache_path(directory))["layers"] == {BASE: 100, TOP: 3}


def test_save_accepts_any_iterable_of_ids(directory):
    filled(directory)
    cache = LayerCache.for_engine(directory, ENGINE)
    cache.save(iter([IMAGE_C]))
    assert set(read(cache_path(directory))["images"]) == {IMAGE_C}


def test_written_only_when_something_changed(directory):
    filled(directory)
    inode = os.stat(cache_path(directory)).st_ino  # each write is a new file renamed over the old one
    cache = LayerCache.for_engine(directory, ENGINE)
    assert cache.get(IMAGE_A)
    cache.put(IMAGE_A, [BASE, MIDDLE], [100, 20])  # what it already holds
    cache.save({IMAGE_A, IMAGE_B, IMAGE_C})
    assert os.stat(cache_path(directory)).st_ino == inode
    cache.put(IMAGE_A, [BASE, MIDDLE], [100, 21])  # a new size read from the engine wins
    cache.save({IMAGE_A, IMAGE_B, IMAGE_C})
    assert os.stat(cache_path(directory)).st_ino != inode
    assert LayerCache.for_engine(directory, ENGINE).get(IMAGE_A) == ((BASE, MIDDLE), (100, 21))


def test_nothing_cached_and_nothing_new_writes_nothing(directory):
    cache = LayerCache.for_engine(directory, ENGINE)
    cache.save({IMAGE_A})
    assert cache.problems == [] and not os.path.exists(directory)


@pytest.mark.parametrize("image_id, chains, sizes", [
    ("a1b2", [BASE], [1]),
    (IMAGE_A.upper(), [BASE], [1]),
    (IMAGE_A, [BASE, MIDDLE], [1]),
    (IMAGE_A, [BASE], [-1]),
    (IMAGE_A, [BASE], [1.5]),
    (IMAGE_A, [BASE], [True]),
    (IMAGE_A, [BASE], ["1"]),
    (IMAGE_A, ["sha256:abc"], [1]),
    (IMAGE_A, [BASE, BASE], [1, 1]),
    (IMAGE_A, [None], [1]),
    (IMAGE_A, [[BASE]], [1]),
])
def test_put_keeps_only_what_a_loaded_file_would_pass(directory, image_id, chains, sizes):
    cache = LayerCache.for_engine(directory, ENGINE)
    assert cache.put(image_id, chains, sizes) is False
    assert cache.get(image_id) is None
    cache.put(IMAGE_B, [TOP], [7])
    cache.save({image_id, IMAGE_B})
    reloaded = LayerCache.for_engine(directory, ENGINE)
    assert reloaded.problems == [] and reloaded.get(IMAGE_B) == ((TOP,), (7,))


def test_put_takes_any_sequences_and_get_gives_tuples(directory):
    cache = LayerCache.for_engine(directory, ENGINE)
    assert cache.put(IMAGE_A, (c for c in (BASE, MIDDLE)), (100, 20)) is True
    assert cache.get(IMAGE_A) == ((BASE, MIDDLE), (100, 20))


# Where the file is


def test_engine_id_with_colons_gives_a_safe_file_name(directory):
    cache = LayerCache.for_engine(directory, ENGINE)
    name = os.path.basename(cache.path)
    assert re.fullmatch(r"layers-[0-9a-f]{16}\.json", name)
    assert os.path.dirname(cache.path) == directory
    assert name == "layers-" + hashlib.sha256(ENGINE.encode()).hexdigest()[:16] + ".json"
    assert cache_file_name(ENGINE) != cache_file_name(ENGINE.lower())


@pytest.mark.parametrize("engine_id", ["../../etc/passwd", "/", "a/b", "..", "x\x00y", "\udcff", "é:ü"])
def test_no_engine_id_leaves_the_directory(directory, engine_id):
    cache = LayerCache.for_engine(directory, engine_id)
    assert os.path.dirname(cache.path) == directory
    assert re.fullmatch(r"layers-[0-9a-f]{16}\.json", os.path.basename(cache.path))


def test_each_engine_has_its_own_file(directory):
    filled(directory, "engine-1")
    assert LayerCache.for_engine(directory, "engine-2").get(IMAGE_A) is None
    assert LayerCache.for_engine(directory, "engine-1").get(IMAGE_A) is not None


@pytest.mark.parametrize("engine_id", [None, "", 42])
def test_an_engine_without_id_gets_a_disabled_cache(directory, engine_id):
    cache = LayerCache.for_engine(directory, engine_id)
    assert cache.path is None and not cache.enabled
    one_problem(cache, "no ID")
    cache.put(IMAGE_A, [BASE], [1])
    cache.save({IMAGE_A})
    assert not os.path.exists(directory)


def test_argument_spec_matches_the_doc_fragment():
    spec = layer_cache_argument_spec().argument_spec
    assert spec == {"layer_cache": {"type": "bool", "default": True}, "layer_cache_dir": {"type": "path"}}
    fragment = importlib.import_module("ansible_collections.reclaim.docker.plugins.doc_fragments._layer_cache")
    options = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]
    assert set(options) == set(spec)
    for name, option in options.items():
        assert option["type"] == spec[name]["type"]
        assert option.get("default") == spec[name].get("default")


# How it is written


@pytest.mark.parametrize("umask", [0, 0o022, 0o277])
def test_missing_directories_are_made_0700_and_the_file_0600(tmp_path, umask):
    directory = str(tmp_path / "xdg" / "reclaim.docker")
    old_umask = os.umask(umask)  # the modes must not depend on the umask
    try:
        filled(directory)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(str(tmp_path / "xdg")).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(cache_path(directory)).st_mode) == 0o600


def test_an_existing_directory_is_left_as_it_is(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    filled(str(directory))
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o755


def test_written_atomically_with_no_temp_file_left(directory, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(_layer_cache.os, "fsync", lambda fd: calls.append(("fsync", fd)) or real_fsync(fd))
    monkeypatch.setattr(_layer_cache.os, "replace",
                        lambda src, dst, **fds: calls.append(("replace", fds)) or real_replace(src, dst, **fds))
    filled(directory)
    # The data reaches the disk before the rename, and the temp file is in the same directory (a rename, not a copy).
    assert [c[0] for c in calls][:2] == ["fsync", "replace"]
    assert calls[1][1]["src_dir_fd"] == calls[1][1]["dst_dir_fd"]
    assert os.listdir(directory) == [cache_file_name(ENGINE)]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(directory, monkeypatch):
    filled(directory)
    before = read(cache_path(directory))

    def fail(src, dst, **fds):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_layer_cache.os, "replace", fail)
    cache = LayerCache.for_engine(directory, ENGINE)
    cache.put(digest("new"), [BASE], [100])
    cache.save({IMAGE_A, IMAGE_B, IMAGE_C, digest("new")})  # does not raise
    one_problem(cache, "not written", "No space left on device")
    assert os.listdir(directory) == [cache_file_name(ENGINE)]
    assert read(cache_path(directory)) == before


@pytest.mark.parametrize("target", ["fsync", "create_temporary"])
def test_io_errors_while_writing_become_problems(directory, monkeypatch, target):
    def fail(*args, **kwargs):
        raise OSError(5, "Input/output error")

    if target == "fsync":
        monkeypatch.setattr(_layer_cache.os, "fsync", fail)
    else:
        monkeypatch.setattr(_host_files, "create_temporary", fail)
    cache = LayerCache.for_engine(directory, ENGINE)
    cache.put(IMAGE_A, [BASE], [1])
    cache.save({IMAGE_A})
    one_problem(cache, "not written", "Input/output error")
    assert os.listdir(directory) == []


def test_an_unwritable_directory_is_a_problem_not_an_exception(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    cache = LayerCache.for_engine(str(tmp_path / "file" / "cache"), ENGINE)
    assert cache.problems == []  # nothing to read: a missing file is no problem
    cache.put(IMAGE_A, [BASE], [1])
    cache.save({IMAGE_A})
    one_problem(cache, "not written", "Not a directory")


def test_a_read_only_directory_is_a_problem_not_an_exception(directory, monkeypatch):
    # Root writes through 0500, so the refusal a non-root user would get is simulated.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", os.path.join(directory, ".layers-x.tmp"))

    monkeypatch.setattr(_host_files, "create_temporary", refuse)
    cache = LayerCache.for_engine(directory, ENGINE)
    cache.put(IMAGE_A, [BASE], [1])
    cache.save({IMAGE_A})
    one_problem(cache, "not written", "Permission denied", directory)


def test_the_cache_goes_to_the_default_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = LayerCache.for_engine(None, ENGINE)
    assert cache.path == os.path.join(str(tmp_path / "xdg" / "reclaim.docker"), cache_file_name(ENGINE))
    cache.put(IMAGE_A, [BASE], [1])
    cache.save({IMAGE_A})
    assert os.path.isfile(cache.path)
    assert LayerCache.for_engine("", ENGINE).path == cache.path  # an empty layer_cache_dir is the default too


def test_a_disabled_cache_does_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = LayerCache(None)
    assert not cache.enabled
    assert cache.put(IMAGE_A, [BASE], [1]) is False
    assert cache.get(IMAGE_A) is None
    cache.save({IMAGE_A})
    assert cache.problems == [] and os.listdir(tmp_path) == []


# When it is trusted


def assert_ignored_and_untouched(directory, path, *words):
    """The file is not read (its valid entry is not served) and never written, whatever this run puts."""
    with open(path, "rb") as handle:
        before = handle.read()
    st_before = os.lstat(path)
    cache = LayerCache.for_engine(directory, ENGINE)
    problem = one_problem(cache, "ignored", "not be written", *words)
    assert cache.get(IMAGE_A) is None
    cache.put(IMAGE_B, [TOP], [3])
    cache.save({IMAGE_B})
    assert cache.problems == [problem]
    with open(path, "rb") as handle:
        assert handle.read() == before
    st_after = os.lstat(path)
    assert (st_after.st_ino, st_after.st_mtime_ns) == (st_before.st_ino, st_before.st_mtime_ns)
    assert os.listdir(directory) == [os.path.basename(path)]
    return problem


@as_root
def test_a_file_owned_by_another_user_is_ignored(directory):
    path = cache_path(directory)
    write_json(path, valid_data())
    os.chown(path, FOREIGN_UID, -1)
    assert_ignored_and_untouched(directory, path, f"owned by uid {FOREIGN_UID}")


@as_root
def test_a_directory_owned_by_another_user_is_ignored(directory):
    path = cache_path(directory)
    write_json(path, valid_data())
    os.chown(directory, FOREIGN_UID, -1)
    assert_ignored_and_untouched(directory, path, "directory", f"owned by uid {FOREIGN_UID}")


@as_root
def test_a_directory_someone_else_makes_before_the_save_is_not_written(directory):
    cache = LayerCache.for_engine(directory, ENGINE)  # no directory yet: nothing to distrust
    os.mkdir(directory, 0o700)
    os.chown(directory, FOREIGN_UID, -1)
    cache.put(IMAGE_A, [BASE], [1])
    cache.save({IMAGE_A})
    one_problem(cache, "not written", f"owned by uid {FOREIGN_UID}")
    assert os.listdir(directory) == []


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666, 0o622])
def test_a_file_others_can_write_is_ignored(directory, mode):
    path = cache_path(directory)
    write_json(path, valid_data())
    os.chmod(path, mode)
    assert_ignored_and_untouched(directory, path, "writable by group or others", f"{mode:04o}")


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777, 0o1777])
def test_a_directory_others_can_write_is_ignored(directory, mode):
    path = cache_path(directory)
    write_json(path, valid_data())
    os.chmod(directory, mode)
    assert_ignored_and_untouched(directory, path, "directory", "writable by group or others")


@pytest.mark.parametrize("mode", [0o644, 0o400, 0o640])
def test_others_reading_is_not_distrusted(directory, mode):
    path = cache_path(directory)
    write_json(path, valid_data())
    os.chmod(path, mode)
    cache = LayerCache.for_engine(directory, ENGINE)
    assert cache.problems == [] and cache.get(IMAGE_A) == ((BASE, MIDDLE), (100, 20))


def test_a_symlinked_file_is_ignored(directory, tmp_path):
    target = str(tmp_path / "elsewhere.json")
    write_json(target, valid_data())
    os.makedirs(directory, mode=0o700)
    os.symlink(target, cache_path(directory))
    assert_ignored_and_untouched(directory, cache_path(directory), "symbolic link")
    assert read(target) == valid_data()


def test_a_dangling_symlink_is_ignored_and_not_followed_on_write(directory, tmp_path):
    target = tmp_path / "would-be-created.json"
    os.makedirs(directory, mode=0o700)
    os.symlink(str(target), cache_path(directory))
    cache = LayerCache.for_engine(directory, ENGINE)
    one_problem(cache, "symbolic link")
    cache.put(IMAGE_A, [BASE], [1])
    cache.save({IMAGE_A})
    assert not target.exists() and os.path.islink(cache_path(directory))


def test_a_symlinked_directory_is_ignored(directory, tmp_path):
    real = str(tmp_path / "real")
    filled(real)
    os.symlink(real, directory)
    assert_ignored_and_untouched(directory, cache_path(directory), "directory", "symbolic link")


def test_a_symlink_swapped_in_after_the_check_is_not_followed(directory, tmp_path, monkeypatch):
    """O_NOFOLLOW: the lstat saw a regular file, the open meets a symbolic link."""
    target = str(tmp_path / "elsewhere.json")
    write_json(target, valid_data())
    os.makedirs(directory, mode=0o700)
    os.symlink(target, cache_path(directory))
    real_lstat = os.lstat
    monkeypatch.setattr(_layer_cache.os, "lstat",
                        lambda p: real_lstat(target) if p == cache_path(directory) else real_lstat(p))
    cache = LayerCache.for_engine(directory, ENGINE)
    one_problem(cache, "symbolic link", "not be written")
    assert cache.get(IMAGE_A) is None


def test_a_fifo_swapped_in_after_the_check_cannot_block_the_run(directory, tmp_path, monkeypatch):
    """O_NONBLOCK: the lstat saw a regular file, the open meets a FIFO that no one writes."""
    regular = str(tmp_path / "regular.json")
    write_json(regular, valid_data())
    os.makedirs(directory, mode=0o700)
    os.mkfifo(cache_path(directory), 0o600)
    real_lstat = os.lstat
    monkeypatch.setattr(_layer_cache.os, "lstat",
                        lambda p: real_lstat(regular) if p == cache_path(directory) else real_lstat(p))

    def blocked(signum, frame):
        raise AssertionError("opening the FIFO blocked")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(5)
    try:
        cache = LayerCache.for_engine(directory, ENGINE)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    one_problem(cache, "not a regular file", "not be written")


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_path_that_is_not_a_regular_file_is_ignored(directory, kind):
    os.makedirs(directory, mode=0o700)
    path = cache_path(directory)
    if kind == "fifo":
        os.mkfifo(path, 0o600)  # would block a plain open for reading
    else:
        os.mkdir(path, 0o700)
    cache = LayerCache.for_engine(directory, ENGINE)
    one_problem(cache, "not a regular file", "not be written")
    cache.put(IMAGE_A, [BASE], [1])
    cache.save({IMAGE_A})
    assert len(cache.problems) == 1


# When it is ignored whole and rebuilt


CORRUPT = {
    "not JSON": b'{"format": 2, ',
    "empty file": b"",
    "not UTF-8": b'{"format": 2, "engine_id": "\xff\xfe", "layers": {}, "images": {}}',
    "a list": [],
    "no format": {"engine_id": ENGINE, **NO_SECTIONS},
    "format 1": {**valid_data(), "format": 1},
    "format 3": {**valid_data(), "format": 3},
    "format 0": {**valid_data(), "format": 0},
    "format as text": {**valid_data(), "format": "2"},
    "format true": {**valid_data(), "format": True},
    "format 2.0": {**valid_data(), "format": 2.0},
    "another engine": {**valid_data(), "engine_id": "OTHER:ENGINE"},
    "no engine": {**valid_data(), "engine_id": None},
    "layers a list": {**valid_data(), "layers": [[BASE, 100]]},
    "images missing": {"format": 2, "engine_id": ENGINE, "layers": {}},
    "format 1's sections only": {"format": 2, "engine_id": ENGINE, "layers": {}, "images": {}},
    "negative size": {**valid_data(), "layers": {BASE: -1, MIDDLE: 20}},
    "fractional size": {**valid_data(), "layers": {BASE: 100.5, MIDDLE: 20}},
    "size as text": {**valid_data(), "layers": {BASE: "100", MIDDLE: 20}},
    "size true": {**valid_data(), "layers": {BASE: True, MIDDLE: 20}},
    "size null": {**valid_data(), "layers": {BASE: None, MIDDLE: 20}},
    "chain uppercase": {**valid_data(), "layers": {BASE.upper(): 100, MIDDLE: 20}},
    "chain short": {**valid_data(), "layers": {BASE[:-1]: 100, MIDDLE: 20}},
    "chain sha512": {**valid_data(), "layers": {"sha512:" + BASE[7:]: 100, MIDDLE: 20}},
    "chain no prefix": {**valid_data(), "layers": {BASE[7:] + "1234567": 100, MIDDLE: 20}},
    "image id not a digest": {**valid_data(), "images": {"abc": [BASE, MIDDLE]}},
    "image chains not a list": {**valid_data(), "images": {IMAGE_A: BASE}},
    "image chains an object": {**valid_data(), "images": {IMAGE_A: {BASE: 1}}},
    "chain of unknown size": {**valid_data(), "images": {IMAGE_A: [BASE, MIDDLE, TOP]}},
    "chain not text": {**valid_data(), "images": {IMAGE_A: [BASE, 7]}},
    "chain nested": {**valid_data(), "images": {IMAGE_A: [BASE, [MIDDLE]]}},
    "chain twice": {**valid_data(), "images": {IMAGE_A: [BASE, BASE]}},
    # One good entry next to a bad one: the good one is not trusted either.
    "half valid": {**valid_data(), "layers": {BASE: 100, MIDDLE: 20, TOP: -3},
                   "images": {IMAGE_A: [BASE, MIDDLE], IMAGE_B: [BASE, TOP]}},
    "half valid image": {**valid_data(), "images": {IMAGE_A: [BASE, MIDDLE], IMAGE_B: [BASE, OTHER]}},
    "blobs a list": {**valid_data(), "blobs": [[CONFIG_1, 7]]},
    "blob negative size": {**valid_data(), "blobs": {CONFIG_1: -7, BLOB_BASE: 90}},
    "blob not a digest": {**valid_data(), "blobs": {"config": 7, BLOB_BASE: 90}},
    "manifest of an unknown blob": {**valid_data(), "manifests": {MANIFEST_1: [CONFIG_1, BLOB_TOP]}},
    "manifest blobs not a list": {**valid_data(), "manifests": {MANIFEST_1: CONFIG_1}},
    "manifest blob twice": {**valid_data(), "manifests": {MANIFEST_1: [CONFIG_1, CONFIG_1]}},
    "image of an unknown manifest": {**valid_data(), "image_manifests": {IMAGE_A: [MANIFEST_2]}},
    "image manifests an object": {**valid_data(), "image_manifests": {IMAGE_A: {MANIFEST_1: 1}}},
    "image manifests of no digest": {**valid_data(), "image_manifests": {"abc": [MANIFEST_1]}},
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_a_corrupt_file_is_ignored_whole_and_rebuilt(directory, name):
    path = cache_path(directory)
    write_json(path, CORRUPT[name])
    cache = LayerCache.for_engine(directory, ENGINE)
    one_problem(cache, path, "ignored", "rebuilt")
    assert cache.get(IMAGE_A) is None and cache.get(IMAGE_B) is None
    cache.save(set())  # nothing put, nothing listed: the bad file is still replaced
    assert read(path) == {"format": CACHE_FORMAT, "engine_id": ENGINE, **NO_SECTIONS}
    cache.put(IMAGE_C, [OTHER], [5])
    cache.save({IMAGE_C})
    reloaded = LayerCache.for_engine(directory, ENGINE)
    assert reloaded.problems == [] and reloaded.get(IMAGE_C) == ((OTHER,), (5,))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_another_format_version_says_which(directory):
    write_json(cache_path(directory), {**valid_data(), "format": 1})
    one_problem(LayerCache.for_engine(directory, ENGINE), "format is 1", "reads format 2")


def test_deeply_nested_json_is_corrupt_not_a_crash(directory):
    write_json(cache_path(directory), b"[" * 100000 + b"]" * 100000)
    one_problem(LayerCache.for_engine(directory, ENGINE), "rebuilt")


def test_unused_layers_manifests_and_blobs_in_a_file_are_dropped_on_save(directory):
    write_json(cache_path(directory), {**valid_data(), "layers": {BASE: 100, MIDDLE: 20, TOP: 3},
                                       "blobs": {CONFIG_1: 7, BLOB_BASE: 90, CONFIG_2: 8},
                                       "manifests": {MANIFEST_1: [CONFIG_1, BLOB_BASE], MANIFEST_2: [CONFIG_2]}})
    cache = LayerCache.for_engine(directory, ENGINE)
    assert cache.problems == [] and cache.get(IMAGE_A) == ((BASE, MIDDLE), (100, 20))
    cache.save({IMAGE_A})
    data = read(cache_path(directory))
    assert data["layers"] == {BASE: 100, MIDDLE: 20}
    assert data["manifests"] == {MANIFEST_1: [CONFIG_1, BLOB_BASE]} and data["blobs"] == {CONFIG_1: 7, BLOB_BASE: 90}


# The containerd store's manifests


def test_manifests_round_trip_each_blob_once(directory):
    cache = LayerCache.for_engine(directory, ENGINE)
    assert cache.put_manifest(IMAGE_A, MANIFEST_1, [(CONFIG_1, 7), (BLOB_BASE, 90)])
    assert cache.put_manifest(IMAGE_B, MANIFEST_2, [(CONFIG_2, 8), (BLOB_BASE, 90), (BLOB_TOP, 3)])
    assert cache.put_manifest(IMAGE_B, MANIFEST_1, [(CONFIG_1, 7), (BLOB_BASE, 90)])  # an index listing both
    cache.save({IMAGE_A, IMAGE_B})
    data = read(cache_path(directory))
    assert data["blobs"] == {CONFIG_1: 7, BLOB_BASE: 90, CONFIG_2: 8, BLOB_TOP: 3}
    assert data["image_manifests"] == {IMAGE_A: [MANIFEST_1], IMAGE_B: [MANIFEST_2, MANIFEST_1]}
    reloaded = LayerCache.for_engine(directory, ENGINE)
    assert reloaded.get_manifest(MANIFEST_2) == ((CONFIG_2, 8), (BLOB_BASE, 90), (BLOB_TOP, 3))
    assert reloaded.get_manifest(digest("never seen")) is None
    assert reloaded.get(IMAGE_B) is None  # its layers were never put


def test_a_manifest_stays_while_an_image_lists_it(directory):
    cache = LayerCache.for_engine(directory, ENGINE)
    cache.put_manifest(IMAGE_A, MANIFEST_1, [(CONFIG_1, 7), (BLOB_BASE, 90)])
    cache.put_manifest(IMAGE_B, MANIFEST_1, [(CONFIG_1, 7), (BLOB_BASE, 90)])
    cache.save({IMAGE_B})
    assert read(cache_path(directory))["manifests"] == {MANIFEST_1: [CONFIG_1, BLOB_BASE]}
    cache.save(set())
    assert read(cache_path(directory))["blobs"] == {}


def test_a_layer_blob_listed_twice_is_one_blob(directory):
    cache = LayerCache.for_engine(directory, ENGINE)
    assert cache.put_manifest(IMAGE_A, MANIFEST_1, [(CONFIG_1, 7), (BLOB_BASE, 90), (BLOB_BASE, 90)])
    assert cache.get_manifest(MANIFEST_1) == ((CONFIG_1, 7), (BLOB_BASE, 90))
    cache.save({IMAGE_A})
    assert LayerCache.for_engine(directory, ENGINE).problems == []


@pytest.mark.parametrize("image_id, manifest, blobs", [
    ("abc", MANIFEST_1, [(CONFIG_1, 7)]),
    (IMAGE_A, "sha256:short", [(CONFIG_1, 7)]),
    (IMAGE_A, MANIFEST_1, []),
    (IMAGE_A, MANIFEST_1, [(CONFIG_1, -7)]),
    (IMAGE_A, MANIFEST_1, [(CONFIG_1, True)]),
    (IMAGE_A, MANIFEST_1, [("config", 7)]),
    (IMAGE_A, MANIFEST_1, [(CONFIG_1, 7, 1)]),
    (IMAGE_A, MANIFEST_1, [(CONFIG_1, 7), (CONFIG_1, 8)]),
])
def test_put_manifest_keeps_only_what_a_loaded_file_would_pass(directory, image_id, manifest, blobs):
    cache = LayerCache.for_engine(directory, ENGINE)
    assert cache.put_manifest(image_id, manifest, blobs) is False
    assert cache.get_manifest(manifest) is None


def test_an_unreadable_file_is_ignored_and_rebuilt(directory, monkeypatch):
    filled(directory)
    path = cache_path(directory)
    real_open = os.open

    def refuse(p, flags, *args):
        if p == path:
            raise PermissionError(13, "Permission denied", p)
        return real_open(p, flags, *args)

    monkeypatch.setattr(_layer_cache.os, "open", refuse)
    cache = LayerCache.for_engine(directory, ENGINE)
    one_problem(cache, "cannot be read", "Permission denied", "rebuilt")
    assert cache.get(IMAGE_A) is None
    monkeypatch.undo()
    cache.put(IMAGE_C, [OTHER], [0])
    cache.save({IMAGE_A, IMAGE_C})
    assert read(path)["images"] == {IMAGE_C: [OTHER]}


def test_a_read_error_is_a_problem_not_an_exception(directory, monkeypatch):
    filled(directory)
    real_fdopen = os.fdopen

    class Failing:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def fileno(self):
            return self.handle.fileno()

        def read(self):
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(_layer_cache.os, "fdopen", lambda fd, mode: Failing(real_fdopen(fd, mode)))
    cache = LayerCache.for_engine(directory, ENGINE)
    one_problem(cache, "cannot be read", "Input/output error")


def test_an_unexaminable_directory_is_a_problem_not_an_exception(directory, monkeypatch):
    real_lstat = os.lstat

    def refuse(p):
        if p == directory:
            raise PermissionError(13, "Permission denied", p)
        return real_lstat(p)

    monkeypatch.setattr(_layer_cache.os, "lstat", refuse)
    cache = LayerCache.for_engine(directory, ENGINE)
    one_problem(cache, "directory", "Permission denied", "not be written")


# The bulk digest check equals the one-by-one check


def test_all_digests_on_values_that_line_up_when_joined():
    first, second = BASE[7:], MIDDLE[7:]
    # Joined, these two read exactly as two valid digests: each value's length must be checked too.
    values = ["sha256:" + first + "s", "ha256:" + second]
    assert "".join(values) == BASE[:7] + first + "sha256:" + second
    assert _layer_cache._all_digests(values) is False
    assert _layer_cache._all_digests([BASE, MIDDLE]) is True
    assert _layer_cache._all_digests([]) is True


MUTATIONS = st.sampled_from(["", "s", "a", "A", ":", "0", "é", "\n", "\x00", "sha256:", "g", "f" * 64])


@given(st.lists(st.tuples(st.integers(0, 70), st.integers(0, 2), MUTATIONS), max_size=6), st.integers(1, 5))
def test_all_digests_equals_the_regular_expression(edits, count):
    values = [digest(str(n)) for n in range(count)]
    for position, how, text in edits:
        index = position % count
        value = values[index]
        at = position % (len(value) + 1)
        if how == 0:  # insert
            value = value[:at] + text + value[at:]
        elif how == 1:  # replace one character
            value = value[:at] + text + value[at + 1:]
        else:  # delete one character
            value = value[:at] + value[at + 1:]
        values[index] = value
    assert _layer_cache._all_digests(values) == all(_layer_cache._is_digest(v) for v in values)
