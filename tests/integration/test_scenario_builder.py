"""The scenario builder makes exactly the state it promises, on every engine flavour."""

import os
import threading

import pytest

from harness import engines, scenario

SPEC = {
    "layers": {"S": 3_000_000, "X": 2_500_000, "k1-own": 1_500_000, "d1-own": 2_000_000, "old-own": 500_000},
    "images": [
        {"name": "k1", "tags": ["lab/k1:1", "lab/k1:latest", "mirror/k1:1"], "layers": ["S", "k1-own"],
         "created": "2019-05-01T00:00:00Z", "labels": {"keep": "yes"}},
        {"name": "d1", "tags": ["lab/d1:1"], "layers": ["S", "d1-own"]},
        {"name": "old", "tags": [], "layers": ["X", "old-own"], "created": "2018-01-01T00:00:00Z"},
    ],
}
OBJECTS = {
    "containers": [
        {"name": "web", "image": "lab/k1:1", "state": "running", "writable_bytes": 100_000, "labels": {"role": "web"}},
        {"name": "stopped", "image": "old", "state": "exited", "writable_bytes": 50_000},
        {"name": "new", "image": "d1", "state": "created", "volumes": ["v1:/v"]},
    ],
    "networks": [{"name": "n1", "labels": {"team": "core"}}],
    "volumes": [{"name": "v1", "labels": {"team": "core"}, "bytes": 10_000}, {"anonymous": True}],
}
ENGINE_NAMES = {"20.10": "scnt20", "28.5": "scnt28", "28.5-containerd": "scntc8"}


def _reap(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # started by another process, which reaps it


@pytest.fixture(scope="module", params=engines.FLAVOURS)
def engine(request):
    """A fresh engine of our own per flavour (not conftest's shared one): the tests count what is on it."""
    name = ENGINE_NAMES[request.param]
    engines.stop(engines.Engine(name, request.param, engines.STATE_ROOT / name))  # left over by a crashed run
    e = engines.start(request.param, name)
    yield e
    api = scenario.client(e.docker_host)  # a stopped daemon leaves its bridges on the host
    for network in api.networks(filters={"driver": "bridge"}):
        api.remove_network(network["Id"])
    # The daemon is our child: engines.stop polls it with kill(pid, 0), so unless something reaps it,
    # its zombie looks alive and every stop waits the full 30 s timeout.
    threading.Thread(target=_reap, args=(e.pid(),), daemon=True).start()
    engines.stop(e)


@pytest.fixture(scope="module")
def built(engine):
    return scenario.client(engine.docker_host), scenario.build(engine.docker_host, SPEC | OBJECTS, prefix="t")


def _is_containerd(engine):
    return engine.flavour == "28.5-containerd"


def test_inspect_shows_tags_labels_created_and_shared_layers(built):
    api, result = built
    k1 = api.inspect_image(result.images["k1"]["id"])
    assert sorted(k1["RepoTags"]) == ["t/lab/k1:1", "t/lab/k1:latest", "t/mirror/k1:1"]
    assert k1["Config"]["Labels"] == {"keep": "yes"}
    assert k1["Created"].startswith("2019-05-01T00:00:00")
    d1 = api.inspect_image("t/lab/d1:1")
    assert k1["RootFS"]["Layers"][:2] == d1["RootFS"]["Layers"][:2]  # base + S: one stored copy
    assert k1["RootFS"]["Layers"][2] != d1["RootFS"]["Layers"][2]
    assert d1["RootFS"]["Layers"] == result.images["d1"]["diff_ids"]


def test_graphdriver_history_sizes_are_the_defined_sizes(built, engine):
    if _is_containerd(engine):
        pytest.skip("the containerd store reports snapshot usage rounded to 4 KiB blocks")
    api, result = built
    sizes = [entry["Size"] for entry in reversed(api.history(result.images["k1"]["id"]))]
    assert sizes == [result.layers[name]["size"] for name in ("base", "S", "k1-own")]
    assert result.layers["base"]["size"] == 1_982_256 + 3 * len("busybox")  # Debian's busybox-static


def test_a_layer_shared_by_name_must_be_a_common_prefix(engine):
    spec = {"images": [{"name": "a", "layers": ["P", "Q"]}, {"name": "b", "layers": ["Q"]}]}
    with pytest.raises(ValueError, match="layer Q must sit on"):
        scenario.build(engine.docker_host, spec, prefix="bad")


def test_dangling_image_is_listed_as_dangling(built):
    api, result = built
    assert [i["Id"] for i in api.images(filters={"dangling": True})] == [result.images["old"]["id"]]


def test_layers_size_grows_by_the_defined_layer_sizes(built, engine):
    api, _scenario = built  # base (busybox) is already there: every other layer is new under this prefix
    before = scenario.system_df(engine.docker_host)["LayersSize"]
    result = scenario.build(engine.docker_host, SPEC, prefix="sz")
    growth = scenario.system_df(engine.docker_host)["LayersSize"] - before
    expected = result.unique_layer_bytes() - result.layers["base"]["size"]
    assert expected == 3_000_000 + 2_500_000 + 1_500_000 + 2_000_000 + 500_000
    if _is_containerd(engine):
        # Measured on the containerd store: LayersSize counts the content blobs (stored uncompressed: tar
        # headers added) *and* the unpacked snapshots (4 KiB blocks), so it grows by about twice the bytes:
        # 19,103,879 for these 9,500,000 (5 layers, ~20 KB overhead each); the base layer alone, 3,978,018.
        assert 2 * expected < growth < 2 * expected + 5 * 32_768
    else:
        assert growth == expected
    scenario.teardown(engine.docker_host, result)


def test_containers_networks_volumes(built, engine):
    api, objects = built
    states = {c["Names"][0]: (c["State"], c.get("SizeRw")) for c in api.containers(all=True, size=True)}
    if _is_containerd(engine):
        # The snapshotter counts 4 KiB blocks plus a few for directories: measured 106,496 / 57,344 / 4,096.
        sizes = {name: size for name, (_state, size) in states.items()}
        assert {name: state for name, (state, _size) in states.items()} == {
            "/t-web": "running", "/t-stopped": "exited", "/t-new": "created"}
        assert 100_000 < sizes["/t-web"] <= 100_000 + 8 * 4096 and 50_000 < sizes["/t-stopped"] <= 50_000 + 8 * 4096
    else:
        assert states == {"/t-web": ("running", 100_000), "/t-stopped": ("exited", 50_000),
                          "/t-new": ("created", None)}
    web = api.inspect_container(objects.containers["web"])  # containers inherit the image's labels
    assert web["Config"]["Labels"] == {"role": "web", "keep": "yes"} and web["Config"]["Image"] == "t/lab/k1:1"
    assert api.inspect_network(objects.networks["n1"])["Labels"] == {"team": "core"}
    assert api.inspect_volume("t-v1")["Labels"] == {"team": "core"}
    anonymous = api.inspect_volume(objects.volumes["anonymous-1"])
    # The engine labels anonymous volumes only since 23.0.
    assert (anonymous["Labels"] or {}) == ({} if engine.flavour == "20.10" else {"com.docker.volume.anonymous": ""})


def test_rebuild_gives_the_same_ids_and_fingerprint_is_stable(built, engine):
    api, result = built
    spec = {"images": [{"name": "r", "tags": ["lab/r:1"], "layers": ["R"], "created": "2021-01-01T00:00:00Z"},
                       {"name": "rd", "tags": [], "layers": ["R", "rd-own"]}]}
    first = scenario.build(engine.docker_host, spec, prefix="r")
    fingerprint = scenario.fingerprint(engine.docker_host)
    assert scenario.fingerprint(engine.docker_host) == fingerprint
    scenario.teardown(engine.docker_host, first)
    assert result.images["old"]["id"] in scenario.fingerprint(engine.docker_host)["images"]
    second = scenario.build(engine.docker_host, spec, prefix="r")
    assert {n: i["id"] for n, i in second.images.items()} == {n: i["id"] for n, i in first.images.items()}
    assert scenario.fingerprint(engine.docker_host) == fingerprint
    scenario.teardown(engine.docker_host, second)


def test_build_cache(engine):
    api = scenario.client(engine.docker_host)
    spec = {"builds": [{"name": "b", "tags": ["lab/b:1"], "files": {"a": 300_000, "b": 200_000}}]}
    result = scenario.build(engine.docker_host, spec, prefix="bc")
    assert api.inspect_image("bc/lab/b:1")["Id"] == result.builds["b"]["id"]
    layers = sorted(r["Size"] for r in result.build_cache if r["Type"] == "regular")
    if _is_containerd(engine):  # content blob + snapshot per COPY layer
        assert len(layers) == 2 and 2 * 200_000 < layers[0] < 2.1 * 200_000
    else:
        assert layers == [200_000, 300_000]


def test_multiplatform(engine):
    spec = {"multiplatform": [{"name": "mp", "tag": "lab/mp:1", "size": 300_000}]}
    if not _is_containerd(engine):
        with pytest.raises(scenario.NotSupported, match="not supported on this engine"):
            scenario.build(engine.docker_host, spec, prefix="mp")
        return
    api = scenario.client(engine.docker_host)
    result = scenario.build(engine.docker_host, spec, prefix="mp")
    inspect = api._result(api._get(api._url("/images/{0}/json", "mp/lab/mp:1"), params={"manifests": 1}), json=True)
    assert inspect["Id"] == result.multiplatform["mp"]["id"]
    platforms = sorted(m["ImageData"]["Platform"]["architecture"] for m in inspect["Manifests"] if m["Available"])
    assert platforms == ["amd64", "arm64"]
    listed = api._result(api._get(api._url("/images/json"), params={"manifests": 1}), json=True)
    [entry] = [i for i in listed if "mp/lab/mp:1" in (i["RepoTags"] or [])]
    assert sorted(m["ImageData"]["Platform"]["architecture"] for m in entry["Manifests"]) == ["amd64", "arm64"]


def test_realistic_mix_scales_to_300_images_in_one_load(engine):
    # Measured for 300 images: ~4.5 s on 28.5; ~14 s on 20.10 (~45 ms to register each layer) and ~12 s on
    # the containerd store, so those two load fewer to keep the suite under a minute.
    n_images = 300 if engine.flavour == "28.5" else 60
    spec = scenario.realistic_mix(seed=7, n_images=n_images)
    assert spec == scenario.realistic_mix(seed=7, n_images=n_images)
    result = scenario.build(engine.docker_host, spec, prefix="mix")
    api = scenario.client(engine.docker_host)
    images = {i["Id"] for i in api.images()}
    assert {i["id"] for i in result.images.values()} <= images
    dangling = {i["Id"] for i in api.images(filters={"dangling": True})}
    assert set() != {result.images[i["name"]]["id"] for i in spec["images"] if not i["tags"]} <= dangling
    assert any(i["labels"].get("reclaim.protect") for i in spec["images"])
    assert {c["State"] for c in api.containers(all=True, filters={"name": "mix-"})} == {"running", "exited"}
