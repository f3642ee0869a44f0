"""The definition of freed bytes, written the simple way: the test oracle for _model.Accounting.

This is the accounting the collection used before it was made linear (each question recomputes every layer's holders:
quadratic over a plan). It is kept here, unchanged in meaning, so that the fast one is checked against it.
"""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._model import image_layers, layer_size


class OracleAccounting:
    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.deleted_images = set()
        self.removed_containers = set()

    def _held(self, deleted_images, removed_containers):
        held = set()
        for image_id in self.snapshot.images:
            if image_id not in deleted_images:
                held.update(image_layers(self.snapshot, image_id))
        for container in self.snapshot.containers.values():
            if container.id not in removed_containers:
                held.update(image_layers(self.snapshot, container.image_id))
        return held

    def freed_layers(self, deleted_images=None, removed_containers=None):
        deleted_images = self.deleted_images if deleted_images is None else deleted_images
        removed_containers = self.removed_containers if removed_containers is None else removed_containers
        candidates = set()
        for image_id in deleted_images:
            candidates.update(image_layers(self.snapshot, image_id))
        for container_id in removed_containers:
            container = self.snapshot.containers.get(container_id)
            if container and container.image_id not in self.snapshot.images:
                # An image record deleted earlier (docker rmi -f) leaves its layers held by the container alone.
                candidates.update(self.snapshot.layers.get(container.image_id, ()))
        return candidates - self._held(deleted_images, removed_containers)

    def freed_bytes(self, deleted_images=None, removed_containers=None):
        removed_containers = self.removed_containers if removed_containers is None else removed_containers
        layers = self.freed_layers(deleted_images, removed_containers)
        writable = sum(self.snapshot.containers[c].size_rw for c in removed_containers if c in self.snapshot.containers)
        return sum(layer_size(self.snapshot, key) for key in layers) + writable

    def remove_container(self, container_id):
        before = self.freed_bytes()
        self.removed_containers.add(container_id)
        return self.freed_bytes() - before

    def delete_image(self, image_id):
        before = self.freed_bytes()
        self.deleted_images.add(image_id)
        return self.freed_bytes() - before

    def held_by_containers_only(self, image_id):
        without_containers = self.freed_bytes(self.deleted_images | {image_id},
                                              self.removed_containers | {c.id for c in self.snapshot.containers_of(image_id)})
        writable = sum(c.size_rw for c in self.snapshot.containers_of(image_id) if c.id not in self.removed_containers)
        return without_containers - self.freed_bytes() - writable
