"""The layer cache through Ansible, on real engines: written owner-only, used instead of the engine's per-image
reads, ignored when someone else owns it, off when asked."""

from __future__ import annotations

import json
import os
import stat

from harness import scenario

MODULE = "reclaim.docker.prune"


def build_pair(engine, prefix):
    """Two dangling images sharing a layer, so pricing them needs both layer chains."""
    spec = {"layers": {"shared": 300_000, "one": 100_000, "two": 50_000},
            "images": [{"name": name, "tags": [], "layers": ["shared", name], "labels": {"reclaim.test": prefix}}
                       for name in ("one", "two")]}
    return scenario.build(engine.docker_host, spec, prefix=prefix)


def cache_file(directory):
    [path] = [os.path.join(directory, f) for f in os.listdir(directory) if f.startswith("layers-")]
    return path


def test_the_cache_is_owner_only_and_answers_instead_of_the_engine(ansible, engine, prefix, tmp_path):
    built = build_pair(engine, prefix)
    directory = str(tmp_path / "cache")
    args = {"images": True, "images_filters": {"label": f"reclaim.test={prefix}"}, "layer_cache_dir": directory}
    first = ansible.module(MODULE, args, engine, check=True)
    assert sorted(first["images"]) == sorted(i["id"] for i in built.images.values())
    path = cache_file(directory)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    data = json.loads(open(path).read())
    ids = [i["id"] for i in built.images.values()]
    assert set(ids) <= set(data["images"])
    freed_layers = {c for i in ids for c in data["images"][i]} - {
        c for other, chains in data["images"].items() if other not in ids for c in chains}
    real_sizes = sum(data["layers"][c] for c in freed_layers)
    # Rewrite every layer size to 1 byte: a run that still asked the engine would report the real sizes. The rest of
    # the bytes (content blobs on the containerd store) stay as they were.
    data["layers"] = {chain: 1 for chain in data["layers"]}
    with open(path, "w") as handle:
        json.dump(data, handle)
    from_cache = ansible.module(MODULE, args, engine, check=True)
    assert from_cache["reclaimed_bytes"] == first["reclaimed_bytes"] - real_sizes + len(freed_layers)
    # Off: the engine answers, and no cache is written (the usage ledger, kept next to it, still is).
    os.remove(path)
    uncached = ansible.module(MODULE, dict(args, layer_cache=False), engine, check=True)
    assert uncached["reclaimed_bytes"] == first["reclaimed_bytes"]
    assert not [name for name in os.listdir(directory) if name.startswith("layers-")]


def test_a_cache_someone_else_owns_is_ignored_with_a_warning(ansible, engine, prefix, tmp_path):
    build_pair(engine, prefix)
    directory = str(tmp_path / "cache")
    args = {"images": True, "images_filters": {"label": f"reclaim.test={prefix}"}, "layer_cache_dir": directory}
    first = ansible.module(MODULE, args, engine, check=True)
    path = cache_file(directory)
    data = json.loads(open(path).read())
    data["layers"] = {chain: 1 for chain in data["layers"]}
    with open(path, "w") as handle:
        json.dump(data, handle)
    os.chown(path, 12345, 12345)
    second = ansible.module(MODULE, args, engine, check=True)
    assert second["reclaimed_bytes"] == first["reclaimed_bytes"]
    assert any("layer cache" in w.lower() for w in second.get("warnings", [])), second.get("warnings")
    assert os.stat(path).st_uid == 12345, "a foreign cache is never written"
