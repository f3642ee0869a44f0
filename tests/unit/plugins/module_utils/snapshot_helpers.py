"""Recorded and hand-made snapshots for the model and planner tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ansible_collections.reclaim.docker.plugins.module_utils._filters import Filters
from ansible_collections.reclaim.docker.plugins.module_utils._image_plan import RemovalRequest, plan_image_removal
from ansible_collections.reclaim.docker.plugins.module_utils._model import Container, Image, Snapshot
from ansible_collections.reclaim.docker.plugins.module_utils._protection import Protection
from ansible_collections.reclaim.docker.plugins.module_utils._prune_plan import PruneRequest, plan_prune
from ansible_collections.reclaim.docker.plugins.module_utils._retention_plan import RetentionPolicy

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
FLAVOURS = ("20.10", "28.5", "28.5-containerd")
OVERLAY2 = ("20.10", "28.5")
PREFIX = "rec/"  # record_snapshots.py builds its scenario with prefix "rec"
NOW = 1_800_000_000.0
DAY = 86400.0


def recorded(flavour):
    return Snapshot.from_dict(json.loads((SNAPSHOTS / f"{flavour}.json").read_text()))


def expected(flavour):
    return json.loads((SNAPSHOTS / f"{flavour}.expected.json").read_text())


def by_tag(snapshot, tag):
    return next(i for i in snapshot.images.values() if tag in i.repo_tags)


def container_named(snapshot, name):
    return next(c for c in snapshot.containers.values() if c.name == name)


def hid(name):
    """A deterministic full image/container ID for a hand-made object."""
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def layer(name):
    return "sha256:" + hashlib.sha256(("layer/" + name).encode()).hexdigest()


def make_snapshot(images, containers=(), sizes=None, store="overlay2"):
    """IMAGES: [(name, tags, [layer names], parent name or None)]; CONTAINERS: [(name, image name, state, size_rw)];
    SIZES: {layer name: bytes} (default 1000)."""
    sizes = sizes or {}
    objs, layers, layer_sizes = [], {}, {}
    for name, tags, layer_names, parent in images:
        objs.append(Image(hid(name), repo_tags=tags, parent_id=hid(parent) if parent else "",
                          size=sum(sizes.get(n, 1000) for n in layer_names), shared_size=-1))
        layers[hid(name)] = tuple(layer(n) for n in layer_names)
        for n in layer_names:
            layer_sizes[layer(n)] = sizes.get(n, 1000)
    ctrs = [Container(hashlib.sha256(("ctr/" + n).encode()).hexdigest(), n, hid(image), state=state, size_rw=rw)
            for n, image, state, rw in containers]
    return Snapshot({"image_store": store}, objs, ctrs, layers, layer_sizes)


def snapshot_with_ages(images, containers=(), sizes=None):
    """IMAGES: [(name, tags, layers, age in days, labels)]."""
    snapshot = make_snapshot([(n, t, l, None) for n, t, l, _a, _lb in images], containers, sizes)
    for name, _tags, _layers, age, labels in images:
        snapshot.images[hid(name)].created = NOW - age * DAY
        snapshot.images[hid(name)].labels = labels
    return snapshot


def policy(**kwargs):
    """A RetentionPolicy at NOW; protect and min_age make its Protection."""
    protection = Protection(kwargs.pop("protect", None), kwargs.pop("min_age", None), NOW)
    return RetentionPolicy(NOW, protection, **kwargs)


def remove_images(snapshot, names, **options):
    """image_remove's plan for NAMES with OPTIONS (RemovalRequest's)."""
    return plan_image_removal(snapshot, RemovalRequest(names, **options))


def prune(snapshot, approval=None, protect=None, min_age=None, assume_deleted=(), keep_all=False, keep_storage=None,
          build_cache_until=None, **filters):
    """prune's plan of the object types FILTERS names ({type: its filters, {} for none}), in prune's order."""
    request = PruneRequest(list(filters), {t: Filters(t, f, NOW) for t, f in filters.items()},
                           Protection(protect, min_age, NOW), keep_all=keep_all, keep_storage=keep_storage,
                           build_cache_until=build_cache_until, assume_deleted=assume_deleted)
    return plan_prune(snapshot, request, approval)
