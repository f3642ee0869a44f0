# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""Every byte under Docker's root dir, in a category: a pure map from a walk's units (_disk_walk) and the engine's
metadata (_storage_index) to images, containers, container_logs, volumes, build_cache, engine_metadata, leaked, other,
and what none of them claims (unexplained). Leaked storage is what lies where the engine keeps layers, snapshots or
blobs but nothing its metadata knows refers to; each piece is returned as a leak, for reclaim.docker.storage_leaks.

Standard library only, Python 3.9 and later (it runs on the Docker host's Python).
"""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._storage_index import (
    BLOBS,
    LAYERDB,
    OVERLAY2,
    REMOVING_SUFFIX,
    SNAPSHOTS,
    SNAPSHOTTER,
    log_files,
)

CATEGORIES = ("images", "containers", "container_logs", "volumes", "build_cache", "engine_metadata", "leaked", "other")
# The unexplained paths returned, largest first: enough to see what is there, bounded on any host.
UNEXPLAINED_LISTED = 20
ANY = "*"
REST = "**"
CONTAINERD = SNAPSHOTTER[:2]
CONTENT = BLOBS[:3]
LINK = (OVERLAY2, "l", ANY)

# The directories the walk goes into (each entry a unit of its own); every other directory is summed whole.
DESCEND = (
    ("containers",), ("containers", ANY),
    ("image",), ("image", OVERLAY2), LAYERDB, LAYERDB + ("sha256",), LAYERDB + ("mounts",),
    (OVERLAY2,), (OVERLAY2, "l"),
    ("volumes",),
    CONTAINERD, CONTAINERD[:1], SNAPSHOTTER, SNAPSHOTS, CONTENT, CONTENT + ("blobs",), BLOBS,
)

# Where the engine keeps layers, snapshots and blobs: a unit there is judged by the metadata (_storage_index); what it
# does not name is leaked, of the kind given here.
STORE_SLOTS = (
    ((OVERLAY2, ANY), "layer_directory"),
    (SNAPSHOTS + (ANY,), "containerd_snapshot"),
    (BLOBS + (ANY,), "containerd_content"),
)

# Everything else, by path, first match wins.
RULES = (
    ((), "engine_metadata"),  # the root dir's own inode
    (("buildkit", REST), "build_cache"),
    (("containers", REST), "containers"),  # logs are told apart by name first (see categorize)
    (LAYERDB + ("mounts", REST), "containers"),
    (LAYERDB + ("sha256", ANY), "images"),
    (("image", REST), "images"),
    ((OVERLAY2, "l"), "engine_metadata"),  # the directory of the short links overlay2 mounts name the layers by
    ((OVERLAY2,), "engine_metadata"),
    (("volumes", "metadata.db"), "engine_metadata"),
    (("volumes", "backingFsBlockDev"), "engine_metadata"),
    (("volumes",), "engine_metadata"),
    (("volumes", ANY), "volumes"),
    (CONTAINERD + ("io.containerd.metadata.v1.bolt", REST), "engine_metadata"),
    (SNAPSHOTTER + ("metadata.db",), "engine_metadata"),
    (CONTENT + ("ingest", REST), "images"),  # downloads in progress, which containerd's metadata tracks
    (("containerd", REST), "other"),  # runtime state, other snapshotters' empty roots
    (("rootfs", REST), "containers"),  # the containerd store's mount points for running containers
    (("network", REST), "engine_metadata"),
    (("engine-id",), "engine_metadata"),
    (("swarm", REST), "engine_metadata"),
    (("trust", REST), "engine_metadata"),
    (("plugins", REST), "other"),
    (("runtimes", REST), "other"),
    (("tmp", REST), "other"),
)


def match(pattern, parts):
    """Whether PARTS (a relative path as a tuple of names) matches PATTERN: ANY matches one name, REST any names."""
    if pattern and pattern[-1] == REST:
        head = pattern[:-1]
        return len(parts) >= len(head) and all(p in (ANY, n) for p, n in zip(head, parts))
    return len(parts) == len(pattern) and all(p in (ANY, n) for p, n in zip(pattern, parts))


def descend(parts):
    """For _disk_walk.walk: whether to count each entry of the directory at PARTS as a unit of its own."""
    return any(match(pattern, parts) for pattern in DESCEND)


def _parts(path):
    return tuple(path.split("/")) if path else ()


def categorize(root, units, index):
    """The root dir explained: ROOT (Docker's root dir), UNITS ({relative path: {bytes, freeable, newest, is_dir}} from
    one walk), INDEX (a StorageIndex). Returns (report, leaks): the report as disk_usage_info returns `root_dir`, the
    leaks as [{path, relative_path, kind, bytes, accounted_bytes, newest, links}] (bytes: what removing it frees, with
    the short links (relative paths) that point to it; accounted: what the walk counted there, which differ only by
    hard links shared with other places)."""
    categories = dict.fromkeys(CATEGORIES, 0)
    unexplained, leaks, logs = {}, {}, {}
    links = []
    for path, unit in units.items():
        parts = _parts(path)
        if match(LINK, parts):
            links.append((path, unit))
            continue
        category, kind = judge(parts, path, index)
        if category == "containers" and len(parts) == 3 and parts[0] == "containers":
            driver = _log_driver(parts[1], parts[2])
            if driver is not False:
                category = "container_logs"
                _add_log(logs, root, parts[1], parts[2], driver, unit, index)
        if category is None:
            unexplained[path] = unit["bytes"]
            continue
        categories[category] += unit["bytes"]
        if kind:
            leaks[path] = _leak(root, path, kind, unit)
    # A short link goes with the layer directory it points to (removed with it, as the driver does); one that points to
    # no directory is a leak of its own.
    for path, unit in links:
        target = index.links.get(path)
        if target in leaks:
            category = "leaked"
            leaks[target]["links"].append(path)
            for key, value in (("bytes", unit["freeable"]), ("accounted_bytes", unit["bytes"])):
                leaks[target][key] += value
            leaks[target]["newest"] = max(leaks[target]["newest"], unit["newest"])
        else:
            category, kind = judge_link(path, index, target in units)
            if kind:
                leaks[path] = _leak(root, path, kind, unit)
        if category is None:
            unexplained[path] = unit["bytes"]
        else:
            categories[category] += unit["bytes"]
    total = sum(unit["bytes"] for unit in units.values())
    report = dict(path=root, bytes=total, categories=categories, unexplained_bytes=sum(unexplained.values()),
                  unexplained=[dict(path=p, bytes=b) for p, b in
                               sorted(unexplained.items(), key=lambda item: (-item[1], item[0]))[:UNEXPLAINED_LISTED]],
                  container_logs=sorted(logs.values(), key=lambda log: (-log["bytes"], log["container"])))
    # A layer's directory goes before the `-removing` entry that names it, as the engine deletes them.
    return report, sorted(leaks.values(), key=lambda leak: (leak["relative_path"].startswith("image/"),
                                                            leak["relative_path"]))


def _leak(root, path, kind, unit):
    return dict(path=f"{root.rstrip('/')}/{path}", relative_path=path, kind=kind, bytes=unit["freeable"],
                accounted_bytes=unit["bytes"], newest=unit["newest"], links=[])


def judge(parts, path, index):
    """(category, leak kind or None) of the unit at relative PATH (PARTS: its names) by INDEX; category None:
    unexplained. Where the metadata could not be read whole, nothing is leaked: what it does not name is unexplained."""
    complete = not index.problems
    for pattern, kind in STORE_SLOTS:
        if match(pattern, parts) and parts != (OVERLAY2, "l"):
            if path in index.claims:
                return index.claims[path], None
            if not complete:
                return None, None  # the metadata could not be read whole: nothing may be called leaked
            return "leaked", index.leftovers.get(path, kind)
    if match(LAYERDB + ("sha256", ANY), parts) and parts[-1].endswith(REMOVING_SUFFIX):
        return ("leaked", "removing") if complete and path in index.leftovers else (None, None)
    for pattern, category in RULES:
        if match(pattern, parts):
            return category, None
    return None, None


def judge_link(path, index, target_exists):
    """(category, leak kind or None) of overlay2's short link at relative PATH whose layer directory is not leaked:
    the category of that directory, or a leak of its own when it points to none (TARGET_EXISTS: whether the directory
    it names is there)."""
    target = index.links.get(path)
    if target is not None and target_exists:
        return judge(_parts(target), target, index)[0], None
    if path in index.links and not index.problems:
        return "leaked", "layer_link"
    return None, None


def _log_driver(container_id, name):
    """The log driver writing NAME in the container's directory (None when only its name tells it is a log), or False
    when it is no log file."""
    found = log_files(container_id, [name])
    return found[0][1] if found else False


def _add_log(logs, root, container_id, name, driver, unit, index):
    container = index.containers.get(container_id, {})
    log = logs.setdefault(container_id, dict(
        container=container_id, name=container.get("name"), driver=container.get("log_driver") or driver,
        path=f"{root.rstrip('/')}/containers/{container_id}/"
             + (f"{container_id}-json.log" if driver == "json-file" else
                "local-logs/container.log" if driver == "local" else "container-cached.log"),
        bytes=0))
    log["bytes"] += unit["bytes"]
