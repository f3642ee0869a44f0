# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The image-removal planner: (snapshot, request) -> ordered actions with reasons and bytes, or refusals.

Pure: no I/O. It follows the daemon's own rules for DELETE /images (moby's ImageDelete), made stricter
where they lose data or hide disk use: an image a running container uses is never removed, and an
untag that leaves layers held by stopped containers is reported as orphaned, not as freed space.
"""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._model import repository_of, short_id
from ansible_collections.reclaim.docker.plugins.module_utils._planning import Planning
from ansible_collections.reclaim.docker.plugins.module_utils._simulation import describe_containers


class RemovalRequest:
    """What image_remove asks for: NAMES, removed in order (later names see what earlier ones did); TAG, the tag of a
    name with neither tag nor digest; FORCE; PRUNE_PARENTS, also delete the untagged parents left unused (docker rmi
    without --no-prune); REMOVE_STOPPED_CONTAINERS; PLATFORM, one platform's content only (OS/ARCH[/VARIANT])."""

    def __init__(self, names, tag="latest", force=False, prune_parents=True, remove_stopped_containers=False,
                 platform=None):
        self.names = list(names)
        self.tag = tag
        self.force = force
        self.prune_parents = prune_parents
        self.remove_stopped_containers = remove_stopped_containers
        self.platform = platform


class _ImageRemovalPlanner:
    def __init__(self, snapshot, request, approval):
        self.snapshot = snapshot
        self.tag = request.tag
        self.force = request.force
        self.prune_parents = request.prune_parents
        self.remove_stopped_containers = request.remove_stopped_containers
        planning = Planning(snapshot, approval)
        self.plan = planning.plan
        self.images = planning.images

    def remove(self, name):
        resolved = self.snapshot.resolve(name, self.tag)
        if resolved is None or self.images.gone(resolved[1].id):
            self.plan.not_found.append(name)
            return
        named_by, image, reference = resolved
        references = self.images.references[image.id]
        if named_by != "id" and reference not in references:
            self.plan.not_found.append(name)
            return
        if named_by != "id":
            remaining = self.images.references_after_removing(image, reference)
            if remaining:
                self.images.untag(image, reference, f"{reference} untagged: the image keeps {', '.join(sorted(remaining))}")
                return
        elif len({repository_of(r) for r in references}) > 1 or len([r for r in references if "@" not in r]) > 1:
            if not self.force:
                self.plan.refuse(name, f"image {short_id(image.id)} is referenced by several tags "
                                       f"({', '.join(sorted(references))}): name a tag, or set force: true "
                                       "to remove them all")
                return
        self._remove_image(name, named_by, image, reference)

    def _remove_image(self, name, named_by, image, reference):
        containers = self.images.containers(image.id)
        running = [c for c in containers if c.running]
        if running:
            self.plan.refuse(name, f"image {short_id(image.id)} is used by running container(s) {describe_containers(running)}; "
                                   "it is never removed, with or without force")
            return
        children = self.images.children(image.id)
        if children and not self.snapshot.containerd_store:
            self.plan.refuse(name, f"image {short_id(image.id)} has dependent child images "
                                   f"({', '.join(short_id(c) for c in children)}); remove them first")
            return
        if containers:
            if self.remove_stopped_containers:
                for container in containers:
                    self.images.remove_container(container, f"stopped container {container.describe()} uses image "
                                                            f"{short_id(image.id)} (remove_stopped_containers)")
            elif self.force:
                self._force_untag(named_by, image, reference, containers)
                return
            else:
                self.plan.refuse(name, f"image {short_id(image.id)} is used by stopped container(s) "
                                       f"{describe_containers(containers)}: set remove_stopped_containers: true to remove "
                                       "them first (force would only untag it and free nothing while the containers hold "
                                       "its layers)")
                return
        by_id = named_by == "id"
        # By ID, several references need force (the daemon's "referenced in multiple repositories").
        self.images.delete(image, image.id if by_id else reference,
                           f"{'image ' + short_id(image.id) if by_id else reference} removed: no other reference, "
                           "no container uses it", force=by_id and len(self.images.references[image.id]) > 1)
        if self.prune_parents:
            self.images.prune_parents(image)

    def _force_untag(self, named_by, image, reference, containers):
        """docker rmi -f on an image only stopped containers use: the engine untags (and on overlay2, or by ID, drops
        the image record) but the containers keep every layer. Reported as orphaned, not as freed."""
        held = self.images.accounting.held_by_containers_only(image.id)
        by_id = named_by == "id"
        # By tag too, every reference goes: a tag gets here only when nothing would be left (as for a delete).
        untags = sorted(self.images.references[image.id])
        self.images.force_untag(image, untags, record_deleted=by_id or not self.snapshot.containerd_store,
                                reference=image.id if by_id else reference,
                                reason=f"force: untagged while stopped container(s) {describe_containers(containers)} "
                                       "hold its layers")
        if all(o["image"] != image.id for o in self.plan.orphaned):
            self.plan.orphaned.append(dict(image=image.id, containers=[c.id for c in containers],
                                           container_names=[c.name for c in containers], bytes=held))

    def remove_platform(self, name, platform):
        resolved = self.snapshot.resolve(name, self.tag)
        if resolved is None or self.images.gone(resolved[1].id):
            self.plan.not_found.append(name)
            return
        image = resolved[1]
        # A platform pulled in part has content too, which the engine removes.
        present = sorted(m["digest"] for m in image.manifests
                         if m["platform"] == platform and m["kind"] != "attestation" and m["content"])
        if not present:
            self.plan.not_found.append(f"{name} ({platform})")
            return
        # The engine asks for force because a variant's content is shared by every image that references it.
        sharing = sorted({other for digest in present for other in self.snapshot.images_listing_manifest(digest)
                          if other != image.id and not self.images.gone(other)})
        if sharing and not self.force:
            self.plan.refuse(name, f"the {platform} content of {short_id(image.id)} is also used by image(s) "
                                   f"{', '.join(short_id(s) for s in sharing)}; set force: true to remove it from all")
            return
        self.images.delete_platform(image, resolved[2], platform, present,
                                    f"{platform} content of {resolved[2]} removed; other platforms and the tags stay")


def plan_image_removal(snapshot, request, approval=None):
    """What removing REQUEST's names (a RemovalRequest) does on SNAPSHOT. APPROVAL: the planners' one entry shape;
    image_remove takes no approved plan, so it holds nothing."""
    planner = _ImageRemovalPlanner(snapshot, request, approval)
    for name in request.names:
        if request.platform:
            planner.remove_platform(name, request.platform)
        else:
            planner.remove(name)
    return planner.plan
