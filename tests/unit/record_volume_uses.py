"""Record what the engines show of volume uses, for the ledger's and the prune planner's unit tests.

Run by hand (needs root and the private engines of tests/harness/engines.py), from the repository root:

    .venv/bin/python tests/unit/record_volume_uses.py            # every flavour
    .venv/bin/python tests/unit/record_volume_uses.py 28.5       # one flavour

For each flavour it starts a private engine (named ``ut-vol-*``, stopped afterwards) and builds, with
``scenario.build`` (prefix ``vol``): anonymous volumes ``old`` and ``recent`` and a named volume ``named``, each
written by a helper container that is removed without its volumes (as ``docker rm``), and a stopped container
``holder`` with an anonymous volume of its own (``held``). GAP_SECONDS later, a ``docker run --rm`` container mounts
``recent`` and ``named`` by name, and a new anonymous volume that it takes along when it is removed. Once it is gone,
it writes ``tests/unit/plugins/module_utils/snapshots/<flavour>.volumes.json``: the snapshot (``read_snapshot`` with
volumes and the stop times of the stopped containers that mount one, as prune reads them; ``Snapshot.to_dict()``),
every container and volume event since the scenario began (``GET /events``, as the modules read them), the volumes'
names, the ``--rm`` container's ID, the recording time and the gap.

The JSON files are committed; re-run this only when the snapshot format or the scenario changes.
"""

from __future__ import annotations

import json
import sys
import time

from record_snapshots import OUT, client_for

from ansible_collections.reclaim.docker.plugins.module_utils._snapshot import load_stop_times, read_snapshot
from harness import engines, scenario

PREFIX = "vol"
ENGINE_NAMES = {"20.10": "ut-vol20", "28.5": "ut-vol28", "28.5-containerd": "ut-volc8"}
GAP_SECONDS = 5
SPEC = {
    "images": [{"name": "img", "tags": ["lab/img:1"], "layers": ["i"]}],
    "volumes": [{"name": "old", "anonymous": True, "bytes": 70_000},
                {"name": "recent", "anonymous": True, "bytes": 50_000},
                {"name": "named", "bytes": 30_000}],
    "containers": [{"name": "holder", "image": "img", "state": "exited", "volumes": ["/held"]}],
}


def run_and_remove(api, image, binds):
    """`docker run --rm -v NAME:/path ... -v /scratch IMAGE true`, gone on return."""
    host_config = api.create_host_config(network_mode="none", auto_remove=True, binds=binds)
    container = api.create_container(image, command=["true"], volumes=["/scratch"], network_disabled=True,
                                     host_config=host_config)["Id"]
    api.start(container)
    deadline = time.monotonic() + 30
    while any(c["Id"] == container for c in api.containers(all=True)):
        assert time.monotonic() < deadline, "the --rm container was not removed"
        time.sleep(0.1)
    return container


def record(flavour):
    engine = engines.start(flavour, ENGINE_NAMES[flavour])
    try:
        api = scenario.client(engine.docker_host)
        began = int(time.time()) - 1
        built = scenario.build(engine.docker_host, SPEC, prefix=PREFIX)
        holder = api.inspect_container(built.containers["holder"])
        volumes = dict(built.volumes, held=next(m["Name"] for m in holder["Mounts"] if m["Destination"] == "/held"))
        time.sleep(GAP_SECONDS)
        rm_container = run_and_remove(api, built.images["img"]["id"],
                                      [f"{volumes['recent']}:/recent", f"{volumes['named']}:/named"])
        client = client_for(engine)
        recorded_at = time.time()
        snapshot = read_snapshot(client, volumes=True)
        load_stop_times(client, [c for c in snapshot.containers.values() if not c.running and c.volumes])
        events = client.events(since=began, until=int(recorded_at) + 1, filters={"type": ["container", "volume"]})
        data = {"snapshot": snapshot.to_dict(), "events": events, "volumes": volumes, "rm_container": rm_container,
                "recorded_at": recorded_at, "gap_seconds": GAP_SECONDS}
        (OUT / f"{flavour}.volumes.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"{flavour}: {len(snapshot.volumes)} volumes, {len(events)} events")
    finally:
        engines.stop(engine)


if __name__ == "__main__":
    for name in sys.argv[1:] or engines.FLAVOURS:
        record(name)
