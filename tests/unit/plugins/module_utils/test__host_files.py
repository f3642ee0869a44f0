"""The host's files: their default directory and names, the trust rule, how they are made and replaced."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.reclaim.docker.plugins.module_utils._host_files import (
    default_cache_dir,
    engine_digest,
    make_dirs,
    os_error_text,
    why_distrusted,
    write_atomically,
)

FOREIGN_UID = 12345
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another uid needs root")


def test_default_cache_dir():
    assert default_cache_dir({"XDG_CACHE_HOME": "/x/cache", "HOME": "/home/u"}) == "/x/cache/reclaim.docker"
    assert default_cache_dir({"HOME": "/home/u"}) == "/home/u/.cache/reclaim.docker"
    # The XDG Base Directory specification: an empty or relative value is ignored.
    assert default_cache_dir({"XDG_CACHE_HOME": "", "HOME": "/home/u"}) == "/home/u/.cache/reclaim.docker"
    assert default_cache_dir({"XDG_CACHE_HOME": "cache", "HOME": "/home/u"}) == "/home/u/.cache/reclaim.docker"


def test_default_cache_dir_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == str(tmp_path / "xdg" / "reclaim.docker")


def test_engine_digest_names_any_engine_id_in_a_file_name():
    name = engine_digest("ABCD:EFGH:IJKL/../\x00 é")
    assert len(name) == 16 and set(name) <= set("0123456789abcdef")
    assert engine_digest("a") == engine_digest("a") != engine_digest("b")


def test_what_is_trusted(tmp_path):
    own = tmp_path / "own"
    own.write_text("x")
    own.chmod(0o644)
    assert why_distrusted(os.lstat(own), directory=False) is None
    assert why_distrusted(os.lstat(tmp_path), directory=True) is None
    own.chmod(0o664)
    assert why_distrusted(os.lstat(own), directory=False) == "is writable by group or others (mode 0664)"
    (tmp_path / "link").symlink_to(own)
    assert why_distrusted(os.lstat(tmp_path / "link"), directory=False) == "is a symbolic link"
    assert why_distrusted(os.lstat(own), directory=True) == "is not a directory"
    assert why_distrusted(os.lstat(tmp_path), directory=False) == "is not a regular file"


@as_root
def test_a_file_of_another_user_is_not_trusted(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.write_text("x")
    os.chown(foreign, FOREIGN_UID, FOREIGN_UID)
    assert why_distrusted(os.lstat(foreign), directory=False) == f"is owned by uid {FOREIGN_UID}, not by uid 0 that runs the module"


def test_make_dirs_makes_missing_parents_owner_only(tmp_path):
    os.umask(0o022)
    make_dirs(str(tmp_path / "a" / "b"))
    for path in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700
    (tmp_path / "c").mkdir(mode=0o755)
    make_dirs(str(tmp_path / "c"))  # an existing one is left as it is
    assert stat.S_IMODE(os.lstat(tmp_path / "c").st_mode) == 0o755


def test_write_atomically_replaces_the_file_whole_and_owner_only(tmp_path):
    target = tmp_path / "f.json"
    target.write_text("old")
    write_atomically(str(target), "new", ".f-")
    assert target.read_text() == "new" and stat.S_IMODE(os.lstat(target).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["f.json"]  # no temporary file left


@as_root
def test_write_atomically_gives_the_file_to_its_owner(tmp_path):
    target = tmp_path / "f.json"
    write_atomically(str(target), "x", ".f-", owner=(FOREIGN_UID, FOREIGN_UID))
    assert os.lstat(target).st_uid == FOREIGN_UID


def test_reason_says_what_and_where():
    assert os_error_text(OSError(13, "Permission denied", "/x")) == "Permission denied: /x"
    assert os_error_text(OSError(28, "No space left on device")) == "No space left on device"
    assert os_error_text(OSError("no errno")) == "no errno"
