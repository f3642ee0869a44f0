"""The definition of freed bytes, written the simple way: the test oracle for _model.Accounting.

Bytes freed are those of the keys (layers, and content blobs on the containerd store) that something held at the start
and nothing holds now, plus the own layers of the containers removed. Each question recomputes every key's holders
(quadratic over a plan), as the collection did before its accounting was made linear; the fast one is checked
against it.
"""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._model import image_layers, layer_size, writable_bytes


class OracleAccounting:
    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.deleted_images = set()
        self.removed_containers = set()
        self.removed_platforms = set()

    def _image_holds(self, image_id, removed_platforms):
        """An image holds its layers, or on the containerd store (content read) its index and what each platform it
        still has holds: the platform's blobs, and the layers for the platform unpacked."""
        content = self.snapshot.content.get(image_id)
        if content is None:
            return set(image_layers(self.snapshot, image_id))
        held = set(content["index"])
        for manifest_digest, blobs in content["manifests"].items():
            if manifest_digest not in removed_platforms:
                held |= set(blobs)
                if manifest_digest == content["unpacked"]:
                    held |= set(image_layers(self.snapshot, image_id))
        return held

    def _held(self, deleted_images, removed_containers, removed_platforms):
        held = set()
        for image_id in self.snapshot.images:
            if image_id not in deleted_images:
                held |= self._image_holds(image_id, removed_platforms)
        for container in self.snapshot.containers.values():
            if container.id not in removed_containers:
                held |= set(image_layers(self.snapshot, container.image_id))
        return held

    def freed_bytes(self, deleted_images=None, removed_containers=None, removed_platforms=None):
        deleted_images = self.deleted_images if deleted_images is None else deleted_images
        removed_containers = self.removed_containers if removed_containers is None else removed_containers
        removed_platforms = self.removed_platforms if removed_platforms is None else removed_platforms
        gone = self._held(set(), set(), set()) - self._held(deleted_images, removed_containers, removed_platforms)
        own = sum(writable_bytes(self.snapshot, self.snapshot.containers[c]) for c in removed_containers
                  if c in self.snapshot.containers)
        return sum(layer_size(self.snapshot, key) for key in gone) + own

    def _step(self, record):
        before = self.freed_bytes()
        record()
        return self.freed_bytes() - before

    def remove_container(self, container_id):
        return self._step(lambda: self.removed_containers.add(container_id))

    def delete_image(self, image_id):
        return self._step(lambda: self.deleted_images.add(image_id))

    def delete_platform(self, manifest_digest):
        return self._step(lambda: self.removed_platforms.add(manifest_digest))

    def held_by_containers_only(self, image_id):
        """What deleting the image and removing its containers frees, less what deleting the image alone frees and
        the containers' own layers."""
        containers = {c.id for c in self.snapshot.containers_of(image_id)} - self.removed_containers
        deleted = self.deleted_images | {image_id}
        own = sum(writable_bytes(self.snapshot, self.snapshot.containers[c]) for c in containers)
        return (self.freed_bytes(deleted, self.removed_containers | containers)
                - self.freed_bytes(deleted, self.removed_containers) - own)


def oracle_bytes(snapshot, plan):
    """What PLAN frees by the definition: the oracle's answer for its deletions, removals and platform removals."""
    deleted = {a["image"] for a in plan.actions
               if a["action"] == "delete_image" or a["action"] == "force_untag" and a["record_deleted"]}
    removed = {a["container"] for a in plan.actions if a["action"] == "remove_container"}
    platforms = {m for a in plan.actions if a["action"] == "delete_platform" for m in a["manifests"]}
    return OracleAccounting(snapshot).freed_bytes(deleted, removed, platforms)
