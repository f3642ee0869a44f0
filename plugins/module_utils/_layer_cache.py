# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""What each image ID holds (its layer chain IDs and their sizes), kept between runs in a file on the host that runs
the module, one file per engine (see the _layer_cache doc fragment).

An image ID is the digest of the image's config, so what it holds never changes: entries never expire, they are
dropped when their image is gone. The byte counts steer budget evictions, so the cache is trusted only when nobody
but its owner (the user running the module) can write it, and only whole: a file that is not exactly what this code
writes is ignored and written anew. Losing the cache costs only the per-image calls it saves, so no error of the
cache ever fails a run: each one is stated in `problems` for the module to warn about.

Standard library only, Python 3.9 and later (it runs on the Docker host's Python).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import tempfile

CACHE_FORMAT = 1
CACHE_DIR_NAME = "reclaim.docker"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
DIGEST_PREFIX = "sha256:"
DIGEST_LENGTH = len(DIGEST_PREFIX) + 64
HEX_DIGITS = b"0123456789abcdef"
_PREFIX_NOT_HEX = DIGEST_PREFIX.encode("ascii").translate(None, HEX_DIGITS)  # b"sh:"
# Group or others may write: such a file or directory is not trusted.
UNSAFE_MODE_BITS = stat.S_IWGRP | stat.S_IWOTH
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def default_cache_dir(environ=None):
    """$XDG_CACHE_HOME/reclaim.docker, or ~/.cache/reclaim.docker when XDG_CACHE_HOME is unset, empty or relative
    (the XDG Base Directory specification says to ignore a relative path)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        home = environ.get("HOME") or os.path.expanduser("~")
        base = os.path.join(home, ".cache")
    return os.path.join(base, CACHE_DIR_NAME)


def layer_cache_argument_spec():
    """The layer cache options of the modules that read layers (see the _layer_cache doc fragment)."""
    return dict(
        layer_cache=dict(type="bool", default=True),
        layer_cache_dir=dict(type="path"),
    )


def cache_file_name(engine_id):
    """A safe file name for ENGINE_ID (which may hold ':' and any other character): a digest of it."""
    return "layers-" + hashlib.sha256(engine_id.encode("utf-8", "surrogatepass")).hexdigest()[:16] + ".json"


class _Corrupt(Exception):
    """The file is not what this code writes; the message says why, as the end of a sentence."""


class LayerCache:
    """What each image ID holds: its layer chain IDs (bottom first) and each layer's size, one file per engine.

    Loaded when made; get() and put() work in memory; save() writes the file when something changed. A disabled
    cache (path None) gets nothing and writes nothing. Nothing here raises OSError: `problems` says, one sentence
    each, why the file was ignored or not written.
    """

    def __init__(self, path, engine_id=None):
        self.path = path
        self.engine_id = engine_id
        self.problems = []
        self._layers = {}  # chain ID -> size in bytes
        self._images = {}  # image ID -> [chain ID, ...], bottom layer first
        self._writable = path is not None
        self._changed = False
        if path is not None:
            self._load()

    @classmethod
    def for_engine(cls, directory, engine_id):
        """The cache of the engine with ID ENGINE_ID (/info "ID") in DIRECTORY, or in default_cache_dir() when
        DIRECTORY is None or empty. An engine that gives no ID gets a disabled cache (with a problem)."""
        if not isinstance(engine_id, str) or not engine_id:
            cache = cls(None)
            cache.problems.append(f"The layer cache is not used: the engine gives no ID to name it by ({engine_id!r}).")
            return cache
        return cls(os.path.join(directory or default_cache_dir(), cache_file_name(engine_id)), engine_id)

    @property
    def enabled(self):
        return self.path is not None

    def get(self, image_id):
        """(chain IDs, sizes), two tuples of the same length, bottom layer first; None when IMAGE_ID is not cached."""
        chains = self._images.get(image_id)
        if chains is None:
            return None
        layers = self._layers
        return tuple(chains), tuple(layers[chain] for chain in chains)

    def put(self, image_id, chains, sizes):
        """Remember what IMAGE_ID holds, as read from the engine. Returns whether it is cached: values that a
        loaded file would not pass (an ID not 'sha256:' and 64 hex digits, a size not a non-negative int, lengths
        that differ, a chain ID twice) are not kept, so one bad read can never make the whole file rejected."""
        if self.path is None:
            return False
        chains = list(chains)
        sizes = list(sizes)
        if not (_is_digest(image_id) and len(chains) == len(sizes) and all(_is_digest(chain) for chain in chains)
                and len(set(chains)) == len(chains) and all(_is_size(size) for size in sizes)):
            return False
        layers = self._layers
        for chain, size in zip(chains, sizes):
            if layers.get(chain) != size:
                layers[chain] = size
                self._changed = True
        if self._images.get(image_id) != chains:
            self._images[image_id] = chains
            self._changed = True
        return True

    def save(self, existing_image_ids):
        """Drop the entries of images not in EXISTING_IMAGE_IDS and the layers no entry uses, then write the file
        if anything changed since it was read: atomically, owner-only. Never raises OSError."""
        if self.path is None or not self._writable:
            return
        existing = existing_image_ids if isinstance(existing_image_ids, (set, frozenset, dict)) \
            else set(existing_image_ids)
        gone = [image_id for image_id in self._images if image_id not in existing]
        for image_id in gone:
            del self._images[image_id]
        used = set()
        for chains in self._images.values():
            used.update(chains)
        if len(used) != len(self._layers):
            self._layers = {chain: size for chain, size in self._layers.items() if chain in used}
        elif not gone and not self._changed:
            return
        try:
            self._write()
        except OSError as exc:
            self.problems.append(f"The layer cache {self.path} was not written: {_reason(exc)}.")
            return
        self._changed = False

    # Reading

    def _ignore(self, reason, rebuild):
        """Ignore the file whole. REBUILD: write it anew on save (it is ours but unusable); otherwise never touch it
        (someone else could write it)."""
        if rebuild:
            self.problems.append(f"The layer cache {self.path} was ignored and will be rebuilt: {reason}.")
            self._changed = True
        else:
            self.problems.append(f"The layer cache {self.path} was ignored and will not be written: {reason}.")
            self._writable = False
        self._layers = {}
        self._images = {}

    def _load(self):
        directory = os.path.dirname(self.path) or os.curdir
        try:
            distrust = _distrust(os.lstat(directory), directory=True)
        except (FileNotFoundError, NotADirectoryError):
            return  # nothing cached yet: save() creates the directory, or says why it cannot
        except OSError as exc:
            distrust = f"cannot be examined ({_reason(exc)})"
        if distrust:
            self._ignore(f"its directory {directory} {distrust}", rebuild=False)
            return
        try:
            distrust = _distrust(os.lstat(self.path), directory=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            self._ignore(f"it cannot be examined ({_reason(exc)})", rebuild=True)
            return
        if distrust:
            self._ignore("it " + distrust, rebuild=False)
            return
        try:
            # O_NOFOLLOW: a symbolic link put there since the lstat fails (ELOOP) instead of being followed;
            # O_NONBLOCK: nor can a FIFO put there block the run (fstat then tells it is not a regular file).
            fd = os.open(self.path, _OPEN_FLAGS)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._ignore("it is a symbolic link", rebuild=False)
            else:
                self._ignore(f"it cannot be read ({_reason(exc)})", rebuild=True)
            return
        try:
            with os.fdopen(fd, "rb") as handle:
                distrust = _distrust(os.fstat(handle.fileno()), directory=False)
                if distrust:
                    self._ignore("it " + distrust, rebuild=False)
                    return
                raw = handle.read()
        except OSError as exc:
            self._ignore(f"it cannot be read ({_reason(exc)})", rebuild=True)
            return
        try:
            self._layers, self._images = self._parse(raw)
        except _Corrupt as exc:
            self._ignore(str(exc), rebuild=True)

    def _parse(self, raw):
        """The layers and images of RAW, checked whole; _Corrupt if any part is not what save() writes."""
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise _Corrupt(f"it is not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise _Corrupt("it is not a JSON object")
        version = data.get("format")
        if not _is_int(version) or version != CACHE_FORMAT:
            raise _Corrupt(f"its format is {version!r}, this collection reads format {CACHE_FORMAT}")
        if self.engine_id is not None and data.get("engine_id") != self.engine_id:
            raise _Corrupt(f"it is for engine {data.get('engine_id')!r}, not {self.engine_id!r}")
        layers = data.get("layers")
        images = data.get("images")
        if not isinstance(layers, dict) or not isinstance(images, dict):
            raise _Corrupt("'layers' and 'images' are not both JSON objects")
        if not _all_digests(layers):
            chain = next(chain for chain in layers if not _is_digest(chain))
            raise _Corrupt(f"layer {_brief(chain)} is not named by a digest")
        for chain, size in layers.items():
            if not _is_size(size):
                raise _Corrupt(f"layer {chain} has size {_brief(size)}, not a non-negative integer")
        if not _all_digests(images):
            image_id = next(image_id for image_id in images if not _is_digest(image_id))
            raise _Corrupt(f"image {_brief(image_id)} is not named by a digest")
        for image_id, chains in images.items():
            if not isinstance(chains, list):
                raise _Corrupt(f"image {image_id} holds {_brief(chains)}, not a list of layers")
            try:
                distinct = set(chains)
            except TypeError:  # an unhashable element: a list or an object
                raise _Corrupt(f"image {image_id} holds {_brief(chains)}, not a list of layers") from None
            # layers.keys() >= distinct looks each element up in the dict (set.issubset(keys) would copy the keys).
            if len(distinct) != len(chains) or not layers.keys() >= distinct:
                raise _Corrupt(f"image {image_id} holds {_brief(chains)}, not distinct layers of known size")
        return layers, images

    # Writing

    def _write(self):
        directory = os.path.dirname(self.path) or os.curdir
        _make_dirs(directory)
        distrust = _distrust(os.lstat(directory), directory=True)
        if distrust:
            # Missing when the file was loaded, and made by someone else since: never write into it.
            self._writable = False
            raise OSError(errno.EPERM, f"its directory {directory} {distrust}")
        text = json.dumps({"format": CACHE_FORMAT, "engine_id": self.engine_id, "layers": self._layers,
                           "images": self._images}, separators=(",", ":"))
        # mkstemp makes the file with O_EXCL, in the same directory so that os.replace is a rename.
        fd, temp = tempfile.mkstemp(prefix=".layers-", suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, 0o600)  # mkstemp's 0600 is masked by the umask
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
        _fsync_dir(directory)


def _all_digests(values):
    """Whether each of VALUES is a str of 'sha256:' and 64 lowercase hex digits, as DIGEST matches, checked in a
    few passes in C over all of them at once (a match per value took 6 of the 17 ms of loading 16,000 layers)."""
    values = list(values)
    count = len(values)
    if not count:
        return True
    if set(map(type, values)) != {str} or set(map(len, values)) != {DIGEST_LENGTH}:
        return False
    joined = "".join(values)
    # Each value's prefix in place (every value is DIGEST_LENGTH long, so value k starts at k * DIGEST_LENGTH),
    if any(joined[i::DIGEST_LENGTH] != char * count for i, char in enumerate(DIGEST_PREFIX)):
        return False
    # and nothing else but hex digits: once they are deleted, only the prefixes' non-hex letters remain.
    return joined.encode("ascii", "replace").translate(None, HEX_DIGITS) == _PREFIX_NOT_HEX * count


def _is_digest(value):
    return isinstance(value, str) and DIGEST.match(value) is not None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is no number


def _is_size(value):
    return _is_int(value) and value >= 0


def _distrust(st, directory):
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


def _make_dirs(directory):
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


def _fsync_dir(directory):
    """Make the rename durable; best effort (not every platform or filesystem can fsync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _reason(exc):
    """An OSError in words: its message, and the path it is about when there is one."""
    if not exc.strerror:
        return str(exc)
    return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror


def _brief(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
