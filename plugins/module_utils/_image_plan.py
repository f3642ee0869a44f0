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

from ansible_collections.reclaim.docker.plugins.module_utils._model import (
    Accounting,
    repository_of,
    short_id,
)


def _names(containers):
    return ", ".join(c.describe() for c in containers)


class Plan:
    def __init__(self):
        self.actions = []
        self.refusals = []
        self.absent = []
        self.orphaned = []
        # Items a selection chose that must stay, each with why (prune, retention).
        self.skipped = []

    def add(self, action, **fields):
        entry = dict(action=action, **fields)
        self.actions.append(entry)
        return entry

    def refuse(self, name, reason):
        self.refusals.append(dict(name=name, reason=reason))

    @property
    def reclaimed_bytes(self):
        return sum(a["bytes"] for a in self.actions)


class ImageRemovalPlanner:
    """Plans the removal of several references in order, on a simulated copy of the engine state,
    so that later names see what earlier ones did (two tags of one image: untag, then delete)."""

    def __init__(self, snapshot, force=False, prune=True, remove_stopped_containers=False):
        self.snapshot = snapshot
        self.force = force
        self.prune = prune
        self.remove_stopped_containers = remove_stopped_containers
        self.references = {i.id: set(i.references) for i in snapshot.images.values()}
        self.accounting = Accounting(snapshot)
        self.plan = Plan()

    # The simulated state -------------------------------------------------------------------------

    def assume_deleted(self, image_ids):
        """Plan as if an earlier check-mode task had deleted IMAGE_IDS (those on the engine): layers they shared
        with images this plan deletes are then freed here, as they will be in the real run."""
        for image_id in image_ids:
            if image_id in self.snapshot.images:
                self.accounting.deleted_images.add(image_id)
                self.references[image_id] = set()

    def _gone(self, image_id):
        return image_id in self.accounting.deleted_images

    def _containers(self, image_id):
        return [c for c in self.snapshot.containers_of(image_id) if c.id not in self.accounting.removed_containers]

    def _children(self, image_id):
        return [c for c in self.snapshot.children_of(image_id) if not self._gone(c)]

    def _references_after_removing(self, image, reference):
        """What still names IMAGE after removing REFERENCE, as the daemon computes it."""
        remaining = set(self.references[image.id]) - {reference}
        repository = repository_of(reference)
        tags_left_in_repo = any("@" not in r and repository_of(r) == repository for r in remaining)
        if "@" in reference and self.snapshot.containerd_store or "@" not in reference and not tags_left_in_repo:
            # Containerd store: repo@digest removes that repository's tags. Both stores: removing a repository's
            # last tag also removes its digest references.
            remaining = {r for r in remaining if repository_of(r) != repository}
        return remaining

    # Planning ------------------------------------------------------------------------------------

    def remove(self, name):
        resolved = self.snapshot.resolve(name)
        if resolved is None or self._gone(resolved[1].id):
            self.plan.absent.append(name)
            return
        kind, image, reference = resolved
        if kind != "id" and reference not in self.references[image.id]:
            self.plan.absent.append(name)
            return
        if kind != "id":
            remaining = self._references_after_removing(image, reference)
            if remaining:
                self._untag(image, reference, remaining, f"{reference} untagged: the image keeps {', '.join(sorted(remaining))}")
                return
        elif len({repository_of(r) for r in self.references[image.id]}) > 1 or \
                len([r for r in self.references[image.id] if "@" not in r]) > 1:
            if not self.force:
                self.plan.refuse(name, f"image {short_id(image.id)} is referenced by several tags "
                                       f"({', '.join(sorted(self.references[image.id]))}): name a tag, or set force: true "
                                       "to remove them all")
                return
        self._remove_image(name, kind, image, reference)

    def _remove_image(self, name, kind, image, reference):
        containers = self._containers(image.id)
        running = [c for c in containers if c.running]
        if running:
            self.plan.refuse(name, f"image {short_id(image.id)} is used by running container(s) {_names(running)}; "
                                   "it is never removed, with or without force")
            return
        children = self._children(image.id)
        if children and not self.snapshot.containerd_store:
            self.plan.refuse(name, f"image {short_id(image.id)} has dependent child images "
                                   f"({', '.join(short_id(c) for c in children)}); remove them first")
            return
        if containers:
            if self.remove_stopped_containers:
                for container in containers:
                    self.plan.add("remove_container", container=container.id, name=container.name, image=image.id,
                                  bytes=self.accounting.remove_container(container.id),
                                  reason=f"stopped container {container.describe()} uses image {short_id(image.id)} "
                                         "(remove_stopped_containers)")
            elif self.force:
                self._force_untag(kind, image, reference, containers)
                return
            else:
                self.plan.refuse(name, f"image {short_id(image.id)} is used by stopped container(s) {_names(containers)}: "
                                       "set remove_stopped_containers: true to remove them first (force would only untag "
                                       "it and free nothing while the containers hold its layers)")
                return
        # By ID, several references need force (the daemon's "referenced in multiple repositories").
        self._delete(image, reference if kind != "id" else image.id,
                     f"{reference if kind != 'id' else 'image ' + short_id(image.id)} removed: no other reference, "
                     "no container uses it", force=kind == "id" and len(self.references[image.id]) > 1)
        if self.prune:
            self._prune_parents(image)

    def _untag(self, image, reference, remaining, reason):
        self.references[image.id] = remaining
        self.plan.add("untag", reference=reference, image=image.id, bytes=0, force=False, reason=reason)

    def _delete(self, image, target, reason, force=False):
        untags = sorted(self.references[image.id])
        self.references[image.id] = set()
        self.plan.add("delete_image", reference=target, image=image.id, untags=untags, force=force,
                      bytes=self.accounting.delete_image(image.id), reason=reason)

    def _delete_unused(self, image, reason):
        """Delete an image no container uses without force: untag each tag (the engine still refuses if a container
        appeared since the snapshot), the last one deletes; a dangling image goes by ID. Then its unused parents."""
        tags = sorted(t for t in self.references[image.id] if "@" not in t)
        for tag in tags[:-1]:
            remaining = self._references_after_removing(image, tag)
            self._untag(image, tag, remaining, f"{tag} untagged on the way to deleting image {short_id(image.id)}")
        self._delete(image, tags[-1] if tags else image.id, reason)
        if self.prune:
            self._prune_parents(image)

    def _force_untag(self, kind, image, reference, containers):
        """docker rmi -f on an image only stopped containers use: the engine untags (and on overlay2 drops the
        image record) but the containers keep every layer. Reported as orphaned, not as freed."""
        held = self.accounting.held_by_containers_only(image.id)
        record_deleted = kind == "id" or not self.snapshot.containerd_store
        untags = sorted(self.references[image.id]) if kind == "id" else [reference]
        self.references[image.id] -= set(untags)
        if record_deleted:
            self.accounting.deleted_images.add(image.id)
        self.plan.add("force_untag", reference=reference if kind != "id" else image.id, image=image.id, untags=untags,
                      record_deleted=record_deleted, force=True, bytes=0,
                      reason=f"force: untagged while stopped container(s) {_names(containers)} hold its layers")
        if all(o["image"] != image.id for o in self.plan.orphaned):
            self.plan.orphaned.append(dict(image=image.id, containers=[c.id for c in containers],
                                           container_names=[c.name for c in containers], bytes=held))

    def _prune_parents(self, image):
        """What `docker rmi` does without --no-prune: delete the legacy builder's untagged parents that nothing
        else needs. Planned as separate deletions by ID (the engine is called with noprune), children first.
        One rule on both stores: the containerd store's own prune also deletes a parent that another image
        still builds on (moby's c8d deleteAll checks no children); we keep it, as overlay2 does."""
        parent = self.snapshot.images.get(image.parent_id)
        while parent and not self._gone(parent.id) and not self.references[parent.id] \
                and not self._containers(parent.id) and not self._children(parent.id) and self._may_delete(parent):
            self._delete(parent, parent.id, f"untagged parent of {short_id(image.id)}, unused once it is gone (prune)")
            image, parent = parent, self.snapshot.images.get(parent.parent_id)

    def _may_delete(self, image):  # pylint: disable=unused-argument
        """Whether a pruned parent may go; subclasses with protection rules say no for protected ones."""
        return True

    def remove_platform(self, name, platform):
        resolved = self.snapshot.resolve(name)
        if resolved is None or self._gone(resolved[1].id):
            self.plan.absent.append(name)
            return
        image = resolved[1]
        manifests = [m for m in image.manifests if m["platform"] == platform and m["kind"] != "attestation"]
        available = [m for m in manifests if m["available"]]
        if not available:
            self.plan.absent.append(f"{name} ({platform})")
            return
        # The engine asks for force because a variant's content is shared by every image that references it.
        digests = {m["digest"] for m in available}
        sharing = sorted(other.id for other in self.snapshot.images.values() if other.id != image.id
                         and any(m["digest"] in digests and m["available"] for m in other.manifests))
        if sharing and not self.force:
            self.plan.refuse(name, f"the {platform} content of {short_id(image.id)} is also used by image(s) "
                                   f"{', '.join(short_id(s) for s in sharing)}; set force: true to remove it from all")
            return
        self.plan.add("delete_platform", reference=resolved[2], image=image.id, platform=platform, force=True,
                      bytes=sum(m["size"] for m in available),
                      reason=f"{platform} content of {resolved[2]} removed; other platforms and the tags stay")


def plan_image_removal(snapshot, names, force=False, prune=True, remove_stopped_containers=False, platform=None):
    planner = ImageRemovalPlanner(snapshot, force=force, prune=prune, remove_stopped_containers=remove_stopped_containers)
    for name in names:
        if platform:
            planner.remove_platform(name, platform)
        else:
            planner.remove(name)
    return planner.plan
