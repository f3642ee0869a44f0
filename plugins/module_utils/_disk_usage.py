# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""Disk usage as `docker system df` reports it, and the filesystem under Docker's root dir."""

from __future__ import annotations

import os

# What `docker system df` counts, as the option and result names of disk_usage_info.
USAGE_TYPES = ("images", "containers", "volumes", "build_cache")
# The values of the /system/df `type` parameter (Engine API >= 1.42).
DF_TYPES = {"images": "image", "containers": "container", "volumes": "volume", "build_cache": "build-cache"}
# The container states `docker system df` counts active (a paused or restarting container is as running).
ACTIVE_STATES = ("running", "paused", "restarting")


def _usage(count, active, size, reclaimable):
    return dict(count=count, active=active, size=size, reclaimable=reclaimable)


def _known(value):
    # The engine reports -1 for sizes it did not compute.
    return value if isinstance(value, int) and value >= 0 else 0


def summarize(df, usage_types):
    """Turn a /system/df answer into counts and bytes, computed as the Docker CLI's `system df` does."""
    summary = {}
    if "images" in usage_types:
        images = df.get("Images") or []
        in_use = [i for i in images if (i.get("Containers") or 0) > 0]
        layers_size = _known(df.get("LayersSize"))
        used = sum(_known(i.get("Size")) - _known(i.get("SharedSize")) for i in in_use
                   if i.get("Size", -1) >= 0 and i.get("SharedSize", -1) >= 0)
        summary["images"] = _usage(len(images), len(in_use), layers_size, max(layers_size - used, 0))
    if "containers" in usage_types:
        containers = df.get("Containers") or []
        running = [c for c in containers if c.get("State") in ACTIVE_STATES]
        size = sum(_known(c.get("SizeRw")) for c in containers)
        summary["containers"] = _usage(len(containers), len(running), size,
                                       size - sum(_known(c.get("SizeRw")) for c in running))
    if "volumes" in usage_types:
        volumes = df.get("Volumes") or []
        usage = [(v.get("UsageData") or {}) for v in volumes]
        summary["volumes"] = _usage(
            len(volumes),
            sum(1 for u in usage if (u.get("RefCount") or 0) > 0),
            sum(_known(u.get("Size")) for u in usage),
            sum(_known(u.get("Size")) for u in usage if (u.get("RefCount") or 0) <= 0),
        )
    if "build_cache" in usage_types:
        records = df.get("BuildCache") or []
        unshared = [r for r in records if not r.get("Shared")]
        summary["build_cache"] = _usage(
            len(records),
            sum(1 for r in records if r.get("InUse")),
            sum(_known(r.get("Size")) for r in unshared),
            sum(_known(r.get("Size")) for r in unshared if not r.get("InUse")),
        )
    return summary


def df_types(usage_types):
    """The /system/df `type` values for USAGE_TYPES."""
    return [DF_TYPES[t] for t in USAGE_TYPES if t in usage_types]


def filesystem_usage(path):
    """Total, used and free bytes of the filesystem holding PATH, as df(1) computes them."""
    stats = os.statvfs(path)
    total = stats.f_blocks * stats.f_frsize
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    available = stats.f_bavail * stats.f_frsize
    # As df(1)'s Use%: used over what non-root users could have (root's reserve left out).
    denominator = used + available
    used_percent = round(100.0 * used / denominator, 2) if denominator else 0.0
    return dict(path=path, total=total, used=used, free=available, used_percent=used_percent)


def image_usage(client):
    """Image storage (the engine's LayersSize) and, where the module runs on the Docker host, the filesystem under
    Docker's root dir (null elsewhere)."""
    df = client.system_df(["image"])
    root = client.info().get("DockerRootDir")
    filesystem = filesystem_usage(root) if client.is_local and root else None
    return dict(images_bytes=df.get("LayersSize") or 0, filesystem=filesystem)


def predicted_usage(usage_before, images_bytes, reclaimed):
    """USAGE_BEFORE (image_usage) once a run frees IMAGES_BYTES of image storage and RECLAIMED bytes in all: every
    byte freed leaves the filesystem (used + free stays), and used_percent is recomputed as filesystem_usage does."""
    predicted = dict(usage_before, images_bytes=usage_before["images_bytes"] - images_bytes)
    if usage_before["filesystem"]:
        filesystem = dict(usage_before["filesystem"])
        filesystem["used"] -= reclaimed
        filesystem["free"] += reclaimed
        capacity = filesystem["used"] + filesystem["free"]
        filesystem["used_percent"] = round(100.0 * filesystem["used"] / capacity, 2) if capacity else 0.0
        predicted["filesystem"] = filesystem
    return predicted
