# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The host's files of the collection, kept per engine on the host that runs the modules (the layer cache, the lock,
the usage ledger): their default directory, their names, when one can be trusted, how one is made and replaced.

Standard library only, Python 3.9 and later (the usage tracker service runs it too).
"""

from __future__ import annotations

import hashlib
import os
import stat

CACHE_DIR_NAME = "reclaim.docker"
# Group or others may write: such a file or directory is not trusted.
UNSAFE_MODE_BITS = stat.S_IWGRP | stat.S_IWOTH
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
# A directory opened for the calls that take dir_fd; O_NOFOLLOW: a symbolic link in its place fails with ELOOP.
DIRECTORY_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def default_cache_dir(environ=None):
    """$XDG_CACHE_HOME/reclaim.docker, or ~/.cache/reclaim.docker when XDG_CACHE_HOME is unset, empty or relative
    (the XDG Base Directory specification says to ignore a relative path)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        home = environ.get("HOME") or os.path.expanduser("~")
        base = os.path.join(home, ".cache")
    return os.path.join(base, CACHE_DIR_NAME)


def engine_digest(engine_id):
    """16 hex digits naming ENGINE_ID (which may hold ':' and any other character) in file names: a digest of it.
    The engine's files on the host (the layer cache, the lock, the usage ledger) are named by it."""
    return hashlib.sha256(engine_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def why_distrusted(st, directory):
    """Why a file or directory with lstat ST must not be trusted (the end of a sentence), or None."""
    euid = os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if directory and not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if not directory and not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != euid:
        return f"is owned by uid {st.st_uid}, not by uid {euid} that runs the module"
    if st.st_mode & UNSAFE_MODE_BITS:
        return f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def make_dirs(directory):
    """Create DIRECTORY and any missing parent 0700, as the XDG Base Directory specification asks (an existing
    one is left as it is: the caller checks DIRECTORY itself)."""
    missing = []
    path = os.path.abspath(directory)
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue  # made by a concurrent run; checked by the caller like any existing directory
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask


def write_atomically(path, text, temp_prefix, dir_fd=None, owner=None):
    """Replace PATH by TEXT whole: a 0600 temporary file (TEMP_PREFIX) beside it, synced and renamed over it. With
    DIR_FD, PATH is a name in that open directory, so that no path is looked up again (a directory swapped for a
    symbolic link since it was checked is not followed). OWNER, (uid, gid): the file is given to them before the
    rename (root writing a file that belongs to another user)."""
    if dir_fd is None:
        dir_fd = os.open(os.path.dirname(path) or os.curdir, DIRECTORY_FLAGS)
        try:
            write_atomically(os.path.basename(path), text, temp_prefix, dir_fd, owner)
        finally:
            os.close(dir_fd)
        return
    fd, temp = create_temporary(dir_fd, temp_prefix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(fd, 0o600)  # the mode given to open is masked by the umask
            if owner is not None:
                os.fchown(fd, *owner)
            handle.write(text)
            handle.flush()
            os.fsync(fd)
        # Both names in the same directory: a rename, never a copy.
        os.replace(temp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(temp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
    try:
        os.fsync(dir_fd)  # makes the rename durable; best effort (not every filesystem can fsync a directory)
    except OSError:
        pass


def create_temporary(dir_fd, prefix):
    """(fd, name) of a new file PREFIX<random>.tmp in the directory DIR_FD, made with O_EXCL as mkstemp makes it
    (mkstemp takes no directory descriptor)."""
    while True:
        name = f"{prefix}{os.urandom(8).hex()}.tmp"
        try:
            return os.open(name, CREATE_FLAGS, 0o600, dir_fd=dir_fd), name
        except FileExistsError:
            continue


def os_error_text(exc):
    """An OSError in words: its message, and the path it is about when there is one."""
    if not exc.strerror:
        return str(exc)
    return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
