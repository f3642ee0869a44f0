# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""Reading engine state into a Snapshot: a fixed number of list calls, per-image calls only where exactness needs them."""

from __future__ import annotations


from ansible_collections.reclaim.docker.plugins.module_utils._connection import APIError
from ansible_collections.reclaim.docker.plugins.module_utils._content_store import (
    ContentUnreadable,
    blob_present,
    find_blobs_dir,
    read_manifest,
)
from ansible_collections.reclaim.docker.plugins.module_utils._model import (
    Container,
    Image,
    Network,
    Snapshot,
    Volume,
    blob_key,
    chain_ids,
    images_needing_layers,
    reference_problem,
    repository_of,
    short_id,
)
from ansible_collections.reclaim.docker.plugins.module_utils._units import parse_time

SHARED_SIZE_MIN_API = "1.42"
MANIFESTS_MIN_API = "1.47"
ANONYMOUS_VOLUME_LABEL_MIN_API = "1.42"
ANONYMOUS_VOLUME_LABEL = "com.docker.volume.anonymous"
PREDEFINED_NETWORKS = ("bridge", "host", "none")
INDEX_MEDIA_TYPES = ("application/vnd.oci.image.index.v1+json",
                     "application/vnd.docker.distribution.manifest.list.v2+json")
# Concurrent per-image reads (inspect, history) when the cache cannot answer; measured in docs/benchmarks.md.
ENGINE_CALL_WORKERS = 8


def read_snapshot(client, networks=False, volumes=False, build_cache=False):
    """Three calls whatever the host's size: engine info, images (all, with SharedSize), containers (all, with SizeRw);
    one more for networks, and one /system/df for volume sizes and build cache records, when asked for.

    /images/json is used rather than an inspect of every image (100x slower on the containerd store).
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
            repo_digests=repo_digests(raw, containerd),
            parent_id=raw.get("ParentId"),
            created=raw.get("Created") or 0,
            size=raw.get("Size") or 0,
            shared_size=-1 if raw.get("SharedSize") is None else raw["SharedSize"],
            labels=raw.get("Labels"),
            manifests=[_manifest(m) for m in raw.get("Manifests") or ()],
            index_size=_index_size(raw.get("Descriptor") or {}),
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
            size_root_fs=raw.get("SizeRootFs") or 0,
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


def repo_digests(raw, containerd_store):
    """The RepoDigests that image inspect gives, from the image's /images/json entry RAW, with no call per image.

    On the containerd store the list gives the repo@digest of one of the image's names only, while inspect gives one
    for the repository of each name: a name by digest as it is, a tag's repository with the image ID (the digest of
    the image's manifest or index). The list's RepoTags hold every name, those by digest too (docs/engine-notes.md).
    Overlay2 lists what inspect gives.
    """
    listed = list(raw.get("RepoDigests") or ())
    if not containerd_store:
        return listed
    # A name outside the reference grammar is listed as it is; inspect leaves it out.
    derived = [name if "@" in name else f"{repository_of(name)}@{raw['Id']}"
               for name in raw.get("RepoTags") or () if reference_problem(name) is None]
    return list(dict.fromkeys(listed + derived))


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
        manifest_size=descriptor.get("size") or 0,
        content=(raw.get("Size") or {}).get("Content") or 0,
        unpacked=(((raw.get("ImageData") or {}).get("Size") or {}).get("Unpacked")) or 0,
    )


def _index_size(descriptor):
    return descriptor.get("size") or 0 if descriptor.get("mediaType") in INDEX_MEDIA_TYPES else 0


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


def priced_plan(client, snapshot, make_plan, priced_by, cache):
    """MAKE_PLAN(snapshot), priced exactly: a first plan tells which images' layers matter (PRICED_BY(snapshot,
    plan)), those are loaded (CACHE first), and the plan is made again on them. Both passes are linear in the host's
    size. The cache is saved afterwards, with what a container still holds of an image deleted under it (rmi -f)."""
    plan = make_plan(snapshot)
    if load_layers(client, snapshot, priced_by(snapshot, plan), cache):
        plan = make_plan(snapshot)
    cache.save(set(snapshot.images) | {c.image_id for c in snapshot.containers.values()})
    return plan


def load_layers(client, snapshot, image_ids, cache, workers=ENGINE_CALL_WORKERS):
    """Fill in layer chains and sizes for IMAGE_IDS and for the images that may share layers with them.

    Exactness needs the chains of the images a plan deletes and of every image that shares layers with them; images
    whose SharedSize is 0 are accounted by their own Size. An image ID is the digest of its config (of its manifest or
    index on the containerd store), so its chain and layer sizes never change: CACHE answers for the images read
    before, and the rest cost two engine calls each (inspect and history), made WORKERS at a time. On the containerd
    store, every image's content too (load_content). Returns whether any image needed its layers.
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
    unknown_holders = []
    paths = [path for image_id, with_history in to_read
             for path in [f"/images/{image_id}/json"] + ([f"/images/{image_id}/history"] if with_history else [])]
    answers = iter(client.get_json_many(paths, workers))
    layer_dirs = {}
    for image_id, with_history in to_read:
        inspect = next(answers)
        history = next(answers) if with_history else None
        if inspect is None:
            if image_id not in snapshot.images and snapshot.containerd_store:
                # A container's image whose record went before (rmi -f), not in the cache: no engine call tells the
                # snapshots it holds (overlay2's directories do; _load_orphan_holders).
                unknown_holders.append(image_id)
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
    if needed and snapshot.containerd_store:
        problems = load_content(client, snapshot, cache)
        problems += [f"container(s) still hold the snapshots of image {short_id(image_id)}, whose record is gone and "
                     "which this host's layer cache never saw: they are not counted" for image_id in unknown_holders]
        if problems:
            snapshot.inexact_reason = "; ".join(problems)
    return bool(needed)


def load_content(client, snapshot, cache):
    """On the containerd store: the content blobs each image holds, in snapshot.content (see _model.image_keys).

    Every image's, whatever SharedSize says (it counts shared snapshots only, not blobs shared by digest). The listing
    gave each image's manifests with the bytes of their blobs present (content); the blobs a manifest names come from
    CACHE, or from its JSON in containerd's content store, and what is read is checked against the engine's count.
    Where the store cannot be read (a remote engine, no permission), images hold their snapshots only. Returns the
    problems that keep the bytes from being exact, one sentence each.
    """
    unread = "the bytes count the images' unpacked snapshots, not their content blobs, which the engine frees too"
    if not client.supports(MANIFESTS_MIN_API):
        return [f"the engine's API {client.api_version} lists no image manifests (API {MANIFESTS_MIN_API} does): {unread}"]
    if not snapshot.images:
        return []
    blobs_dir, problems = None, []
    try:
        if not client.is_local:
            raise ContentUnreadable(f"the engine is not on this host ({client.base_url})")
        blobs_dir = find_blobs_dir(snapshot.engine.get("docker_root_dir"), min(snapshot.images))
    except ContentUnreadable as exc:
        problems.append(f"containerd's content store cannot be read ({exc}): {unread}")
    for image in snapshot.images.values():
        if image.manifests:
            problems += _load_image_content(snapshot, image, blobs_dir, cache)
    return problems


def _load_image_content(snapshot, image, blobs_dir, cache):
    """IMAGE's content into snapshot.content; the problems met, one sentence each."""
    problems = []
    index = ()
    if image.index_size and blobs_dir:
        index = (blob_key(image.id),)
        snapshot.layer_sizes[index[0]] = image.index_size
    manifests = {}
    for manifest in image.manifests:
        if not manifest["content"] and not manifest["unpacked"]:
            continue  # absent, or removed (its files may wait for containerd's collector a little longer)
        manifests[manifest["digest"]] = ()
        if not blobs_dir or not manifest["content"]:
            continue
        try:
            named = cache.get_manifest(manifest["digest"])
            if named is None:
                named = read_manifest(blobs_dir, manifest["digest"])
                cache.put_manifest(image.id, manifest["digest"], named)
        except ContentUnreadable as exc:
            problems.append(f"the content of image {short_id(image.id)} cannot be read: {exc}")
            continue
        blobs = dict(((manifest["digest"], manifest["manifest_size"]),) + named)
        if not manifest["available"]:
            # Partly present (a platform pulled in part): the engine counts the blobs it has.
            blobs = {digest: size for digest, size in blobs.items() if blob_present(blobs_dir, digest)}
        if sum(blobs.values()) != manifest["content"]:
            problems.append(f"image {short_id(image.id)} holds {manifest['content']} bytes of content for "
                            f"{manifest['platform'] or manifest['digest']} by the engine's count, "
                            f"{sum(blobs.values())} as read")
        manifests[manifest["digest"]] = tuple(blob_key(digest) for digest in blobs)
        snapshot.layer_sizes.update((blob_key(digest), size) for digest, size in blobs.items())
    unpacked, problem = _unpacked_manifest(snapshot, image)
    if problem:
        problems.append(problem)
    snapshot.content[image.id] = dict(index=index, manifests=manifests, unpacked=unpacked)
    return problems


def _unpacked_manifest(snapshot, image):
    """The platform manifest whose snapshots are the image's layers (the one the engine unpacked), or None; and a
    problem when the layers read do not match it."""
    unpacked = [m for m in image.manifests if m["unpacked"]]
    if not unpacked:
        return None, None
    layers = snapshot.layers.get(image.id)
    if layers is None:
        return unpacked[0]["digest"], None  # not read: it holds one pseudo-layer, not priced
    size = sum(snapshot.layer_sizes.get(key, 0) for key in layers)
    matching = [m for m in unpacked if m["unpacked"] == size]
    if len(unpacked) == 1 and matching:
        return matching[0]["digest"], None
    platforms = ", ".join(m["platform"] or m["digest"] for m in unpacked)
    return (matching or unpacked)[0]["digest"], (f"image {short_id(image.id)} has unpacked snapshots for {platforms}, "
                                                 f"and its layers read ({size} bytes) are those of one at most")


def _set_layers(snapshot, image_id, chains, sizes):
    snapshot.layers[image_id] = tuple(chains)
    snapshot.layer_sizes.update(zip(chains, sizes))


def _overlay_dirs(inspect):
    """overlay2's layer directories of an image, bottom layer first (the API lists them top down)."""
    data = (inspect.get("GraphDriver") or {}).get("Data") or {}
    lower = [d for d in (data.get("LowerDir") or "").split(":") if d]
    upper = [data["UpperDir"]] if data.get("UpperDir") else []
    return list(reversed(lower)) + upper


def load_stop_times(client, snapshot, workers=ENGINE_CALL_WORKERS):
    """When each stopped container stopped (State.FinishedAt, which only inspect gives), for the filter stopped_for;
    a container that never ran counts from its creation. One inspect per stopped container, WORKERS at a time."""
    stopped = [c for c in snapshot.containers.values() if not c.running]
    answers = client.get_json_many([f"/containers/{c.id}/json" for c in stopped], workers)
    for container, inspect in zip(stopped, answers):
        if inspect is None:
            continue  # gone since the list: its removal is reported as a race
        state = inspect.get("State") or {}
        ran = parse_time(state.get("StartedAt"))
        container.stopped = parse_time(state.get("FinishedAt")) if ran is not None else container.created


def _load_orphan_holders(client, snapshot, layer_dirs):
    """Which known layers each container with a deleted image record still holds.

    Neither the image nor its chain can be inspected any more, but on overlay2 the container's own lower
    directories are the layers it holds, and image inspect told which directory is which layer.
    """
    if not layer_dirs:
        return
    for container in snapshot.orphan_holders():
        try:
            data = (client.get_json(f"/containers/{container.id}/json").get("GraphDriver") or {}).get("Data") or {}
        except APIError:
            continue
        held = set((data.get("LowerDir") or "").split(":"))
        snapshot.layers[container.image_id] = tuple(chain for chain, d in layer_dirs.items() if d in held)
