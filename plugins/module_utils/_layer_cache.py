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
import json
import os
import re

from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec
from ansible_collections.reclaim.docker.plugins.module_utils._host_files import (
    OPEN_FLAGS,
    default_cache_dir,
    engine_digest,
    make_dirs,
    os_error_text,
    why_distrusted,
    write_atomically,
)

# 2: blobs, manifests and image_manifests (the containerd store's content) next to layers and images.
CACHE_FORMAT = 2
DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
DIGEST_PREFIX = "sha256:"
DIGEST_LENGTH = len(DIGEST_PREFIX) + 64
HEX_DIGITS = b"0123456789abcdef"
_PREFIX_NOT_HEX = DIGEST_PREFIX.encode("ascii").translate(None, HEX_DIGITS)  # b"sh:"


def layer_cache_argument_spec():
    """The layer cache options of the modules that read layers (see the _layer_cache doc fragment)."""
    return ArgumentSpec(dict(
        layer_cache=dict(type="bool", default=True),
        layer_cache_dir=dict(type="path"),
    ))


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
            self.problems.append(f"The layer cache {self.path} was not written: {os_error_text(exc)}.")
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
            distrust = why_distrusted(os.lstat(directory), directory=True)
        except (FileNotFoundError, NotADirectoryError):
            return  # nothing cached yet: save() creates the directory, or says why it cannot
        except OSError as exc:
            distrust = f"cannot be examined ({os_error_text(exc)})"
        if distrust:
            self._ignore(f"its directory {directory} {distrust}", rebuild=False)
            return
        try:
            distrust = why_distrusted(os.lstat(self.path), directory=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            self._ignore(f"it cannot be examined ({os_error_text(exc)})", rebuild=True)
            return
        if distrust:
            self._ignore("it " + distrust, rebuild=False)
            return
        try:
            # O_NOFOLLOW: a symbolic link put there since the lstat fails (ELOOP) instead of being followed;
            # O_NONBLOCK: nor can a FIFO put there block the run (fstat then tells it is not a regular file).
            fd = os.open(self.path, OPEN_FLAGS)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._ignore("it is a symbolic link", rebuild=False)
            else:
                self._ignore(f"it cannot be read ({os_error_text(exc)})", rebuild=True)
            return
        try:
            with os.fdopen(fd, "rb") as handle:
                distrust = why_distrusted(os.fstat(handle.fileno()), directory=False)
                if distrust:
                    self._ignore("it " + distrust, rebuild=False)
                    return
                raw = handle.read()
        except OSError as exc:
            self._ignore(f"it cannot be read ({os_error_text(exc)})", rebuild=True)
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
        make_dirs(directory)
        distrust = why_distrusted(os.lstat(directory), directory=True)
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


def _brief(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
