"""Recorded and hand-made snapshots for the model and planner tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ansible_collections.reclaim.docker.plugins.module_utils._model import Container, Image, Snapshot

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
FLAVOURS = ("20.10", "28.5", "28.5-containerd")
OVERLAY2 = ("20.10", "28.5")
PREFIX = "rec/"  # record_snapshots.py builds its scenario with prefix "rec"


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
