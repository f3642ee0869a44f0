# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The engine model: what a snapshot holds, how references resolve, and which bytes removals free.

Pure: no I/O. Snapshots are read by _snapshot.py, or loaded from recorded JSON in tests.
"""

from __future__ import annotations

import hashlib
import re

FULL_ID = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
# The daemon tries a bare hex string of 6 to 64 characters as an ID prefix (distribution's
# shortIdentifier); shorter ones are only ever repository names.
SHORT_ID = re.compile(r"^[0-9a-f]{6,64}$")
DIGEST_REF = re.compile(r"^(?P<repo>[^@]+)@(?P<digest>sha256:[0-9a-f]{64})$")
STORE_CONTAINERD = "containerd"


def short_id(image_or_container_id):
    return image_or_container_id.split(":", 1)[-1][:12]


def familiar_name(repo):
    """docker.io/library/busybox -> busybox, docker.io/lab/x -> lab/x, as the CLI shows names."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if repo.startswith(prefix):
            return repo[len(prefix):]
    return repo


def normalize_reference(reference):
    """A user's reference in the form the engine lists it: familiar name, ':latest' when no tag or digest."""
    match = DIGEST_REF.match(reference)
    if match:
        return f"{familiar_name(match.group('repo'))}@{match.group('digest')}"
    name, tag = reference, "latest"
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = reference.rsplit(":", 1)
    return f"{familiar_name(name)}:{tag}"


def repository_of(reference):
    return reference.split("@", 1)[0] if "@" in reference else reference.rsplit(":", 1)[0]


def chain_ids(diff_ids):
    """Layer chain IDs (the identity of a layer in the store: a layer and everything under it)."""
    chain = []
    for diff_id in diff_ids:
        if not chain:
            chain.append(diff_id)
        else:
            chain.append("sha256:" + hashlib.sha256(f"{chain[-1]} {diff_id}".encode()).hexdigest())
    return chain


class Image:
    __slots__ = ("id", "repo_tags", "repo_digests", "parent_id", "created", "size", "shared_size", "labels",
                 "manifests")

    def __init__(self, id, repo_tags=(), repo_digests=(), parent_id="", created=0, size=0, shared_size=-1,
                 labels=None, manifests=()):
        self.id = id
        self.repo_tags = tuple(sorted(t for t in repo_tags if t and t != "<none>:<none>"))
        self.repo_digests = tuple(sorted(d for d in repo_digests if d and d != "<none>@<none>"))
        self.parent_id = parent_id or ""
        self.created = created
        self.size = size
        self.shared_size = shared_size
        self.labels = dict(labels or {})
        # Containerd store only: one dict per platform manifest (digest, kind, available, platform, size).
        self.manifests = [dict(m) for m in manifests]

    @property
    def references(self):
        return self.repo_tags + self.repo_digests

    def to_dict(self):
        return {slot: getattr(self, slot) for slot in self.__slots__}


class Container:
    __slots__ = ("id", "name", "image_id", "state", "size_rw", "created", "labels", "volumes", "networks")

    def __init__(self, id, name, image_id, state="exited", size_rw=0, created=0, labels=None,
                 volumes=(), networks=()):
        self.id = id
        self.name = name
        self.image_id = image_id
        self.state = state
        self.size_rw = size_rw
        self.created = created
        self.labels = dict(labels or {})
        self.volumes = tuple(sorted(volumes))
        self.networks = tuple(sorted(networks))

    @property
    def running(self):
        # A paused or restarting container still holds its image as a running one does.
        return self.state in ("running", "paused", "restarting")

    def describe(self):
        return f"{self.name} ({short_id(self.id)}, {self.state})"

    def to_dict(self):
        return {slot: getattr(self, slot) for slot in self.__slots__}


class Network:
    __slots__ = ("id", "name", "created", "labels", "predefined")

    def __init__(self, id, name, created=0, labels=None, predefined=False):
        self.id = id
        self.name = name
        self.created = created
        self.labels = dict(labels or {})
        self.predefined = predefined

    def to_dict(self):
        return {slot: getattr(self, slot) for slot in self.__slots__}


class Volume:
    __slots__ = ("name", "created", "labels", "size", "anonymous")

    def __init__(self, name, created=0, labels=None, size=0, anonymous=False):
        self.name = name
        self.created = created
        self.labels = dict(labels or {})
        self.size = size
        self.anonymous = anonymous

    def to_dict(self):
        return {slot: getattr(self, slot) for slot in self.__slots__}


class Snapshot:
    """One read of engine state. `layers` maps image IDs to layer keys, filled only where needed;
    networks, volumes and build cache records are read only when a run asks for them.

    The lookups a planner makes per item (containers of an image, children of an image, an image by reference) are
    indexed once here, so that planning stays linear in the host's images and containers.
    """

    def __init__(self, engine, images, containers, layers=None, layer_sizes=None, networks=(), volumes=(),
                 build_cache=()):
        self.engine = dict(engine)
        self.images = {image.id: image for image in images}
        self.containers = {container.id: container for container in containers}
        self.layers = dict(layers or {})
        self.layer_sizes = dict(layer_sizes or {})
        self.networks = {network.id: network for network in networks}
        self.volumes = {volume.name: volume for volume in volumes}
        self.build_cache = [dict(record) for record in build_cache]
        self._containers_by_image = {}
        for container in sorted(self.containers.values(), key=lambda c: c.name):
            self._containers_by_image.setdefault(container.image_id, []).append(container)
        self._children_by_parent = {}
        for image_id in sorted(self.images):
            parent_id = self.images[image_id].parent_id
            if parent_id:
                self._children_by_parent.setdefault(parent_id, []).append(image_id)
        self._image_by_reference = {}
        for image in self.images.values():
            for reference in image.references:
                self._image_by_reference[reference] = image

    @property
    def containerd_store(self):
        return self.engine.get("image_store") == STORE_CONTAINERD

    def orphan_holders(self):
        """Containers whose image is no longer listed; their layers are still on disk."""
        return sorted((c for c in self.containers.values() if c.image_id not in self.images), key=lambda c: c.id)

    def containers_of(self, image_id):
        """The containers created from IMAGE_ID, by name."""
        return list(self._containers_by_image.get(image_id, ()))

    def children_of(self, image_id):
        """The IDs of the images whose parent is IMAGE_ID (legacy builder links), sorted."""
        return list(self._children_by_parent.get(image_id, ()))

    def resolve(self, reference):
        """Find what REFERENCE names: (named_by, image, normalized) with named_by 'id', 'tag' or 'digest', or None."""
        match = FULL_ID.match(reference)
        if match:
            image = self.images.get("sha256:" + match.group(1))
            return ("id", image, image.id) if image else None
        normalized = normalize_reference(reference)
        if "@" in normalized:
            image = self._image_by_reference.get(normalized)
            if image:
                return "digest", image, normalized
            # The containerd store lists a tagged image's digest as repo@<image id>, and deleting
            # repo@digest there removes that repository's tags on the image.
            image = self.images.get(normalized.split("@", 1)[1]) if self.containerd_store else None
            if image and any(repository_of(tag) == repository_of(normalized) for tag in image.repo_tags):
                return "digest", image, normalized
            return None
        image = self._image_by_reference.get(normalized)
        if image and normalized in image.repo_tags:
            return "tag", image, normalized
        if SHORT_ID.match(reference):
            found = [i for i in self.images.values() if i.id.split(":", 1)[1].startswith(reference)]
            if len(found) == 1:
                return "id", found[0], found[0].id
        return None

    def to_dict(self):
        return {
            "engine": self.engine,
            "images": [i.to_dict() for i in sorted(self.images.values(), key=lambda i: i.id)],
            "containers": [c.to_dict() for c in sorted(self.containers.values(), key=lambda c: c.id)],
            "layers": {k: list(v) for k, v in sorted(self.layers.items())},
            "layer_sizes": dict(sorted(self.layer_sizes.items())),
            "networks": [n.to_dict() for n in sorted(self.networks.values(), key=lambda n: n.id)],
            "volumes": [v.to_dict() for v in sorted(self.volumes.values(), key=lambda v: v.name)],
            "build_cache": self.build_cache,
        }

    @classmethod
    def from_dict(cls, data):
        return cls(data["engine"], [Image(**i) for i in data["images"]], [Container(**c) for c in data["containers"]],
                   {k: tuple(v) for k, v in data.get("layers", {}).items()}, data.get("layer_sizes", {}),
                   [Network(**n) for n in data.get("networks", ())], [Volume(**v) for v in data.get("volumes", ())],
                   data.get("build_cache", ()))


def images_needing_layers(snapshot, image_ids):
    """Which images' layer chains exactness needs, when IMAGE_IDS may be deleted.

    The touched images' own chains, always (a container whose image record is gone may hold some of their
    layers). Images whose SharedSize is 0 share no layer with any other image, but when a touched image
    shares (SharedSize > 0) or its sharing is unknown (-1: API 1.41), the chains of every image that shares
    are needed too, to see who shares with whom.
    """
    needed = set(image_ids)
    if any(snapshot.images[i].shared_size != 0 for i in needed if i in snapshot.images):
        needed |= {i.id for i in snapshot.images.values() if i.shared_size != 0}
    return needed - set(snapshot.layers)


def image_layers(snapshot, image_id):
    """The layer keys IMAGE_ID holds; an image never inspected holds one private pseudo-layer of its Size."""
    if image_id in snapshot.layers:
        return snapshot.layers[image_id]
    return ("image:" + image_id,)


def layer_size(snapshot, key):
    if key.startswith("image:"):
        image = snapshot.images.get(key[len("image:"):])
        return image.size if image else 0
    return snapshot.layer_sizes.get(key, 0)


class Accounting:
    """Bytes freed by removals, from the layer graph: the layers that no remaining image or container
    references, plus the writable layers of removed containers. Never a sum of image Sizes.

    Each layer's holders (images, and containers through their image) are counted once; a removal releases its
    layers and frees those whose count reaches zero. Linear in the layers held, whatever the order of removals.
    """

    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.deleted_images = set()
        self.removed_containers = set()
        self.total = 0
        self._holders = {}
        for image_id in snapshot.images:
            self._hold(image_id)
        for container in snapshot.containers.values():
            self._hold(container.image_id)

    def _keys(self, image_id):
        return set(image_layers(self.snapshot, image_id))

    def _hold(self, image_id):
        for key in self._keys(image_id):
            self._holders[key] = self._holders.get(key, 0) + 1

    def _release(self, image_id):
        freed = 0
        for key in self._keys(image_id):
            self._holders[key] -= 1
            if self._holders[key] == 0:
                freed += layer_size(self.snapshot, key)
        return freed

    def delete_image(self, image_id):
        """Record an image deletion; return the bytes it frees given what was recorded before."""
        if image_id in self.deleted_images or image_id not in self.snapshot.images:
            return 0
        self.deleted_images.add(image_id)
        freed = self._release(image_id)
        self.total += freed
        return freed

    def remove_container(self, container_id):
        """Record a container removal; return the bytes it frees (its writable layer, and layers it held last)."""
        container = self.snapshot.containers.get(container_id)
        if container_id in self.removed_containers or container is None:
            return 0
        self.removed_containers.add(container_id)
        freed = self._release(container.image_id) + container.size_rw
        self.total += freed
        return freed

    def held_by_containers_only(self, image_id):
        """Bytes of IMAGE_ID's layers that would be freed but for the containers still using them."""
        holders = 0 if image_id in self.deleted_images else 1
        holders += sum(1 for c in self.snapshot.containers_of(image_id) if c.id not in self.removed_containers)
        return sum(layer_size(self.snapshot, key) for key in self._keys(image_id)
                   if 0 < self._holders.get(key, 0) == holders)


def freed_bytes(snapshot, deleted_images=(), removed_containers=()):
    """The bytes that deleting DELETED_IMAGES and removing REMOVED_CONTAINERS frees together."""
    accounting = Accounting(snapshot)
    for container_id in removed_containers:
        accounting.remove_container(container_id)
    for image_id in deleted_images:
        accounting.delete_image(image_id)
    return accounting.total
