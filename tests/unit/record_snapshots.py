"""Record the engine snapshots the unit tests plan against, and what the engines really freed.

Run by hand (needs root and the private engines of tests/harness/engines.py), from the repository root:

    .venv/bin/python tests/unit/record_snapshots.py            # every flavour
    .venv/bin/python tests/unit/record_snapshots.py 28.5       # one flavour

For each flavour it starts a private engine (named ``ut-rec-*``, stopped afterwards), builds SPEC with
``scenario.build`` (prefix ``rec``), reads ``read_snapshot`` + ``load_layers`` for every image and writes
``tests/unit/plugins/module_utils/snapshots/<flavour>.json`` (``Snapshot.to_dict()``).

It then measures REMOVALS on the engine itself: for each case the scenario is torn down and rebuilt (same
spec and prefix: the same image IDs), the listed containers are removed and the listed names are removed with
``DELETE /images`` (prune on, as ``docker rmi``), and the drop of ``/system/df`` LayersSize and of the removed
containers' SizeRw is written to ``snapshots/<flavour>.expected.json``; on the containerd store also
PLATFORM_REMOVALS, one platform's content each, measured once containerd's collector has run. The unit tests
assert that the planner's bytes equal those drops. (On the containerd store LayersSize counts a container's
writable and init snapshots too; on overlay2 it does not, and SizeRw is the writable layer.)

On the containerd store it also copies what the unit tests read of containerd's content store into
``snapshots/28.5-containerd.root/`` (laid out as Docker's root dir): every index and manifest blob the images
list, and an empty file for each config and layer blob (only their presence is read).

Also on overlay2 (``<flavour>.orphaned.json``): an image force-untagged while a stopped container uses it
(``docker rmi -f``: the record goes, the container keeps the layers), then the snapshot a later run reads,
then what removing an image that shares layers with that container really frees: the layer chain IDs the
engine lists as Deleted, the LayersSize drop and the ``du -sb`` drop of the data root.

The JSON files are committed; re-run this only when the snapshot format or the scenario changes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT / ".collections"), str(ROOT / "tests")]

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # noqa: E402

from ansible_collections.reclaim.docker.plugins.module_utils._connection import (  # noqa: E402
    connect,
    connection_argument_spec,
)
from ansible_collections.reclaim.docker.plugins.module_utils._content_store import (  # noqa: E402
    BLOBS_UNDER_ROOT,
    DOCKERD_CONTAINERD_ROOT,
)
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import LayerCache  # noqa: E402
from ansible_collections.reclaim.docker.plugins.module_utils._snapshot import load_layers, read_snapshot  # noqa: E402
from harness import engines, scenario  # noqa: E402

OUT = HERE / "plugins" / "module_utils" / "snapshots"
PREFIX = "rec"
ENGINE_NAMES = {"20.10": "ut-rec20", "28.5": "ut-rec28", "28.5-containerd": "ut-recc8"}

SPEC = {
    "layers": {"S": 3_000_000, "X": 2_500_000, "k1-own": 1_500_000, "d1-own": 2_000_000, "d3-own": 500_000,
               "d4-own": 700_000, "run-own": 400_000, "stop-own": 300_000, "multi-own": 200_000,
               "dang-own": 150_000},
    "images": [
        {"name": "k1", "tags": ["lab/k1:1"], "layers": ["S", "k1-own"]},
        {"name": "d1", "tags": ["lab/d1:1", "lab/d1:2"], "layers": ["S", "d1-own"]},
        {"name": "d3", "tags": ["lab/d3:1"], "layers": ["X", "d3-own"]},
        {"name": "d4", "tags": ["lab/d4:1"], "layers": ["X", "d4-own"]},
        {"name": "run", "tags": ["lab/run:1"], "layers": ["run-own"]},
        {"name": "stop", "tags": ["lab/stop:1"], "layers": ["stop-own"]},
        {"name": "multi", "tags": ["lab/multi:1", "lab/multi:2", "other/multi:1"], "layers": ["multi-own"]},
        {"name": "dang", "tags": [], "layers": ["dang-own"]},
    ],
    "containers": [
        {"name": "web", "image": "lab/run:1", "state": "running", "writable_bytes": 10_000},
        {"name": "halted", "image": "lab/stop:1", "state": "exited", "writable_bytes": 50_000},
    ],
}
# Containerd store only: mp2's index holds exactly mp1's linux/amd64 manifest, so the two share that variant;
# part's index lists a platform pulled in part (its manifest only) and one not pulled at all.
MULTIPLATFORM = [
    {"name": "mp", "tag": "lab/mp:1", "platforms": ["linux/amd64", "linux/arm64"], "size": 300_000},
    {"name": "mp", "tag": "lab/mp-amd64:1", "platforms": ["linux/amd64"], "size": 300_000},
    {"name": "part", "tag": "lab/part:1", "platforms": ["linux/amd64", "linux/arm64", "linux/s390x"], "size": 200_000,
     "manifest_only": ["linux/arm64"], "missing": ["linux/s390x"]},
]
CONTAINERD = "28.5-containerd"

# name -> (names removed in order, containers removed first, force). Names are spec tags (prefixed here)
# or "id:<image>" for the image's 12-hex short ID.
REMOVALS = {
    "d1_both_tags": (["lab/d1:1", "lab/d1:2"], [], False),
    "d3_and_d4": (["lab/d3:1", "lab/d4:1"], [], False),
    "d3_only": (["lab/d3:1"], [], False),
    "k1_and_d1": (["lab/k1:1", "lab/d1:1", "lab/d1:2"], [], False),
    "multi_one_tag": (["lab/multi:1"], [], False),
    "multi_by_id_forced": (["id:multi"], [], True),
    "dangling_by_id": (["id:dang"], [], False),
    "stopped_with_container": (["lab/stop:1"], ["halted"], False),
}
# Containerd store only: name -> (reference, platform).
PLATFORM_REMOVALS = {
    "mp_arm64": ("lab/mp:1", "linux/arm64"),
    "mp_amd64_shared": ("lab/mp:1", "linux/amd64"),   # mp-amd64 loses it too
    "part_arm64_in_part": ("lab/part:1", "linux/arm64"),
    "part_amd64": ("lab/part:1", "linux/amd64"),
}
# containerd collects a removed platform's content about 2 s after the call.
COLLECTOR_WAIT = 4


def client_for(engine):
    params = ArgumentSpecValidator(connection_argument_spec().argument_spec).validate(
        {"docker_host": engine.docker_host}).validated_parameters
    return connect(params)


def record(engine, built):
    client = client_for(engine)
    snapshot = read_snapshot(client)
    load_layers(client, snapshot, list(snapshot.images), LayerCache(None))
    assert snapshot.inexact_reason is None, snapshot.inexact_reason
    return snapshot


def resolve_name(name, built):
    if name.startswith("id:"):
        return built.images[name[3:]]["id"].split(":", 1)[1][:12]
    return f"{PREFIX}/{name}"


def measure(engine, built, names, containers, force):
    api = scenario.client(engine.docker_host)
    before = api.df()
    rw = {c["Id"]: c.get("SizeRw") or 0 for c in before["Containers"]}
    removed_rw = 0
    for container in containers:
        removed_rw += rw[built.containers[container]]
        api.remove_container(built.containers[container], v=True)
    responses = [api.remove_image(resolve_name(name, built), force=force) for name in names]
    after = api.df()
    return {"names": [resolve_name(n, built) if not n.startswith("id:") else n for n in names],
            "containers": [f"{PREFIX}-{c}" for c in containers], "force": force,
            "layers_size_drop": before["LayersSize"] - after["LayersSize"], "containers_size_rw": removed_rw,
            "engine_response": responses}


def measure_platform(engine, _built, reference, platform):
    api = scenario.client(engine.docker_host)
    before = api.df()["LayersSize"]
    os_, architecture = platform.split("/")
    response = api._result(api._delete(api._url("/images/{0}", f"{PREFIX}/{reference}"), params={
        "force": 1, "noprune": 1, "platforms": json.dumps({"os": os_, "architecture": architecture})}), json=True)
    time.sleep(COLLECTOR_WAIT)
    return {"reference": f"{PREFIX}/{reference}", "platform": platform, "engine_response": response,
            "layers_size_drop": before - api.df()["LayersSize"]}


def record_content_store(engine, snapshot):
    """What load_content reads of containerd's content store, under OUT/<flavour>.root as under Docker's root dir."""
    source = Path(engine.data_root, DOCKERD_CONTAINERD_ROOT, BLOBS_UNDER_ROOT)
    target = OUT / f"{CONTAINERD}.root" / DOCKERD_CONTAINERD_ROOT / BLOBS_UNDER_ROOT
    shutil.rmtree(OUT / f"{CONTAINERD}.root", ignore_errors=True)
    target.mkdir(parents=True)
    for image in snapshot.images.values():
        for digest in [image.id] + [m["digest"] for m in image.manifests]:
            blob = source / digest.split(":", 1)[1]
            if not blob.exists():
                continue
            (target / blob.name).write_bytes(blob.read_bytes())
            manifest = json.loads(blob.read_bytes())
            for descriptor in [manifest.get("config")] + list(manifest.get("layers") or []):
                if descriptor and (source / descriptor["digest"].split(":", 1)[1]).exists():
                    (target / descriptor["digest"].split(":", 1)[1]).touch()


ORPHAN_SPEC = {
    "layers": {"S": 3_000_000, "a-own": 100_000, "b-own": 200_000},
    "images": [{"name": "a", "tags": ["lab/a:1"], "layers": ["S", "a-own"]},
               {"name": "b", "tags": ["lab/b:1"], "layers": ["S", "b-own"]}],
    "containers": [{"name": "halted", "image": "lab/a:1", "state": "exited", "writable_bytes": 1_000}],
}


def du(path):
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def record_orphan(engine):
    """A container orphaned by `rmi -f` keeps layers that no listed image names."""
    api = scenario.client(engine.docker_host)
    scenario.build(engine.docker_host, ORPHAN_SPEC, prefix="orph")
    force_untag = api.remove_image("orph/lab/a:1", force=True)
    snapshot = record(engine, None)
    before_df, before_du = api.df()["LayersSize"], du(engine.data_root)
    response = api.remove_image("orph/lab/b:1")
    return {"snapshot": snapshot.to_dict(), "force_untag_response": force_untag,
            "removal": {"names": ["orph/lab/b:1"], "engine_response": response,
                        "layers_size_drop": before_df - api.df()["LayersSize"],
                        "du_drop": before_du - du(engine.data_root)}}


def teardown(engine, built):
    """scenario.teardown, for a scenario whose containers a removal case may have removed already, and every image
    tagged with the prefix."""
    api = scenario.client(engine.docker_host)
    existing = {c["Id"] for c in api.containers(all=True)}
    built.containers = {name: cid for name, cid in built.containers.items() if cid in existing}
    scenario.teardown(engine.docker_host, built)
    # Two multiplatform specs of one name (sharing their layers) are one entry of built.multiplatform.
    for image in api.images():
        if any(tag.startswith(f"{PREFIX}/") for tag in image.get("RepoTags") or ()):
            api.remove_image(image["Id"], force=True)


def main(flavours):
    OUT.mkdir(parents=True, exist_ok=True)
    for flavour in flavours:
        engine = engines.start(flavour, ENGINE_NAMES[flavour])
        try:
            spec = dict(SPEC)
            if flavour == CONTAINERD:
                spec["multiplatform"] = MULTIPLATFORM
            built = scenario.build(engine.docker_host, spec, prefix=PREFIX)
            snapshot = record(engine, built)
            ids = {name: image["id"] for name, image in built.images.items()}
            (OUT / f"{flavour}.json").write_text(json.dumps(snapshot.to_dict(), indent=1, sort_keys=True) + "\n")
            print(f"{flavour}: {len(snapshot.images)} images, {len(snapshot.containers)} containers")
            if flavour == CONTAINERD:
                record_content_store(engine, snapshot)
            expected = {"spec_ids": ids, "removals": {}, "platform_removals": {}}
            cases = [("removals", case, measure, args) for case, args in REMOVALS.items()]
            if flavour == CONTAINERD:
                cases += [("platform_removals", case, measure_platform, args) for case, args in PLATFORM_REMOVALS.items()]
            for kind, case, measure_case, args in cases:
                teardown(engine, built)
                built = scenario.build(engine.docker_host, spec, prefix=PREFIX)
                assert {n: i["id"] for n, i in built.images.items()} == ids, "rebuild changed image IDs"
                expected[kind][case] = measure_case(engine, built, *args)
                print(f"  {case}: {expected[kind][case]['layers_size_drop']}")
            (OUT / f"{flavour}.expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
            teardown(engine, built)
            if flavour == CONTAINERD:
                continue
            orphan = record_orphan(engine)
            (OUT / f"{flavour}.orphaned.json").write_text(json.dumps(orphan, indent=1, sort_keys=True) + "\n")
            removal = orphan["removal"]
            print(f"  orphaned: LayersSize drop {removal['layers_size_drop']}, du drop {removal['du_drop']}")
        finally:
            engines.stop(engine)


if __name__ == "__main__":
    main(sys.argv[1:] or list(engines.FLAVOURS))
