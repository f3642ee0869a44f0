# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""Reading engine state into a Snapshot: a fixed number of list calls, per-image calls only where exactness needs them."""

from __future__ import annotations


from ansible_collections.reclaim.docker.plugins.module_utils._connection import APIError
from ansible_collections.reclaim.docker.plugins.module_utils._model import (
    Container,
    Image,
    Network,
    Snapshot,
    Volume,
    chain_ids,
    images_needing_layers,
)
from ansible_collections.reclaim.docker.plugins.module_utils._units import parse_time

SHARED_SIZE_MIN_API = "1.42"
MANIFESTS_MIN_API = "1.47"
ANONYMOUS_VOLUME_LABEL_MIN_API = "1.42"
ANONYMOUS_VOLUME_LABEL = "com.docker.volume.anonymous"
PREDEFINED_NETWORKS = ("bridge", "host", "none")
# Concurrent per-image reads (inspect, history) when the cache cannot answer; measured in docs/benchmarks.md.
ENGINE_CALL_WORKERS = 8


def read_snapshot(client, networks=False, volumes=False, build_cache=False):
    """Three calls whatever the host's size: engine info, images (all, with SharedSize), containers (all, with SizeRw);
    one more for networks, and one /system/df for volume sizes and build cache records, when asked for.

    /images/json is used rather than the SDK's images.list(), which inspects every image (100x slower on the
    containerd store).
    """
    containerd = client.uses_containerd_store
    params = {"all": 1}
    if client.supports(SHARED_SIZE_MIN_API):
        params["shared-size"] = 1
    if containerd and client.supports(MANIFESTS_MIN_API):
        params["manifests"] = 1
    images = [
        Image(
            id=raw["Id"],
            repo_tags=raw.get("RepoTags") or (),
            repo_digests=raw.get("RepoDigests") or (),
            parent_id=raw.get("ParentId"),
            created=raw.get("Created") or 0,
            size=raw.get("Size") or 0,
            shared_size=-1 if raw.get("SharedSize") is None else raw["SharedSize"],
            labels=raw.get("Labels"),
            manifests=[_manifest(m) for m in raw.get("Manifests") or ()],
        )
        for raw in client.get_json("/images/json", params)
    ]
    containers = [
        Container(
            id=raw["Id"],
            name=(raw.get("Names") or ["/" + raw["Id"][:12]])[0].lstrip("/"),
            image_id=raw.get("ImageID") or "",
            state=raw.get("State") or "",
            size_rw=raw.get("SizeRw") or 0,
            created=raw.get("Created") or 0,
            labels=raw.get("Labels"),
            volumes=[m["Name"] for m in raw.get("Mounts") or () if m.get("Type") == "volume" and m.get("Name")],
            networks=list(((raw.get("NetworkSettings") or {}).get("Networks") or {}).keys()),
        )
        for raw in client.get_json("/containers/json", {"all": 1, "size": 1})
    ]
    df = _system_df(client, volumes, build_cache)
    return Snapshot(
        client.facts(), images, containers,
        networks=[_network(raw) for raw in client.get_json("/networks")] if networks else (),
        volumes=[_volume(raw, client.supports(ANONYMOUS_VOLUME_LABEL_MIN_API)) for raw in df.get("Volumes") or ()],
        build_cache=df.get("BuildCache") or (),
    )


def _system_df(client, volumes, build_cache):
    """Volume sizes and build cache records. Sizing volumes walks their files: asked for only when needed
    (API >= 1.42 takes a type list; 1.41 computes everything for every call)."""
    types = [t for t, wanted in (("volume", volumes), ("build-cache", build_cache)) if wanted]
    if not types:
        return {}
    df = client.system_df(types)
    return {"Volumes": df.get("Volumes") if volumes else None, "BuildCache": df.get("BuildCache") if build_cache else None}


def _network(raw):
    return Network(
        id=raw["Id"], name=raw.get("Name") or "", created=parse_time(raw.get("Created")), labels=raw.get("Labels"),
        # Swarm-scoped and ingress networks belong to the swarm, not to this engine's prune.
        predefined=raw.get("Name") in PREDEFINED_NETWORKS or raw.get("Scope") == "swarm" or bool(raw.get("Ingress")),
    )


def _volume(raw, engine_labels_anonymous):
    labels = raw.get("Labels") or {}
    if engine_labels_anonymous:
        anonymous = ANONYMOUS_VOLUME_LABEL in labels
    else:
        # Older engines do not label anonymous volumes; theirs are named by 64 random hex digits.
        name = raw.get("Name") or ""
        anonymous = len(name) == 64 and all(c in "0123456789abcdef" for c in name)
    usage = raw.get("UsageData") or {}
    return Volume(name=raw["Name"], created=parse_time(raw.get("CreatedAt")), labels=labels,
                  size=max(usage.get("Size", 0) or 0, 0), anonymous=anonymous)


def _manifest(raw):
    descriptor = raw.get("Descriptor") or {}
    platform = descriptor.get("platform") or {}
    return dict(
        digest=descriptor.get("digest") or raw.get("ID"),
        kind=raw.get("Kind"),
        available=bool(raw.get("Available")),
        platform="/".join(p for p in (platform.get("os"), platform.get("architecture"), platform.get("variant")) if p),
        size=(raw.get("Size") or {}).get("Total") or 0,
    )


def layer_sizes_from_history(diff_ids, history):
    """Each layer's size from /images/{id}/history, whose entries are newest first.

    The daemon gives every history entry that made a layer that layer's size, and 0 to entries that made
    none (ENV, CMD, ...); the API does not say which is which. When there are more entries than layers,
    the entries with a size are layers for sure, and the zero-size entries that make up the rest are
    taken oldest first; a wrong guess there can only move a zero size to another zero-size position.
    """
    entries = list(reversed(history))
    sizes = [entry.get("Size") or 0 for entry in entries]
    if len(entries) == len(diff_ids):
        return sizes
    if len(entries) < len(diff_ids):
        return None
    zero_layers_needed = len(diff_ids) - sum(1 for size in sizes if size > 0)
    chosen = []
    for size in sizes:
        if size > 0:
            chosen.append(size)
        elif zero_layers_needed > 0:
            chosen.append(0)
            zero_layers_needed -= 1
    return chosen if len(chosen) == len(diff_ids) else None


def load_layers(client, snapshot, image_ids, cache, workers=ENGINE_CALL_WORKERS):
    """Fill in layer chains and sizes for IMAGE_IDS and for the images that may share layers with them.

    Exactness needs the chains of the images a plan deletes and of every image that shares layers with them; images
    whose SharedSize is 0 are accounted by their own Size. An image ID is the digest of its config, so its chain and
    layer sizes never change: CACHE answers for the images read before, and the rest cost two engine calls each
    (inspect and history), made WORKERS at a time. Returns whether any image needed its layers.
    """
    needed = sorted(images_needing_layers(snapshot, image_ids))
    # Orphan holders are matched by overlay2 directory, which is not content-addressed: those are read every time.
    dirs_needed = bool(snapshot.orphan_holders()) and not snapshot.containerd_store
    to_read = []
    for image_id in needed:
        cached = cache.get(image_id)
        if cached is None:
            to_read.append((image_id, True))
            continue
        _set_layers(snapshot, image_id, *cached)
        if dirs_needed:
            to_read.append((image_id, False))
    paths = [path for image_id, with_history in to_read
             for path in [f"/images/{image_id}/json"] + ([f"/images/{image_id}/history"] if with_history else [])]
    answers = iter(client.get_json_many(paths, workers))
    layer_dirs = {}
    for image_id, with_history in to_read:
        inspect = next(answers)
        history = next(answers) if with_history else None
        if inspect is None:
            # Gone since the snapshot: it is accounted by its listed Size, and apply reports the race.
            continue
        diff_ids = inspect.get("RootFS", {}).get("Layers") or []
        chains = chain_ids(diff_ids)
        sizes = layer_sizes_from_history(diff_ids, history) if history is not None else None
        if sizes is not None:
            _set_layers(snapshot, image_id, chains, sizes)
            cache.put(image_id, chains, sizes)
        layer_dirs.update(zip(chains, _overlay_dirs(inspect)))
    _load_orphan_holders(client, snapshot, layer_dirs)
    return bool(needed)


def _set_layers(snapshot, image_id, chains, sizes):
    snapshot.layers[image_id] = tuple(chains)
    snapshot.layer_sizes.update(zip(chains, sizes))


def _overlay_dirs(inspect):
    """overlay2's layer directories of an image, bottom layer first (the API lists them top down)."""
    data = (inspect.get("GraphDriver") or {}).get("Data") or {}
    lower = [d for d in (data.get("LowerDir") or "").split(":") if d]
    upper = [data["UpperDir"]] if data.get("UpperDir") else []
    return list(reversed(lower)) + upper


def _load_orphan_holders(client, snapshot, layer_dirs):
    """Which known layers each container with a deleted image record still holds.

    Neither the image nor its chain can be inspected any more, but on overlay2 the container's own lower
    directories are the layers it holds, and image inspect told which directory is which layer.
    """
    if not layer_dirs:
        return
    for container in snapshot.orphan_holders():
        try:
            data = (client.api.inspect_container(container.id).get("GraphDriver") or {}).get("Data") or {}
        except APIError:
            continue
        held = set((data.get("LowerDir") or "").split(":"))
        snapshot.layers[container.image_id] = tuple(chain for chain, d in layer_dirs.items() if d in held)
