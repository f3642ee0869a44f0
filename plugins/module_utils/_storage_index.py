# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""What the engine's own metadata says each storage directory under Docker's root dir holds, read from its files.

- overlay2: the layer database (image/overlay2/layerdb) names each layer's directory (sha256/<chain>/cache-id) and
  each container's writable and init layers (mounts/<container>/mount-id, init-id); a `<chain>-<random>-removing`
  entry is a layer whose deletion did not finish (the engine renames the entry first, then deletes the directory, then
  the entry). BuildKit's snapshots (buildkit/snapshots.db) are overlay2 directories too.
- containerd (dockerd's own, under <root>/containerd/daemon): the overlayfs snapshotter's metadata.db gives each
  snapshots/<n> directory its key; containerd's meta.db names, per namespace, the snapshots (their key in the
  snapshotter) and the content blobs it holds.

The result is an index: for every directory or blob the metadata names, the category of what holds it, and the
leftovers the metadata itself shows (`-removing` entries and the directories they name, snapshots no namespace
names). Anything under those stores that the index does not name is referenced by nothing the engine
knows. A source that cannot be read leaves the index incomplete, with the reason: then nothing may be called leaked.

Standard library only, Python 3.9 and later (it runs on the Docker host's Python).
"""

from __future__ import annotations

import json
import os

from ansible_collections.reclaim.docker.plugins.module_utils import _bbolt

OVERLAY2 = "overlay2"
LAYERDB = ("image", OVERLAY2, "layerdb")
REMOVING_SUFFIX = "-removing"
BUILDKIT_SNAPSHOTS = ("buildkit", "snapshots.db")
CONTAINERD = ("containerd", "daemon")
SNAPSHOTTER = CONTAINERD + ("io.containerd.snapshotter.v1.overlayfs",)
SNAPSHOTS = SNAPSHOTTER + ("snapshots",)
SNAPSHOTTER_DB = SNAPSHOTTER + ("metadata.db",)
META_DB = CONTAINERD + ("io.containerd.metadata.v1.bolt", "meta.db")
BLOBS = CONTAINERD + ("io.containerd.content.v1.content", "blobs", "sha256")
# dockerd's namespace in containerd; its other namespaces (moby_history: build records) and BuildKit's hold build cache.
MOBY_NAMESPACE = b"moby"
# A snapshot key of dockerd's: a layer's chain ID, an unpack in progress, a container's (ID) or its init layer's.
IMAGE_KEY_PREFIXES = ("sha256:", "extract-")
INIT_SUFFIX = "-init"
# The log files dockerd writes in a container's directory, by driver: json-file's <id>-json.log and rotations (.1,
# .2.gz), local's local-logs/, and the cache of dual logging for the other drivers.
LOG_NAMES = (("json-file", "{id}-json.log"), ("local", "local-logs"), (None, "container-cached.log"))


class StorageIndex:
    """CLAIMS: relative path (as the walk names units) -> category, for what the metadata names; LEFTOVERS: relative
    path -> kind, for what the metadata shows unfinished (a `-removing` layer entry and its directory: kind removing; a
    snapshot no containerd namespace names: kind containerd_snapshot); LINKS: overlay2's short links (overlay2/l/NAME)
    -> the layer directory each points to (None when it points elsewhere); STORES: overlay2 and/or containerd; CONTAINERS: id -> {name, log_driver};
    PROBLEMS: why the index is incomplete (empty when it is complete)."""

    def __init__(self, claims=None, leftovers=None, containers=None, problems=None, stores=(), links=None):
        self.claims = claims or {}
        self.leftovers = leftovers or {}
        self.links = links or {}
        self.containers = containers or {}
        self.problems = problems or []
        self.stores = tuple(stores)

    def as_dict(self):
        return dict(claims=self.claims, leftovers=self.leftovers, containers=self.containers, problems=self.problems,
                    stores=list(self.stores), links=self.links)

    @classmethod
    def from_dict(cls, data):
        return cls(data["claims"], data["leftovers"], data["containers"], data["problems"], data["stores"],
                   data["links"])


def _join(*parts):
    return "/".join(parts)


def _read_text(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


def read_index(root):
    """The index of the storage under ROOT (Docker's root dir), from the engine's metadata files."""
    index = StorageIndex()
    _read_containers(root, index)
    if os.path.isdir(os.path.join(root, *LAYERDB)):
        index.stores += ("overlay2",)
        _read_layerdb(root, index)
        _read_buildkit_snapshots(root, index)
        _read_links(root, index)
    if os.path.isdir(os.path.join(root, *SNAPSHOTS)) or os.path.isdir(os.path.join(root, *BLOBS)):
        index.stores += ("containerd",)
        _read_containerd(root, index)
    return index


def _names_in(directory, described, index):
    """The names in DIRECTORY; none when it does not exist (the engine never made it), and none with a problem recorded
    in INDEX (naming it as DESCRIBED) when it cannot be read."""
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        index.problems.append(f"{described} cannot be read ({exc.strerror or exc})")
        return []


def _read_containers(root, index):
    directory = os.path.join(root, "containers")
    for container_id in _names_in(directory, "the containers directory", index):
        name, driver = None, None
        try:
            with open(os.path.join(directory, container_id, "config.v2.json"), encoding="utf-8") as handle:
                name = (json.load(handle).get("Name") or "").lstrip("/") or None
            with open(os.path.join(directory, container_id, "hostconfig.json"), encoding="utf-8") as handle:
                driver = (json.load(handle).get("LogConfig") or {}).get("Type") or None
        except (OSError, ValueError, AttributeError):
            pass  # a container being created or removed: still the engine's, named by its ID alone
        index.containers[container_id] = dict(name=name, log_driver=driver)


def _read_layerdb(root, index):
    layerdb = os.path.join(root, *LAYERDB)
    for kind, files, category in (("sha256", ("cache-id",), "images"), ("mounts", ("mount-id", "init-id"), "containers")):
        directory = os.path.join(layerdb, kind)
        for entry in _names_in(directory, f"the layer database {directory}", index):
            for file_name in files:
                try:
                    layer_dir = _read_text(os.path.join(directory, entry, file_name))
                except FileNotFoundError:
                    continue  # an entry being written or deleted; its directory, if any, is judged by its age
                except OSError as exc:
                    index.problems.append(f"{os.path.join(directory, entry, file_name)} cannot be read ({exc})")
                    continue
                if not _is_name(layer_dir):
                    index.problems.append(f"{os.path.join(directory, entry, file_name)} does not name a directory")
                    continue
                if entry.endswith(REMOVING_SUFFIX):
                    index.leftovers[_join(*LAYERDB, kind, entry)] = "removing"
                    index.leftovers.setdefault(_join(OVERLAY2, layer_dir), "removing")
                else:
                    index.claims[_join(OVERLAY2, layer_dir)] = category
    # A directory that a live layer names is no leftover, even if a deletion of another entry named it too.
    for path in list(index.leftovers):
        if path in index.claims:
            del index.leftovers[path]


def _read_links(root, index):
    """overlay2 names each layer directory by a short link too (l/NAME -> ../DIRECTORY/diff), which mounts use."""
    directory = os.path.join(root, OVERLAY2, "l")
    for name in _names_in(directory, f"overlay2's links {directory}", index):
        try:
            target = os.readlink(os.path.join(directory, name))
        except OSError:
            target = ""  # not a link: nothing overlay2 made, so it is judged as a link to nothing
        parts = target.split("/")
        layer = parts[1] if len(parts) == 3 and parts[0] == ".." and parts[2] == "diff" and _is_name(parts[1]) else None
        index.links[_join(OVERLAY2, "l", name)] = _join(OVERLAY2, layer) if layer else None


def _read_buildkit_snapshots(root, index):
    """BuildKit's snapshots on the graph driver: each snapshot's key is its overlay2 directory, or `committed` names
    the directory it was committed to."""
    path = os.path.join(root, *BUILDKIT_SNAPSHOTS)
    if not os.path.exists(path):
        return
    try:
        snapshots = _bbolt.read(path)
    except (OSError, _bbolt.BoltError) as exc:
        index.problems.append(f"BuildKit's snapshot database {path} cannot be read ({exc})")
        return
    for key, bucket in snapshots.buckets.items():
        for name in (key.decode("utf-8", "replace"), bucket.text("committed")):
            if name and _is_name(name):
                index.claims.setdefault(_join(OVERLAY2, name), "build_cache")


def _read_containerd(root, index):
    meta_path = os.path.join(root, *META_DB)
    snapshotter_path = os.path.join(root, *SNAPSHOTTER_DB)
    try:
        meta = _bbolt.read(meta_path).bucket("v1")
        backend = (_bbolt.read(snapshotter_path).bucket("v1", "snapshots")
                   if os.path.exists(snapshotter_path) else _bbolt.Bucket({}, {}))
    except (OSError, _bbolt.BoltError) as exc:
        index.problems.append(f"containerd's metadata cannot be read ({exc})")
        return
    if meta is None or backend is None:
        index.problems.append("containerd's metadata has no v1 schema")
        return
    named = {}  # the snapshotter's key -> category, for the snapshots a namespace names
    blobs = {}
    for namespace, bucket in meta.buckets.items():
        in_moby = namespace == MOBY_NAMESPACE
        snapshots = bucket.bucket("snapshots", "overlayfs")
        for key, snapshot in (snapshots.buckets.items() if snapshots else ()):
            category = _snapshot_category(key.decode("utf-8", "replace"), index.containers) if in_moby else "build_cache"
            name = snapshot.text("name")
            if name:
                named[name] = _first(named.get(name), category)
        content = bucket.bucket("content", "blob")
        for digest in (content.buckets if content else ()):
            hex_digest = digest.decode("utf-8", "replace").split(":", 1)[-1]
            blobs[hex_digest] = _first(blobs.get(hex_digest), "images" if in_moby else "build_cache")
    for backend_key, snapshot in backend.buckets.items():
        snapshot_id = _varint(snapshot.values.get(b"id", b""))
        if snapshot_id is None:
            index.problems.append(f"containerd snapshot {backend_key!r} has no ID")
            continue
        category = named.get(backend_key.decode("utf-8", "replace"))
        path = _join(*SNAPSHOTS, str(snapshot_id))
        if category:
            index.claims[path] = category
        else:
            # The snapshotter has it, no namespace names it: what a killed unpack leaves (containerd's collector
            # would drop the record; the directory is ours to judge).
            index.leftovers[path] = "containerd_snapshot"
    for hex_digest, category in blobs.items():
        index.claims[_join(*BLOBS, hex_digest)] = category


# The category that wins when several hold one snapshot or blob: what an image or container holds is not build cache.
_PRECEDENCE = ("containers", "images", "build_cache")


def _first(current, category):
    if current is None:
        return category
    return min(current, category, key=_PRECEDENCE.index)


def _snapshot_category(key, containers):
    if key.startswith(IMAGE_KEY_PREFIXES):
        return "images"
    container = key[:-len(INIT_SUFFIX)] if key.endswith(INIT_SUFFIX) else key
    if container in containers:
        return "containers"
    return "build_cache"  # BuildKit's snapshots live in dockerd's namespace on this store, held by its leases


def _varint(data):
    value, shift = 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
    return None


def _is_name(text):
    return bool(text) and "/" not in text and text not in (".", "..") and "\0" not in text


def log_files(container_id, names):
    """The names among NAMES (a container directory's entries) that are log files, with the driver that writes them."""
    found = []
    for driver, pattern in LOG_NAMES:
        stem = pattern.format(id=container_id)
        for name in names:
            if name == stem or name.startswith(stem + "."):
                found.append((name, driver))
    return found
