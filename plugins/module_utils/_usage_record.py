# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""What a module run records in the usage ledger: the uses its snapshot's containers show (a running one now, a
stopped one when it stopped or was created) and those of the engine's container events since the previous run (a
container created and removed in between, `docker run --rm`). The snapshot then gets every last use the ledger knows.
Check mode too: the ledger is host-local state, like the layer cache. Nothing here fails the run."""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._transport import APIError
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import event_uses


def record_uses(client, snapshot, ledger, now):
    """Record in LEDGER what SNAPSHOT and the engine's events up to NOW show in use; set snapshot.last_use. Returns
    the problems met, one sentence each, for the module to warn about."""
    problems = []
    # Whole seconds, as the API takes them; the next run starts at this second again (a use counts once as well as
    # twice: the latest wins).
    until = int(now)
    try:
        events = client.events(since=int(ledger.events_until or 0), until=until, filters={"type": ["container"]})
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

    uses = event_uses(events, image_of_container, resolve)
    for container in snapshot.containers.values():
        seen = now if container.running else (container.stopped or container.created)
        if seen and seen > uses.get(container.image_id, float("-inf")):
            uses[container.image_id] = seen
    ledger.record(uses, events_until=until, now=now)
    snapshot.last_use = dict(ledger.last_use)
    return problems + list(ledger.problems)
