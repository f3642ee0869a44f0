# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The prune planner: (snapshot, filters, protection) -> what `docker system prune` would remove, item by item. Pure.

Order, as `docker system prune`: containers first (so the images they held are freed in the same run, and the
prediction knows it), then images children first, networks, volumes, build cache. Our filters, not the engine's,
select; every selected item that must stay is reported with why.
"""

from __future__ import annotations

import datetime

from ansible_collections.reclaim.docker.plugins.module_utils._approval import Approval
from ansible_collections.reclaim.docker.plugins.module_utils._filters import UNKNOWN_STOP, UNKNOWN_TIME, Hold
from ansible_collections.reclaim.docker.plugins.module_utils._model import short_id
from ansible_collections.reclaim.docker.plugins.module_utils._plan import ImageDeletion, Plan, describe_containers
from ansible_collections.reclaim.docker.plugins.module_utils._units import parse_time

# Which source a volume's last use names when two give the same time: the most specific.
LAST_USE_SOURCES = ("created", "containers", "ledger")


class PrunePlanner:
    def __init__(self, snapshot, protection, approval=None):
        self.snapshot = snapshot
        self.protection = protection
        self.approval = approval or Approval()
        self.plan = Plan()
        self.images_left = ImageDeletion(snapshot, self.plan)
        # Who uses each network and volume, read once: networks and volumes are checked against these.
        self._users = {"networks": {}, "volumes": {}}
        for container in snapshot.containers.values():
            for attribute, users in self._users.items():
                for name in getattr(container, attribute):
                    users.setdefault(name, []).append(container)

    def _skip(self, item_type, item_id, name, hold):
        self.plan.withhold(item_type, item_id, name, hold)

    def _selected(self, filters, item_type, item_id, name, labels, created, stopped=None, last_used=None):
        """Whether FILTERS select the object; one that only an unknown time keeps out is reported. A volume's last use
        is unknown only when its creation time is."""
        if filters.matches(labels, created, stopped, last_used):
            return True
        if None in (created, stopped, last_used) and filters.matches(labels, created or 0.0, stopped or 0.0,
                                                                     last_used or 0.0):
            self._skip(item_type, item_id, name, UNKNOWN_TIME if created is None else UNKNOWN_STOP)
        return False

    def _why_it_stays(self, item_id, labels, created, users, references=()):
        """Protected, too young, used by containers that stay, or not approved: a Hold, or None."""
        hold = self.protection.hold(labels, created, references)
        if hold is None and users:
            hold = Hold("in_use", f"in use by container(s) {describe_containers(sorted(users, key=lambda c: c.name))}")
        return hold or self.approval.hold(item_id, references)

    def _remaining_users(self, attribute, name):
        """The containers that stay and have NAME among their ATTRIBUTE (networks, volumes)."""
        removed = self.images_left.accounting.removed_containers
        return [c for c in self._users[attribute].get(name, ()) if c.id not in removed]

    def _why_image_stays(self, image):
        return self.protection.hold(image.labels, image.created, image.repo_tags) \
            or self.approval.hold(image.id, image.repo_tags)

    def containers(self, filters):
        for container in sorted(self.snapshot.containers.values(), key=lambda c: (c.created, c.id)):
            if container.running or not self._selected(filters, "container", container.id, container.name,
                                                       container.labels, container.created, container.stopped):
                continue
            hold = self.protection.hold(container.labels, container.created) or self.approval.hold(container.id)
            if hold:
                self._skip("container", container.id, container.name, hold)
                continue
            self.images_left.remove_container(container, f"stopped container {container.describe()} matches "
                                                         "containers_filters")

    def images(self, filters):
        dangling_only = filters.first("dangling", True)
        for image in sorted(self.snapshot.images.values(), key=lambda i: (i.created, i.id)):
            # Parents are pruned with their last child, as the engine does; only leaves are candidates.
            if self.images_left.gone(image.id) or self.images_left.children(image.id):
                continue
            if dangling_only and image.repo_tags or not filters.matches(image.labels, image.created):
                continue
            hold = self._why_it_stays(image.id, image.labels, image.created, self.images_left.containers(image.id),
                                      image.repo_tags)
            if hold:
                self._skip("image", image.id, short_id(image.id), hold)
                continue
            what = "unused image" if image.repo_tags else "dangling image"
            _bytes, kept_parents = self.images_left.delete_unused(
                image, f"{what} {short_id(image.id)} matches images_filters", self._why_image_stays)
            for parent, hold in kept_parents:
                self._skip("image", parent.id, short_id(parent.id), hold)

    def networks(self, filters):
        for network in sorted(self.snapshot.networks.values(), key=lambda n: (n.created or 0.0, n.id)):
            if network.predefined or not self._selected(filters, "network", network.id, network.name, network.labels,
                                                        network.created):
                continue
            # Stricter than the engine, which counts only running containers (endpoints): a stopped container
            # that stays would not start again without its network.
            hold = self._why_it_stays(network.id, network.labels, network.created,
                                      self._remaining_users("networks", network.name))
            if hold:
                self._skip("network", network.id, network.name, hold)
                continue
            self.plan.add("remove_network", network=network.id, name=network.name, bytes=0,
                          reason=f"network {network.name} is unused and matches networks_filters")

    def volumes(self, filters):
        named_too = filters.first("all", False)
        for volume in sorted(self.snapshot.volumes.values(), key=lambda v: (v.created or 0.0, v.name)):
            if not (volume.anonymous or named_too):
                continue
            last_used, source = volume_last_use(self.snapshot, volume, self._users["volumes"].get(volume.name, ()),
                                                self.protection.now)
            if not self._selected(filters, "volume", volume.name, volume.name, volume.labels, volume.created,
                                  last_used=last_used):
                continue
            hold = self._why_it_stays(volume.name, volume.labels, volume.created,
                                      self._remaining_users("volumes", volume.name))
            if hold:
                self._skip("volume", volume.name, volume.name, hold)
                continue
            used = f", last used {_iso(last_used)} ({source})" if "unused_for" in filters.values else ""
            self.plan.add("remove_volume", volume=volume.name, name=volume.name, bytes=volume.size,
                          last_use=_iso(last_used), last_use_source=source or "unknown",
                          reason=f"{'anonymous' if volume.anonymous else 'named'} volume {volume.name} is unused"
                                 f"{used} and matches volumes_filters")

    def build_cache(self, filters, keep_all, keep_storage, until):
        """One engine call (BuildKit chooses the records); the plan carries our prediction from its records.

        Exact when only `until` (or min_age) selects; BuildKit's choice under keep_storage or other filters is
        estimated, and the result shows prediction and actual side by side. Under an approved plan, one call per
        approved record, by its ID (the module refuses keep_storage and an id filter there).
        """
        # By ID: the engine lists them in no set order, and a check run and the real run must list them alike.
        records = sorted((r for r in self.snapshot.build_cache if not r.get("InUse") and (keep_all or not r.get("Shared"))),
                         key=lambda r: r["ID"])
        if until is not None:
            records = [r for r in records if _used_before(r, until)]
        exact = keep_storage is None and not set(filters.values) - {"until"}
        engine_filters = {k: v for k, v in filters.values.items() if k != "until"}
        reason = "build cache records not in use" + ("" if keep_all else ", not shared with images")
        if self.approval.restricts:
            for record in _children_first(records):
                hold = self.approval.hold(record["ID"])
                if hold:
                    self._skip("build_cache", record["ID"], record["ID"], hold)
                    continue
                self.plan.add("prune_build_cache", bytes=record.get("Size") or 0, records=1, exact=exact,
                              filters=dict(engine_filters, id=[record["ID"]]), until=until, keep_storage=None,
                              all=keep_all, record_items=[_record_item(record)],
                              reason=f"build cache record {record['ID']}: approved, " + reason.replace("records", "record"))
            return
        predicted = sum(r.get("Size") or 0 for r in records)
        if keep_storage is not None:
            total = sum(r.get("Size") or 0 for r in self.snapshot.build_cache if keep_all or not r.get("Shared"))
            predicted = min(predicted, max(total - keep_storage, 0))
        self.plan.add("prune_build_cache", bytes=predicted, records=len(records), exact=exact, filters=engine_filters,
                      until=until, keep_storage=keep_storage, all=keep_all,
                      record_items=[_record_item(r) for r in records], reason=reason)


def volume_last_use(snapshot, volume, users, now):
    """When VOLUME was last used, and what says so: the latest of the usage ledger's last use (ledger), the containers
    present that mount it, USERS (containers: now for a running one, else when it stopped or was created), and its
    creation (created). (None, None) when its creation time is unknown: a volume created anew under a name used before
    must not look as old as the uses of the name."""
    if volume.created is None:
        return None, None
    known = [(volume.created, "created")]
    if users:
        known.append((max(now if c.running else (c.stopped or c.created) for c in users), "containers"))
    if volume.name in snapshot.volume_last_use:
        known.append((snapshot.volume_last_use[volume.name], "ledger"))
    return max(known, key=lambda use: (use[0], LAST_USE_SOURCES.index(use[1])))


def _iso(seconds):
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _children_first(records):
    """RECORDS, each before the records it builds on: BuildKit keeps a record while another one builds on it, so a
    parent pruned first would stay. By their Parents where the engine lists them, else newest first (a build step's
    record is created after the one it builds on; API 1.51 lists no Parents)."""
    parents = {r["ID"]: list(r.get("Parents") or ([r["Parent"]] if r.get("Parent") else [])) for r in records}
    depths = {}

    def depth(record_id, seen=()):
        if record_id not in depths:
            depths[record_id] = 1 + max((depth(p, seen + (record_id,)) for p in parents.get(record_id, ())
                                         if p not in seen), default=0)
        return depths[record_id]
    return sorted(records, key=lambda r: (-depth(r["ID"]), -(parse_time(r.get("CreatedAt")) or 0.0), r["ID"]))


def _record_item(record):
    return dict(id=record["ID"], name=record["ID"], bytes=record.get("Size") or 0)


def _used_before(record, until):
    # A record of unknown time is new here (BuildKit, which may know better, decides in the end: a prediction).
    last_used = parse_time(record.get("LastUsedAt") or record.get("CreatedAt"))
    return last_used is not None and last_used < until
