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

from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem

FULL_ID = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
# The daemon tries a bare hex string of 6 to 64 characters as an ID prefix (distribution's
# shortIdentifier); shorter ones are only ever repository names.
SHORT_ID = re.compile(r"^[0-9a-f]{6,64}$")
# Image digests are sha256, and the engine takes them in lowercase only (go-digest).
DIGEST = r"sha256:[0-9a-f]{64}"
DIGEST_REF = re.compile(rf"^(?P<repo>[^@]+)@(?P<digest>{DIGEST})$")
STORE_CONTAINERD = "containerd"
# Docker's reference grammar (distribution/reference): [DOMAIN[:PORT]/]PATH[:TAG][@DIGEST]. Path components are
# lowercase, joined by '.', '_', '__' or dashes; a domain (the first component, when more follow) may have capitals.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
REPOSITORY = re.compile(rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
REPOSITORY_MAX_LENGTH = 255
TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)


def short_id(image_or_container_id):
    return image_or_container_id.split(":", 1)[-1][:12]


def familiar_name(repo):
    """docker.io/library/busybox -> busybox, docker.io/lab/x -> lab/x, as the CLI shows names."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if repo.startswith(prefix):
            return repo[len(prefix):]
    return repo


def normalize_reference(reference, tag="latest"):
    """A user's reference in the form the engine lists it: familiar name, ':TAG' when it has no tag or digest."""
    match = DIGEST_REF.match(reference)
    if match:
        return f"{familiar_name(match.group('repo'))}@{match.group('digest')}"
    name = reference
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = reference.rsplit(":", 1)
    return f"{familiar_name(name)}:{tag}"


def repository_of(reference):
    return reference.split("@", 1)[0] if "@" in reference else reference.rsplit(":", 1)[0]


def reference_problem(text):
    """What keeps TEXT from being a reference in Docker's grammar, worded to follow TEXT in a message; or None."""
    named, at, digest = text.partition("@")
    repository, colon, tag = named, "", ""
    if ":" in named.rsplit("/", 1)[-1]:
        repository, colon, tag = named.rpartition(":")
    if not REPOSITORY.fullmatch(repository):
        return ("is not an image reference: [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST], the name in lowercase letters, "
                "digits and separators (. _ __ -) between them")
    if len(repository) > REPOSITORY_MAX_LENGTH:
        return f"has a name longer than {REPOSITORY_MAX_LENGTH} characters"
    if colon and not TAG.fullmatch(tag):
        return "has a tag other than 1 to 128 letters, digits, _ . or - (not starting with . or -)"
    if at and not re.fullmatch(DIGEST, digest):
        return "has a digest other than sha256: and 64 lowercase hex digits"
    return None


def check_image_name(name, option):
    """NAME as image_remove takes it: a full image ID (with or without sha256:), an ID prefix of 6 or more hex
    digits, or a reference. Raises ValueProblem naming OPTION."""
    if FULL_ID.fullmatch(name) or SHORT_ID.fullmatch(name):
        return
    if name.startswith("sha256:"):
        raise ValueProblem(f"{option}: {name!r} is not an image ID: sha256: comes with all 64 lowercase hex digits "
                           "(a short ID is written without it).")
    problem = reference_problem(name)
    if problem:
        raise ValueProblem(f"{option}: {name!r} {problem}.")


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
                 "manifests", "index_size")

    def __init__(self, id, repo_tags=(), repo_digests=(), parent_id="", created=0, size=0, shared_size=-1,
                 labels=None, manifests=(), index_size=0):
        self.id = id
        self.repo_tags = tuple(sorted(t for t in repo_tags if t and t != "<none>:<none>"))
        # The containerd store lists an image with no platform left by its bare digest, which names no repository.
        self.repo_digests = tuple(sorted(d for d in repo_digests if d and d != "<none>@<none>" and "@" in d))
        self.parent_id = parent_id or ""
        self.created = created
        self.size = size
        self.shared_size = shared_size
        self.labels = dict(labels or {})
        # Containerd store only: one dict per manifest the image lists, from the engine's image list: digest, kind
        # (image, attestation), available, platform, manifest_size (of its blob), content (bytes of its blobs present:
        # manifest, config, layers) and unpacked (bytes of its snapshots).
        self.manifests = [dict(m) for m in manifests]
        # Containerd store only: the size of the image's index blob when the image is an index (its ID is that blob's
        # digest); 0 when the image is a single manifest.
        self.index_size = index_size

    @property
    def references(self):
        # The containerd store lists a name by digest in RepoTags, and inspect in both RepoTags and RepoDigests.
        return tuple(dict.fromkeys(self.repo_tags + self.repo_digests))

    def to_dict(self):
        return {slot: getattr(self, slot) for slot in self.__slots__}


class Container:
    __slots__ = ("id", "name", "image_id", "state", "size_rw", "size_root_fs", "created", "labels", "volumes",
                 "networks", "stopped")

    def __init__(self, id, name, image_id, state="exited", size_rw=0, size_root_fs=0, created=0, labels=None,
                 volumes=(), networks=(), stopped=None):
        self.id = id
        self.name = name
        self.image_id = image_id
        self.state = state
        self.size_rw = size_rw
        # Its whole file system: writable layer, the containerd store's init snapshot, and the image's layers.
        self.size_root_fs = size_root_fs
        self.created = created
        self.labels = dict(labels or {})
        self.volumes = tuple(sorted(volumes))
        self.networks = tuple(sorted(networks))
        # When it stopped (Unix seconds; its creation when it never ran), read only where the filter stopped_for
        # needs it (the container list does not give it); None when not read or unknown.
        self.stopped = stopped

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
    """One read of engine state. `layers` maps image IDs to layer keys, filled only where needed; on the containerd
    store `content` maps image IDs to the content blobs they hold (see image_keys); networks, volumes and build cache
    records are read only when a run asks for them. `inexact_reason` says why bytes priced on it are not exact, if so.

    The lookups a planner makes per item (containers of an image, children of an image, an image by reference) are
    indexed once here, so that planning stays linear in the host's images and containers.
    """

    def __init__(self, engine, images, containers, layers=None, layer_sizes=None, networks=(), volumes=(),
                 build_cache=(), content=None):
        self.engine = dict(engine)
        self.images = {image.id: image for image in images}
        self.containers = {container.id: container for container in containers}
        self.layers = dict(layers or {})
        self.layer_sizes = dict(layer_sizes or {})
        # Image ID -> dict(index=(blob keys), manifests={manifest digest: (blob keys)}, unpacked=manifest digest or None)
        self.content = dict(content or {})
        self.inexact_reason = None
        self.networks = {network.id: network for network in networks}
        self.volumes = {volume.name: volume for volume in volumes}
        self.build_cache = [dict(record) for record in build_cache]
        # Image ID -> when it was last seen in use, from the usage ledger (filled by the pipeline when it keeps one).
        self.last_use = {}
        self._containers_by_image = {}
        for container in sorted(self.containers.values(), key=lambda c: c.name):
            self._containers_by_image.setdefault(container.image_id, []).append(container)
        self._children_by_parent = {}
        for image_id in sorted(self.images):
            parent_id = self.images[image_id].parent_id
            if parent_id:
                self._children_by_parent.setdefault(parent_id, []).append(image_id)
        self._image_by_reference = {}
        self._images_by_manifest = {}
        for image in self.images.values():
            for reference in image.references:
                self._image_by_reference[reference] = image
            for manifest in image.manifests:
                self._images_by_manifest.setdefault(manifest["digest"], []).append(image.id)

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

    def images_listing_manifest(self, manifest_digest):
        """The IDs of the images that list MANIFEST_DIGEST (containerd store), sorted."""
        return sorted(self._images_by_manifest.get(manifest_digest, ()))

    def resolve(self, reference, tag="latest"):
        """Find what REFERENCE names: (named_by, image, normalized) with named_by 'id', 'tag' or 'digest', or None.
        TAG completes a reference with neither tag nor digest (as image_remove's option tag); an ID takes none."""
        match = FULL_ID.match(reference)
        if match:
            image = self.images.get("sha256:" + match.group(1))
            return ("id", image, image.id) if image else None
        normalized = normalize_reference(reference, tag)
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
            "content": {image_id: dict(index=list(c["index"]), unpacked=c["unpacked"],
                                       manifests={m: list(keys) for m, keys in sorted(c["manifests"].items())})
                        for image_id, c in sorted(self.content.items())},
        }

    @classmethod
    def from_dict(cls, data):
        return cls(data["engine"], [Image(**i) for i in data["images"]], [Container(**c) for c in data["containers"]],
                   {k: tuple(v) for k, v in data.get("layers", {}).items()}, data.get("layer_sizes", {}),
                   [Network(**n) for n in data.get("networks", ())], [Volume(**v) for v in data.get("volumes", ())],
                   data.get("build_cache", ()),
                   {image_id: dict(index=tuple(c["index"]), unpacked=c["unpacked"],
                                   manifests={m: tuple(keys) for m, keys in c["manifests"].items()})
                    for image_id, c in data.get("content", {}).items()})


def images_needing_layers(snapshot, image_ids):
    """Which images' layer chains exactness needs, when IMAGE_IDS may be deleted.

    The touched images' own chains, always (a container whose image record is gone may hold some of their
    layers). Images whose SharedSize is 0 share no layer with any other image, but when a touched image
    shares (SharedSize > 0) or its sharing is unknown (-1: API 1.41), the chains of every image that shares
    are needed too, to see who shares with whom; every image's when a touched image is no longer listed.
    """
    needed = set(image_ids)
    if any(i not in snapshot.images for i in needed):
        # An image no longer listed (a container's, whose record went) may share layers with any image, and
        # SharedSize, which counts sharing among listed images only, cannot tell which.
        needed |= set(snapshot.images)
    elif any(snapshot.images[i].shared_size != 0 for i in needed):
        needed |= {i.id for i in snapshot.images.values() if i.shared_size != 0}
    return needed - set(snapshot.layers)


def image_layers(snapshot, image_id):
    """The layer keys IMAGE_ID holds, which its containers hold too (on the containerd store: its snapshots); an image
    never inspected holds one private pseudo-layer of its Size."""
    if image_id in snapshot.layers:
        return snapshot.layers[image_id]
    return ("image:" + image_id,)


def blob_key(digest):
    """A content blob's key in the layer graph: apart from the layer keys, since an uncompressed layer blob's digest is
    also the chain ID of a bottom layer (its diff ID), and the two are different bytes on disk."""
    return "blob:" + digest


def image_keys(snapshot, image_id):
    """Everything IMAGE_ID holds: its layers and, on the containerd store, its content: its index blob and what each of
    its platform manifests holds (see platform_keys). Containers hold the layers only: the engine frees an image's
    content when its record goes, even while a stopped container still uses its snapshots."""
    content = snapshot.content.get(image_id)
    if content is None:
        return set(image_layers(snapshot, image_id))
    keys = set(content["index"])
    for manifest_digest in content["manifests"]:
        keys |= platform_keys(snapshot, image_id, manifest_digest)
    return keys


def platform_keys(snapshot, image_id, manifest_digest):
    """What one platform manifest of IMAGE_ID holds: its blobs and, for the platform the engine unpacked, the image's
    layers (its snapshots; an image with no platform unpacked holds none, whatever its history says)."""
    content = snapshot.content[image_id]
    keys = set(content["manifests"].get(manifest_digest, ()))
    if content["unpacked"] == manifest_digest:
        keys.update(image_layers(snapshot, image_id))
    return keys


def layer_size(snapshot, key):
    if key.startswith("image:"):
        image = snapshot.images.get(key[len("image:"):])
        return image.size if image else 0
    return snapshot.layer_sizes.get(key, 0)


def writable_bytes(snapshot, container):
    """The bytes of a container's own layers. SizeRw is its writable layer; on the containerd store it also has an init
    snapshot (28 KiB measured), which SizeRootFs counts with the writable layer and the image's snapshots."""
    layers = snapshot.layers.get(container.image_id)
    if not snapshot.containerd_store or not container.size_root_fs or layers is None:
        return container.size_rw
    return container.size_root_fs - sum(layer_size(snapshot, key) for key in layers)


class Accounting:
    """Bytes freed by removals, from the layer graph: the layers and content blobs that no remaining image or container
    references, plus the own layers of removed containers. Never a sum of image Sizes.

    Each key's holders (images, and containers through their image's layers) are counted once; a removal releases its
    keys and frees those whose count reaches zero. Linear in the keys held, whatever the order of removals.
    """

    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.deleted_images = set()
        self.removed_containers = set()
        self.total = 0
        self._holders = {}
        # Image ID -> the keys it holds now (a platform removal takes some away), and the platforms removed from it.
        self._held = {}
        self._removed_platforms = {}
        for image_id in snapshot.images:
            self._held[image_id] = image_keys(snapshot, image_id)
            self._hold(self._held[image_id])
        for container in snapshot.containers.values():
            self._hold(set(image_layers(snapshot, container.image_id)))

    def _hold(self, keys):
        for key in keys:
            self._holders[key] = self._holders.get(key, 0) + 1

    def _release(self, keys):
        freed = 0
        for key in keys:
            self._holders[key] -= 1
            if self._holders[key] == 0:
                freed += layer_size(self.snapshot, key)
        return freed

    def delete_image(self, image_id):
        """Record an image deletion; return the bytes it frees given what was recorded before."""
        if image_id in self.deleted_images or image_id not in self.snapshot.images:
            return 0
        self.deleted_images.add(image_id)
        freed = self._release(self._held[image_id])
        self._held[image_id] = set()
        self.total += freed
        return freed

    def delete_platform(self, manifest_digest):
        """Record the removal of a platform manifest's content, which the engine takes from every image that lists it;
        return the bytes freed: its blobs and snapshots that nothing left holds (an image's other platforms and index
        keep theirs)."""
        freed = 0
        for image_id in self.snapshot.images_listing_manifest(manifest_digest):
            removed = self._removed_platforms.setdefault(image_id, set())
            if image_id in self.deleted_images or manifest_digest in removed:
                continue
            removed.add(manifest_digest)
            content = self.snapshot.content.get(image_id)
            if content is None:
                continue  # its content was not read: it holds only its layers, which platforms do not divide
            kept = set(content["index"])
            for other in content["manifests"]:
                if other not in removed:
                    kept |= platform_keys(self.snapshot, image_id, other)
            lost = (platform_keys(self.snapshot, image_id, manifest_digest) - kept) & self._held[image_id]
            self._held[image_id] -= lost
            freed += self._release(lost)
        self.total += freed
        return freed

    def remove_container(self, container_id):
        """Record a container removal; return the bytes it frees (its own layers, and image layers it held last)."""
        container = self.snapshot.containers.get(container_id)
        if container_id in self.removed_containers or container is None:
            return 0
        self.removed_containers.add(container_id)
        freed = self._release(set(image_layers(self.snapshot, container.image_id)))
        freed += writable_bytes(self.snapshot, container)
        self.total += freed
        return freed

    def held_by_containers_only(self, image_id):
        """Bytes of IMAGE_ID's layers that deleting it would free but for the containers still using them."""
        containers = sum(1 for c in self.snapshot.containers_of(image_id) if c.id not in self.removed_containers)
        if not containers:
            return 0
        held = self._held.get(image_id, ())
        return sum(layer_size(self.snapshot, key) for key in set(image_layers(self.snapshot, image_id))
                   if 0 < self._holders.get(key, 0) == containers + (key in held))


def freed_bytes(snapshot, deleted_images=(), removed_containers=()):
    """The bytes that deleting DELETED_IMAGES and removing REMOVED_CONTAINERS frees together."""
    accounting = Accounting(snapshot)
    for container_id in removed_containers:
        accounting.remove_container(container_id)
    for image_id in deleted_images:
        accounting.delete_image(image_id)
    return accounting.total
