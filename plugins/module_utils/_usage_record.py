# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""What a module run records in the usage ledger: the uses of images and volumes its snapshot's containers show (a
running one now, a stopped one when it stopped or was created) and those of the engine's container and volume events
since the previous run (a container created and removed in between, `docker run --rm`). The snapshot then gets every
last use the ledger knows. Check mode too: the ledger is host-local state, like the layer cache. Nothing here fails the
run."""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec
from ansible_collections.reclaim.docker.plugins.module_utils._transport import APIError
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import event_uses, event_volume_uses


def usage_ledger_argument_spec():
    """The ledger options of the modules that read containers (see the _usage_ledger doc fragment). Here, not in
    _usage_ledger.py: the usage tracker runs that file on the Docker host without Ansible."""
    return ArgumentSpec(dict(
        usage_ledger=dict(type="bool", default=True),
        usage_ledger_dir=dict(type="path"),
    ))


def record_uses(client, snapshot, ledger, now):
    """Record in LEDGER what SNAPSHOT and the engine's events up to NOW show in use; set snapshot.last_use and
    snapshot.volume_last_use. Returns the problems met, one sentence each, for the module to warn about."""
    problems = []
    # Whole seconds, as the API takes them; the next run starts at this second again (a use counts once as well as
    # twice: the latest wins).
    until = int(now)
    try:
        events = client.events(since=int(ledger.events_until or 0), until=until,
                               filters={"type": ["container", "volume"]})
    except (APIError, OSError) as exc:
        events, until = [], None
        problems.append(f"Could not read the engine's events for the usage ledger: {exc}")

    def image_of_container(container_id):
        container = snapshot.containers.get(container_id)
        return container.image_id if container else None

    def resolve(reference):
        try:
            found = snapshot.resolve(reference) if reference else None
        except ValueError:
            return None
        return found[1].id if found else None

    def volumes_of_container(container_id):
        container = snapshot.containers.get(container_id)
        return container.volumes if container else ()

    uses = event_uses(events, image_of_container, resolve)
    volume_uses = event_volume_uses(events, volumes_of_container)
    for container in snapshot.containers.values():
        seen = now if container.running else (container.stopped or container.created)
        if not seen:
            continue
        for used, key in [(uses, container.image_id)] + [(volume_uses, name) for name in container.volumes]:
            if seen > used.get(key, float("-inf")):
                used[key] = seen
    ledger.record(uses, events_until=until, now=now, volume_uses=volume_uses)
    snapshot.last_use = dict(ledger.last_use)
    snapshot.volume_last_use = dict(ledger.volume_last_use)
    return problems + list(ledger.problems)
