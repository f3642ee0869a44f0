# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The prune planner: (snapshot, request) -> what `docker system prune` would remove, item by item. Pure.

Order, as `docker system prune`: containers first (so the images they held are freed in the same run, and the
prediction knows it), then images children first, networks, volumes, build cache. Our filters, not the engine's,
select; every selected item that must stay is reported with why.
"""

from __future__ import annotations

from collections import namedtuple

from ansible_collections.reclaim.docker.plugins.module_utils._model import short_id
from ansible_collections.reclaim.docker.plugins.module_utils._planning import Planning
from ansible_collections.reclaim.docker.plugins.module_utils._units import iso_time, parse_time

# The object types prune takes, in the order it removes them (each has an option and an <option>_filters).
OBJECT_TYPES = ("containers", "images", "networks", "volumes", "builder_cache")


class PruneRequest:
    """What a prune run asks for: the object types to prune (TYPES, in OBJECT_TYPES' order), each type's Filters
    (FILTERS), the Protection, and for build cache KEEP_ALL (builder_cache_all), KEEP_STORAGE (bytes or None) and
    BUILD_CACHE_UNTIL (the stricter of its until filter and min_age, or None). ASSUME_DELETED: image IDs an earlier
    check-mode task would delete (the plan counts the layers they share as freed)."""

    def __init__(self, types, filters, protection, keep_all=False, keep_storage=None, build_cache_until=None,
                 assume_deleted=()):
        self.types = [t for t in OBJECT_TYPES if t in types]
        self.filters = filters
        self.protection = protection
        self.keep_all = keep_all
        self.keep_storage = keep_storage
        self.build_cache_until = build_cache_until
        self.assume_deleted = list(assume_deleted)


# A volume's last use: TIME (Unix seconds, None when unknown) and SOURCE, what says so (ledger, containers, created or
# unknown).
LastUse = namedtuple("LastUse", ("time", "source"))
# Which source a volume's last use names when two give the same time: the most specific.
LAST_USE_SOURCES = ("created", "containers", "ledger")

# The object types pruned one object at a time by the same steps (candidates, select by our filters, the hold chain,
# the action), and what differs between them. LAST_USE(planner, object): the object's LastUse, for a kind that
# unused_for selects by it (its action carries it), or None.
Kind = namedtuple("Kind", ("item_type", "objects", "eligible", "created", "stopped", "users", "last_use", "add"))


def _remove_container(planning, container, _filters, _last_use):
    planning.images.remove_container(container, f"stopped container {container.describe()} matches containers_filters")


def _remove_network(planning, network, _filters, _last_use):
    planning.plan.add("remove_network", network=network.id, name=network.name, bytes=0,
                      reason=f"network {network.name} is unused and matches networks_filters")


def _remove_volume(planning, volume, filters, last_use):
    used = f", last used {iso_time(last_use.time)} ({last_use.source})" if "unused_for" in filters.values else ""
    planning.plan.add("remove_volume", volume=volume.name, name=volume.name, bytes=volume.size,
                      last_use=iso_time(last_use.time), last_use_source=last_use.source,
                      reason=f"{'anonymous' if volume.anonymous else 'named'} volume {volume.name} is unused{used} and "
                             "matches volumes_filters")


KINDS = dict(
    containers=Kind("container", lambda s: sorted(s.containers.values(), key=lambda c: (c.created, c.id)),
                    lambda c, filters: not c.running, lambda c: c.created, lambda c: c.stopped, None, None,
                    _remove_container),
    # Stricter than the engine, which counts only running containers (endpoints): a stopped container that stays
    # would not start again without its network.
    networks=Kind("network", lambda s: sorted(s.networks.values(), key=lambda n: (n.created or 0.0, n.id)),
                  lambda n, filters: not n.predefined, lambda n: n.created, lambda n: None, "networks", None,
                  _remove_network),
    volumes=Kind("volume", lambda s: sorted(s.volumes.values(), key=lambda v: (v.created or 0.0, v.name)),
                 lambda v, filters: v.anonymous or filters.first("all", False), lambda v: v.created, lambda v: None,
                 "volumes", lambda planner, v: planner.volume_last_use(v), _remove_volume),
)


class _PrunePlanner:
    def __init__(self, snapshot, request, approval):
        self.snapshot = snapshot
        self.request = request
        self.planning = Planning(snapshot, approval, request.protection)
        self.planning.images.assume_deleted(request.assume_deleted)
        # Who uses each network and volume, read once: networks and volumes are checked against these.
        self._users = {"networks": {}, "volumes": {}}
        for container in snapshot.containers.values():
            for attribute, users in self._users.items():
                for name in getattr(container, attribute):
                    users.setdefault(name, []).append(container)

    def plan(self):
        for object_type in self.request.types:
            if object_type == "images":
                self.images()
            elif object_type == "builder_cache":
                self.build_cache()
            else:
                self.objects(object_type, KINDS[object_type])
        return self.planning.plan

    def _remaining_users(self, attribute, name):
        """The containers that stay and have NAME among their ATTRIBUTE (networks, volumes)."""
        removed = self.planning.images.accounting.removed_containers
        return [c for c in self._users[attribute].get(name, ()) if c.id not in removed]

    def objects(self, object_type, kind):
        filters = self.request.filters[object_type]
        for item in kind.objects(self.snapshot):
            if not kind.eligible(item, filters):
                continue
            item_id = item.name if kind.item_type == "volume" else item.id
            users = self._remaining_users(kind.users, item.name) if kind.users else ()
            last_use = kind.last_use(self, item) if kind.last_use else None
            if self.planning.decide(kind.item_type, item_id, item.name,
                                    filters.selects(item.labels, kind.created(item), kind.stopped(item),
                                                    last_use.time if last_use else None),
                                    lambda: self.planning.hold(item_id, item.labels, kind.created(item), users=users)):
                kind.add(self.planning, item, filters, last_use)

    def volume_last_use(self, volume):
        # Every container present that mounts it counts, also one this run removes: it used the volume. Now is the
        # run's time, as protection has it.
        return volume_last_use(volume, self._users["volumes"].get(volume.name, ()),
                               self.snapshot.volume_last_use.get(volume.name), self.request.protection.now)

    def images(self):
        filters = self.request.filters["images"]
        images = self.planning.images
        dangling_only = filters.first("dangling", True)
        for image in sorted(self.snapshot.images.values(), key=lambda i: (i.created, i.id)):
            # Parents are pruned with their last child, as the engine does; only leaves are candidates.
            if images.gone(image.id) or images.children(image.id) or dangling_only and image.repo_tags:
                continue
            if not self.planning.decide(
                    "image", image.id, short_id(image.id), filters.matches(image.labels, image.created),
                    lambda: self.planning.hold(image.id, image.labels, image.created, image.repo_tags,
                                               users=images.containers(image.id))):
                continue
            what = "unused image" if image.repo_tags else "dangling image"
            _bytes, kept_parents = images.delete_unused(
                image, f"{what} {short_id(image.id)} matches images_filters",
                lambda parent: self.planning.hold(parent.id, parent.labels, parent.created, parent.repo_tags))
            for parent, hold in kept_parents:
                self.planning.skip("image", parent.id, short_id(parent.id), hold)

    def build_cache(self):
        """One engine call (BuildKit chooses the records); the plan carries our prediction from its records.

        Exact when only `until` (or min_age) selects; BuildKit's choice under keep_storage or other filters is
        estimated, and the result shows prediction and actual side by side. Under an approved plan, one call per
        approved record, by its ID (the module refuses keep_storage and an id filter there).
        """
        request, filters = self.request, self.request.filters["builder_cache"]
        # By ID: the engine lists them in no set order, and a check run and the real run must list them alike.
        records = sorted((r for r in self.snapshot.build_cache
                          if not r.get("InUse") and (request.keep_all or not r.get("Shared"))), key=lambda r: r["ID"])
        if request.build_cache_until is not None:
            records = [r for r in records if _used_before(r, request.build_cache_until)]
        exact = request.keep_storage is None and not set(filters.values) - {"until"}
        engine_filters = {k: v for k, v in filters.values.items() if k != "until"}
        reason = "build cache records not in use" + ("" if request.keep_all else ", not shared with images")
        plan = self.planning.plan
        if self.planning.approval.restricts:
            for record in _children_first(records):
                if self.planning.decide("build_cache", record["ID"], record["ID"], True,
                                        lambda: self.planning.approval.hold(record["ID"])):
                    plan.add("prune_build_cache", bytes=record.get("Size") or 0, records=1, exact=exact,
                             filters=dict(engine_filters, id=[record["ID"]]), until=request.build_cache_until,
                             keep_storage=None, all=request.keep_all, record_items=[_record_item(record)],
                             reason=f"build cache record {record['ID']}: approved, " + reason.replace("records", "record"))
            return
        predicted = sum(r.get("Size") or 0 for r in records)
        if request.keep_storage is not None:
            total = sum(r.get("Size") or 0 for r in self.snapshot.build_cache if request.keep_all or not r.get("Shared"))
            predicted = min(predicted, max(total - request.keep_storage, 0))
        plan.add("prune_build_cache", bytes=predicted, records=len(records), exact=exact, filters=engine_filters,
                 until=request.build_cache_until, keep_storage=request.keep_storage, all=request.keep_all,
                 record_items=[_record_item(r) for r in records], reason=reason)


def plan_prune(snapshot, request, approval=None):
    """What the prune REQUEST removes from SNAPSHOT, under APPROVAL (an Approval; None: everything it selects)."""
    return _PrunePlanner(snapshot, request, approval).plan()


def volume_last_use(volume, users, ledger_use, now):
    """When VOLUME was last used, and what says so (a LastUse): the latest of LEDGER_USE, the usage ledger's last use
    of its name (ledger); USERS, the containers present that mount it (containers: now, NOW, for a running one, else
    when it stopped); and its creation (created). Unknown when its creation time is (a volume created anew under a name
    used before must not look as old as the uses of the name), or when a stopped user's stop time is (the job reads
    them, _snapshot.load_stop_times): an unknown time never makes a volume look old."""
    if volume.created is None or any(not c.running and c.stopped is None for c in users):
        return LastUse(None, "unknown")
    known = [LastUse(volume.created, "created")]
    if users:
        known.append(LastUse(max(now if c.running else c.stopped for c in users), "containers"))
    if ledger_use is not None:
        known.append(LastUse(ledger_use, "ledger"))
    return max(known, key=lambda use: (use.time, LAST_USE_SOURCES.index(use.source)))


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
