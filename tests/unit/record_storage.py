"""Record what the root-dir accounting reads from real engines, for the unit tests (tests/unit/plugins/module_utils/
storage/): per flavour, the walk's units and the storage index of a small host (images, a running and a stopped
container, a volume, a BuildKit build), du -sx of its root dir, and the bbolt
databases read (gzipped: their free pages are zeros).

    RECLAIM_ENGINE_STATE=/tmp/re-rec PYTHONPATH=tests:.collections .venv/bin/python tests/unit/record_storage.py
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

from harness import engines, scenario

from ansible_collections.reclaim.docker.plugins.module_utils._disk_walk import walk
from ansible_collections.reclaim.docker.plugins.module_utils._root_dir import descend
from ansible_collections.reclaim.docker.plugins.module_utils._storage_index import read_index

OUT = Path(__file__).resolve().parent / "plugins" / "module_utils" / "storage"
SPEC = {
    "layers": {"a": 300_000, "b": 200_000},
    "images": [{"name": "used", "tags": ["rec/used:1"], "layers": ["a"]},
               {"name": "idle", "tags": ["rec/idle:1"], "layers": ["b"]}],
    "containers": [{"name": "up", "image": "rec/used:1", "state": "running"},
                   {"name": "down", "image": "rec/used:1", "state": "exited", "writable_bytes": 100_000}],
    "volumes": [{"name": "data", "bytes": 50_000}],
    "builds": [{"name": "bk", "tags": ["rec/bk:1"], "files": {"f1": 100_000}}],
}
DATABASES = {
    "28.5": {"buildkit-snapshots.db": "buildkit/snapshots.db"},
    "28.5-containerd": {"meta.db": "containerd/daemon/io.containerd.metadata.v1.bolt/meta.db",
                        "snapshotter.db": "containerd/daemon/io.containerd.snapshotter.v1.overlayfs/metadata.db"},
}


def record(flavour):
    engine = engines.start(flavour, f"rec{flavour.replace('.', '').replace('-containerd', 'c')}")
    try:
        scenario.build(engine.docker_host, SPEC, prefix="rec")
        root = str(engine.data_root)
        found = walk(root, descend)
        du = int(subprocess.run(["du", "-sx", "--block-size=1", root], capture_output=True, text=True,
                                check=True).stdout.split()[0])
        units = {path: unit.as_dict() for path, unit in found.units.items()}
        data = {"flavour": flavour, "root": root, "du": du, "units": units, "index": read_index(root).as_dict()}
        (OUT / f"{flavour}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        for name, relative in DATABASES.get(flavour, {}).items():
            with open(engine.data_root / relative, "rb") as source, gzip.open(OUT / f"{flavour}.{name}.gz", "wb") as out:
                shutil.copyfileobj(source, out)
    finally:
        engines.stop(engine)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for flavour in engines.FLAVOURS:
        record(flavour)
