# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The image-deletion simulator every planner holds: the engine's images as the plan changes them, by the daemon's own
rules (which references are left, which images and containers are gone, and the bytes each step frees). Pure: no I/O.
"""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._model import Accounting, repository_of, short_id


def describe_containers(containers):
    return ", ".join(c.describe() for c in containers)


def references_after_removing(references, reference, containerd_store):
    """What still names an image that REFERENCES name after removing REFERENCE, as the daemon computes it."""
    remaining = set(references) - {reference}
    repository = repository_of(reference)
    tags_left_in_repo = any("@" not in r and repository_of(r) == repository for r in remaining)
    if "@" in reference and containerd_store or "@" not in reference and not tags_left_in_repo:
        # Containerd store: repo@digest removes that repository's tags. Both stores: removing a repository's
        # last tag also removes its digest references.
        remaining = {r for r in remaining if repository_of(r) != repository}
    return remaining


class ImageDeletion:
    """Deleting images on a simulated copy of the engine state, by the daemon's rules (moby's ImageDelete), so that
    later steps see what earlier ones did (two tags of one image: untag, then delete)."""

    def __init__(self, snapshot, plan):
        self.snapshot = snapshot
        self.plan = plan
        self.references = {i.id: set(i.references) for i in snapshot.images.values()}
        self.accounting = Accounting(snapshot)

    def assume_deleted(self, image_ids):
        """Simulate as if an earlier check-mode task had deleted IMAGE_IDS (those on the engine): layers they shared
        with images this plan deletes are then freed here, as they will be in the real run."""
        for image_id in image_ids:
            if image_id in self.snapshot.images:
                self.accounting.delete_image(image_id)
                self.references[image_id] = set()

    def gone(self, image_id):
        return image_id in self.accounting.deleted_images

    def containers(self, image_id):
        """The containers of IMAGE_ID that the plan leaves."""
        return [c for c in self.snapshot.containers_of(image_id) if c.id not in self.accounting.removed_containers]

    def children(self, image_id):
        return [c for c in self.snapshot.children_of(image_id) if not self.gone(c)]

    def references_after_removing(self, image, reference):
        """What still names IMAGE after removing REFERENCE, as the daemon computes it."""
        return references_after_removing(self.references[image.id], reference, self.snapshot.containerd_store)

    def remove_container(self, container, reason):
        self.plan.add("remove_container", container=container.id, name=container.name, image=container.image_id,
                      bytes=self.accounting.remove_container(container.id), reason=reason)

    def untag(self, image, reference, reason):
        """Remove REFERENCE from IMAGE, which keeps other references; `untags` is every reference that goes (a
        repository's digests go with its last tag; on the containerd store, a digest takes its repository's tags)."""
        remaining = self.references_after_removing(image, reference)
        untags = sorted(self.references[image.id] - remaining)
        self.references[image.id] = remaining
        self.plan.add("untag", reference=reference, image=image.id, untags=untags, bytes=0, force=False, reason=reason)

    def delete(self, image, target, reason, force=False):
        untags = sorted(self.references[image.id])
        self.references[image.id] = set()
        self.plan.add("delete_image", reference=target, image=image.id, untags=untags, force=force,
                      bytes=self.accounting.delete_image(image.id), reason=reason)

    def force_untag(self, image, untags, record_deleted, reference, reason):
        """docker rmi -f on an image only stopped containers use: the references go (and, where RECORD_DELETED, the
        image record) while the containers keep every layer. Only the record's content, on the containerd store, is
        freed."""
        self.references[image.id] -= set(untags)
        freed = self.accounting.delete_image(image.id) if record_deleted else 0
        self.plan.add("force_untag", reference=reference, image=image.id, untags=untags,
                      record_deleted=record_deleted, force=True, bytes=freed, reason=reason)

    def delete_platform(self, image, reference, platform, manifest_digests, reason):
        """One platform's content, gone from every image that lists its manifests (the engine's rule)."""
        self.plan.add("delete_platform", reference=reference, image=image.id, platform=platform,
                      manifests=list(manifest_digests), force=True,
                      bytes=sum(self.accounting.delete_platform(digest) for digest in manifest_digests), reason=reason)

    def delete_unused(self, image, reason, why_parent_stays=None):
        """Delete an image no container uses, without force: untag each tag (the engine still refuses if a container
        appeared since the snapshot), the last one deletes; a dangling image goes by ID. Then its unused parents
        (see prune_parents). Returns the bytes of the actions added and the parents kept, as (image, hold) pairs."""
        before = len(self.plan.actions)
        tags = sorted(t for t in self.references[image.id] if "@" not in t)
        for tag in tags[:-1]:
            self.untag(image, tag, f"{tag} untagged on the way to deleting image {short_id(image.id)}")
        self.delete(image, tags[-1] if tags else image.id, reason)
        kept = self.prune_parents(image, why_parent_stays)
        return sum(a["bytes"] for a in self.plan.actions[before:]), kept

    def prune_parents(self, image, why_parent_stays=None):
        """What `docker rmi` does without --no-prune: delete the legacy builder's untagged parents that nothing
        else needs. Planned as separate deletions by ID (the engine is called with noprune), children first.
        One rule on both stores: the containerd store's own prune also deletes a parent that another image
        still builds on (moby's c8d deleteAll checks no children); we keep it, as overlay2 does.

        WHY_PARENT_STAYS(parent) gives a reason to keep a parent the rules would delete (protection), or None.
        Returns the parents so kept, as (image, reason) pairs, for the caller to report."""
        parent = self.snapshot.images.get(image.parent_id)
        while parent and not self.gone(parent.id) and not self.references[parent.id] \
                and not self.containers(parent.id) and not self.children(parent.id):
            hold = why_parent_stays(parent) if why_parent_stays else None
            if hold:
                return [(parent, hold)]
            self.delete(parent, parent.id, f"untagged parent of {short_id(image.id)}, unused once it is gone (prune)")
            image, parent = parent, self.snapshot.images.get(parent.parent_id)
        return []
