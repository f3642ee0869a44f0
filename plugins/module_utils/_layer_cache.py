# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""What each image ID holds (its layer chain IDs and their sizes; on the containerd store also the platform manifests
read, each with the digests and sizes of the blobs it names), kept between runs in a file on the host that runs the
module, one file per engine (see the _layer_cache doc fragment).

An image ID is the digest of the image's config (of its manifest or index on the containerd store), so its layers
never change, and a manifest's blobs never change for its digest: entries never expire, they are dropped when their
image is gone. The byte counts steer budget evictions, so the cache is trusted only when nobody
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

# 2: blobs, manifests and image_manifests (the containerd store's content) next to layers and images.
CACHE_FORMAT = 2
CACHE_DIR_NAME = "reclaim.docker"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
DIGEST_PREFIX = "sha256:"
DIGEST_LENGTH = len(DIGEST_PREFIX) + 64
HEX_DIGITS = b"0123456789abcdef"
_PREFIX_NOT_HEX = DIGEST_PREFIX.encode("ascii").translate(None, HEX_DIGITS)  # b"sh:"
# Group or others may write: such a file or directory is not trusted.
UNSAFE_MODE_BITS = stat.S_IWGRP | stat.S_IWOTH
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
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


def layer_cache_argument_spec():
    """The layer cache options of the modules that read layers (see the _layer_cache doc fragment)."""
    return dict(
        layer_cache=dict(type="bool", default=True),
        layer_cache_dir=dict(type="path"),
    )


def engine_digest(engine_id):
    """16 hex digits naming ENGINE_ID (which may hold ':' and any other character) in file names: a digest of it.
    The engine's files on the host (this cache, the lock of _lock.py) are named by it."""
    return hashlib.sha256(engine_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def cache_file_name(engine_id):
    """A safe file name for ENGINE_ID's cache."""
    return "layers-" + engine_digest(engine_id) + ".json"


class _Corrupt(Exception):
    """The file is not what this code writes; the message says why, as the end of a sentence."""


class LayerCache:
    """What each image ID holds: its layer chain IDs (bottom first) and each layer's size, and the platform manifests
    read for it with the blobs each names (the containerd store), one file per engine.

    Loaded when made; get(), put(), get_manifest() and put_manifest() work in memory; save() writes the file when something changed. A disabled
    cache (path None) gets nothing and writes nothing. Nothing here raises OSError: `problems` says, one sentence
    each, why the file was ignored or not written.
    """

    def __init__(self, path, engine_id=None):
        self.path = path
        self.engine_id = engine_id
        self.problems = []
        self._layers = {}  # chain ID -> size in bytes
        self._images = {}  # image ID -> [chain ID, ...], bottom layer first
        self._blobs = {}  # content blob digest -> size in bytes
        self._manifests = {}  # manifest digest -> [blob digest, ...], config first, then layers
        self._image_manifests = {}  # image ID -> [manifest digest, ...] read for it
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

    def get_manifest(self, manifest_digest):
        """The blobs a manifest names, ((digest, size), ...) config first; None when it is not cached."""
        digests = self._manifests.get(manifest_digest)
        if digests is None:
            return None
        blobs = self._blobs
        return tuple((digest, blobs[digest]) for digest in digests)

    def put_manifest(self, image_id, manifest_digest, blobs):
        """Remember that IMAGE_ID lists MANIFEST_DIGEST, which names BLOBS ((digest, size) pairs, config first), as
        read from the content store. Returns whether it is cached: values a loaded file would not pass are not kept."""
        if self.path is None:
            return False
        blobs = [tuple(blob) for blob in blobs]
        if not (_is_digest(image_id) and _is_digest(manifest_digest) and blobs
                and all(len(blob) == 2 and _is_digest(blob[0]) and _is_size(blob[1]) for blob in blobs)
                and all(self._blobs.get(digest, size) == size for digest, size in blobs)
                and len(dict(blobs)) == len(set(blobs))):  # one size per digest
            return False
        digests = list(dict.fromkeys(digest for digest, _size in blobs))  # a layer listed twice is one blob
        for digest, size in blobs:
            if digest not in self._blobs:
                self._blobs[digest] = size
                self._changed = True
        if self._manifests.get(manifest_digest) != digests:
            self._manifests[manifest_digest] = digests
            self._changed = True
        listed = self._image_manifests.setdefault(image_id, [])
        if manifest_digest not in listed:
            listed.append(manifest_digest)
            self._changed = True
        return True

    def save(self, existing_image_ids):
        """Drop the entries of images not in EXISTING_IMAGE_IDS and the layers, manifests and blobs no entry uses,
        then write the file if anything changed since it was read: atomically, owner-only. Never raises OSError."""
        if self.path is None or not self._writable:
            return
        existing = existing_image_ids if isinstance(existing_image_ids, (set, frozenset, dict)) \
            else set(existing_image_ids)
        gone = [image_id for image_id in self._images if image_id not in existing]
        gone += [image_id for image_id in self._image_manifests if image_id not in existing]
        for image_id in gone:
            self._images.pop(image_id, None)
            self._image_manifests.pop(image_id, None)
        used = set()
        for chains in self._images.values():
            used.update(chains)
        used_manifests = set()
        for manifests in self._image_manifests.values():
            used_manifests.update(manifests)
        used_blobs = set()
        for manifest_digest in used_manifests:
            used_blobs.update(self._manifests[manifest_digest])
        kept = (len(used), len(used_manifests), len(used_blobs))
        unused = kept != (len(self._layers), len(self._manifests), len(self._blobs))
        if unused:
            self._layers = {chain: size for chain, size in self._layers.items() if chain in used}
            self._manifests = {m: blobs for m, blobs in self._manifests.items() if m in used_manifests}
            self._blobs = {blob: size for blob, size in self._blobs.items() if blob in used_blobs}
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
        self._blobs = {}
        self._manifests = {}
        self._image_manifests = {}

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
            self._layers, self._images, self._blobs, self._manifests, self._image_manifests = self._parse(raw)
        except _Corrupt as exc:
            self._ignore(str(exc), rebuild=True)

    def _parse(self, raw):
        """The layers, images, blobs, manifests and image manifests of RAW, checked whole; _Corrupt if any part is not
        what save() writes."""
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
        sections = [data.get(name) for name in _SECTIONS]
        if not all(isinstance(section, dict) for section in sections):
            raise _Corrupt(f"{', '.join(repr(name) for name in _SECTIONS)} are not all JSON objects")
        layers, images, blobs, manifests, image_manifests = sections
        _check_sizes(layers, "layer")
        _check_sizes(blobs, "blob")
        _check_lists(images, "image", "layers", layers)
        _check_lists(manifests, "manifest", "blobs", blobs)
        _check_lists(image_manifests, "image", "manifests", manifests)
        return layers, images, blobs, manifests, image_manifests

    # Writing

    def _write(self):
        directory = os.path.dirname(self.path) or os.curdir
        _make_dirs(directory)
        distrust = _distrust(os.lstat(directory), directory=True)
        if distrust:
            # Missing when the file was loaded, and made by someone else since: never write into it.
            self._writable = False
            raise OSError(errno.EPERM, f"its directory {directory} {distrust}")
        sections = (self._layers, self._images, self._blobs, self._manifests, self._image_manifests)
        text = json.dumps(dict({"format": CACHE_FORMAT, "engine_id": self.engine_id}, **dict(zip(_SECTIONS, sections))),
                          separators=(",", ":"))
        write_atomically(self.path, text, ".layers-")


_SECTIONS = ("layers", "images", "blobs", "manifests", "image_manifests")


def _check_sizes(sizes, what):
    """SIZES maps digests to sizes: _Corrupt naming the first entry that does not."""
    if not _all_digests(sizes):
        key = next(key for key in sizes if not _is_digest(key))
        raise _Corrupt(f"{what} {_brief(key)} is not named by a digest")
    for key, size in sizes.items():
        if not _is_size(size):
            raise _Corrupt(f"{what} {key} has size {_brief(size)}, not a non-negative integer")


def _check_lists(lists, what, items, known):
    """LISTS maps digests to lists of distinct keys of KNOWN: _Corrupt naming the first entry that does not."""
    if not _all_digests(lists):
        key = next(key for key in lists if not _is_digest(key))
        raise _Corrupt(f"{what} {_brief(key)} is not named by a digest")
    for key, values in lists.items():
        if not isinstance(values, list):
            raise _Corrupt(f"{what} {key} holds {_brief(values)}, not a list of {items}")
        try:
            distinct = set(values)
        except TypeError:  # an unhashable element: a list or an object
            raise _Corrupt(f"{what} {key} holds {_brief(values)}, not a list of {items}") from None
        # known.keys() >= distinct looks each element up in the dict (set.issubset(keys) would copy the keys).
        if len(distinct) != len(values) or not known.keys() >= distinct:
            raise _Corrupt(f"{what} {key} holds {_brief(values)}, not distinct {items} named in the file")


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
    fd, temp = _create_temporary(dir_fd, temp_prefix)
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


def _create_temporary(dir_fd, prefix):
    """(fd, name) of a new file PREFIX<random>.tmp in the directory DIR_FD, made with O_EXCL as mkstemp makes it
    (mkstemp takes no directory descriptor)."""
    while True:
        name = f"{prefix}{os.urandom(8).hex()}.tmp"
        try:
            return os.open(name, _CREATE_FLAGS, 0o600, dir_fd=dir_fd), name
        except FileExistsError:
            continue


def _reason(exc):
    """An OSError in words: its message, and the path it is about when there is one."""
    if not exc.strerror:
        return str(exc)
    return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror


def _brief(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
