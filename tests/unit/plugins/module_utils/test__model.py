"""The engine model: reference normalisation and resolution, chain IDs, history sizes, layer accounting."""

from __future__ import annotations

import hashlib
import re

import pytest
from snapshot_helpers import (
    FLAVOURS,
    OVERLAY2,
    PREFIX,
    by_tag,
    container_named,
    hid,
    make_snapshot,
    recorded,
)

from ansible_collections.reclaim.docker.plugins.module_utils._model import (
    Accounting,
    Container,
    Image,
    Snapshot,
    chain_ids,
    check_image_name,
    familiar_name,
    freed_bytes,
    images_needing_layers,
    normalize_reference,
    repository_of,
    short_id,
)
from ansible_collections.reclaim.docker.plugins.module_utils._snapshot import layer_sizes_from_history
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem

DIGEST = "sha256:" + "ab" * 32


# ---------------------------------------------------------------- references

@pytest.mark.parametrize("reference, normalized", [
    ("busybox", "busybox:latest"),
    ("busybox:1.36", "busybox:1.36"),
    ("docker.io/library/x:1", "x:1"),
    ("docker.io/library/busybox", "busybox:latest"),
    ("index.docker.io/library/x:2", "x:2"),
    ("docker.io/lab/x", "lab/x:latest"),
    ("lab/x:1", "lab/x:1"),
    ("localhost:5000/x", "localhost:5000/x:latest"),
    ("localhost:5000/lab/x:3", "localhost:5000/lab/x:3"),
    ("127.0.0.1:5055/lab/dig", "127.0.0.1:5055/lab/dig:latest"),
    (f"busybox@{DIGEST}", f"busybox@{DIGEST}"),
    (f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
    (f"127.0.0.1:5055/lab/dig@{DIGEST}", f"127.0.0.1:5055/lab/dig@{DIGEST}"),
    ("1", "1:latest"),
    ("12", "12:latest"),
])
def test_normalize_reference(reference, normalized):
    assert normalize_reference(reference) == normalized


@pytest.mark.parametrize("reference, tag, normalized", [
    ("busybox", "1.36", "busybox:1.36"),               # image_remove's option tag completes a bare name
    ("busybox:1.35", "1.36", "busybox:1.35"),          # a tag in the name takes precedence
    ("localhost:5000/x", "v2", "localhost:5000/x:v2"),  # a registry port is not a tag
    (f"busybox@{DIGEST}", "1.36", f"busybox@{DIGEST}"),  # a digest takes no tag
])
def test_normalize_reference_with_a_tag(reference, tag, normalized):
    assert normalize_reference(reference, tag) == normalized


@pytest.mark.parametrize("name", [
    "busybox", "busybox:1.36", "lab/x:1", "localhost:5000/x", "localhost:5000", "127.0.0.1:5055/lab/dig@" + DIGEST,
    "Registry.Example.com/app:1", "[::1]:5000/app:1", "a__b", "a--b", "a.b_c", "app:1@" + DIGEST, "app:_x.Y-1",
    "1", DIGEST, DIGEST[7:], "abcdef", "a" * 255 + ":" + "t" * 128,
])
def test_names_in_dockers_grammar(name):
    check_image_name(name, "name")


@pytest.mark.parametrize("name, problem", [
    ("App:1", "is not an image reference"), ("a___b", "is not an image reference"), ("app.", "is not an image reference"),
    ("host:port/app", "is not an image reference"), ("[::1]", "is not an image reference"),
    ("app:-1", "has a tag other than"), ("app:" + "t" * 129, "has a tag other than"), ("app:1\n", "has a tag other than"),
    ("a" * 256, "has a name longer than 255"), ("app@sha256:" + "AB" * 32, "has a digest other than"),
    ("app@sha256:abc", "has a digest other than"), ("sha256:abcdef", "is not an image ID"),
])
def test_names_docker_refuses(name, problem):
    with pytest.raises(ValueProblem, match=f"^name: {re.escape(repr(name))} {problem}"):
        check_image_name(name, "name")


@pytest.mark.parametrize("repo, familiar", [
    ("docker.io/library/busybox", "busybox"), ("docker.io/lab/x", "lab/x"), ("quay.io/lab/x", "quay.io/lab/x"),
    ("busybox", "busybox"),
])
def test_familiar_name(repo, familiar):
    assert familiar_name(repo) == familiar


@pytest.mark.parametrize("reference, repository", [
    ("lab/x:1", "lab/x"), ("localhost:5000/x:1", "localhost:5000/x"), (f"lab/x@{DIGEST}", "lab/x"),
])
def test_repository_of(reference, repository):
    assert repository_of(reference) == repository


def test_short_id_strips_the_algorithm():
    assert short_id(hid("a")) == hid("a")[7:19]
    assert short_id("0123456789abcdef") == "0123456789ab"


# A snapshot where names look like IDs: the repository "1", and an image whose ID starts with "abcdef".
ABC_ID = "sha256:abcdef" + "0" * 58


@pytest.fixture
def naming_snapshot():
    return Snapshot({"image_store": "overlay2"}, [
        Image(ABC_ID, repo_tags=["lab/abc:1"]),
        Image(hid("one"), repo_tags=["1:latest"]),
        Image(hid("dig"), repo_tags=["127.0.0.1:5055/lab/dig:1"], repo_digests=[f"127.0.0.1:5055/lab/dig@{DIGEST}"]),
        Image(hid("bb"), repo_tags=["busybox:latest"]),
    ], [])


@pytest.mark.parametrize("reference, kind, image, normalized", [
    ("busybox", "tag", hid("bb"), "busybox:latest"),
    ("docker.io/library/busybox:latest", "tag", hid("bb"), "busybox:latest"),
    ("abcdef", "id", ABC_ID, ABC_ID),                 # 6 hex: an ID prefix
    ("abcdef0000", "id", ABC_ID, ABC_ID),
    (ABC_ID, "id", ABC_ID, ABC_ID),                   # sha256:<64 hex>
    (ABC_ID[7:], "id", ABC_ID, ABC_ID),               # bare 64 hex
    ("1", "tag", hid("one"), "1:latest"),             # "1" is a repository name, never an ID prefix
    (f"127.0.0.1:5055/lab/dig@{DIGEST}", "digest", hid("dig"), f"127.0.0.1:5055/lab/dig@{DIGEST}"),
])
def test_resolve(naming_snapshot, reference, kind, image, normalized):
    found_kind, found_image, found_normalized = naming_snapshot.resolve(reference)
    assert (found_kind, found_image.id, found_normalized) == (kind, image, normalized)


@pytest.mark.parametrize("reference", [
    "12",            # a name: no repository 12
    "abcde",         # 5 hex: a name, too short to be an ID prefix
    "abcdef1",       # an ID prefix matching nothing
    "sha256:abcdef",  # sha256: needs the full 64 hex digits
    "sha256:1",
    "lab/abc:2",
    f"lab/dig@{DIGEST}",  # the digest belongs to another repository
    "sha256:" + "f" * 64,
])
def test_resolve_unknown(naming_snapshot, reference):
    assert naming_snapshot.resolve(reference) is None


@pytest.mark.parametrize("reference, tag, kind, image", [
    ("lab/abc", "1", "tag", ABC_ID),            # lab/abc:1
    ("lab/abc:1", "2", "tag", ABC_ID),          # the name's own tag wins
    ("1", "latest", "tag", hid("one")),
    ("abcdef", "9", "id", ABC_ID),              # no abcdef:9: 6 hex digits are then an ID prefix, as with latest
    (ABC_ID, "9", "id", ABC_ID),                # an ID takes no tag
    (f"127.0.0.1:5055/lab/dig@{DIGEST}", "9", "digest", hid("dig")),
])
def test_resolve_with_a_tag(naming_snapshot, reference, tag, kind, image):
    found_kind, found_image, _normalized = naming_snapshot.resolve(reference, tag)
    assert (found_kind, found_image.id) == (kind, image)


def test_resolve_with_a_tag_that_names_nothing(naming_snapshot):
    assert naming_snapshot.resolve("lab/abc", "2") is None
    assert naming_snapshot.resolve("busybox", "1.36") is None


def test_an_ambiguous_short_id_resolves_to_nothing():
    snap = Snapshot({}, [Image("sha256:abcdef1" + "0" * 57), Image("sha256:abcdef2" + "0" * 57)], [])
    assert snap.resolve("abcdef") is None
    assert snap.resolve("abcdef1").__getitem__(1).id == "sha256:abcdef1" + "0" * 57


def test_containerd_store_resolves_repo_at_image_id_to_the_tagged_image():
    image = Image(hid("x"), repo_tags=["lab/x:1"])
    containerd = Snapshot({"image_store": "containerd"}, [image], [])
    assert containerd.resolve(f"lab/x@{image.id}")[:2] == ("digest", image)
    assert containerd.resolve(f"other/x@{image.id}") is None
    assert Snapshot({"image_store": "overlay2"}, [image], []).resolve(f"lab/x@{image.id}") is None


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_recorded_snapshot_resolves_every_tag_and_short_id(flavour):
    snap = recorded(flavour)
    for image in snap.images.values():
        for tag in image.repo_tags:
            assert snap.resolve(tag)[1] is image
        assert snap.resolve(short_id(image.id))[1] is image
        assert snap.resolve(image.id[7:13]) in (None, ("id", image, image.id))
    assert snap.resolve(PREFIX + "lab/nope:1") is None


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_recorded_snapshot_round_trips(flavour):
    snap = recorded(flavour)
    assert Snapshot.from_dict(snap.to_dict()).to_dict() == snap.to_dict()


def test_image_drops_none_references():
    image = Image(hid("x"), repo_tags=["<none>:<none>", "b:1", "a:1"], repo_digests=["<none>@<none>"])
    assert image.repo_tags == ("a:1", "b:1") and image.repo_digests == ()


# ---------------------------------------------------------------- layers

def _chain(parent, diff_id):
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


@pytest.mark.parametrize("diff_ids", [[], ["sha256:" + "1" * 64], ["sha256:" + "1" * 64, "sha256:" + "2" * 64],
                                      ["sha256:" + "1" * 64, "sha256:" + "2" * 64, "sha256:" + "3" * 64]])
def test_chain_ids(diff_ids):
    expected = []
    for diff_id in diff_ids:
        expected.append(_chain(expected[-1], diff_id) if expected else diff_id)
    assert chain_ids(diff_ids) == expected


def test_chain_ids_depend_on_the_layers_below():
    a, b, c = ("sha256:" + ch * 64 for ch in "abc")
    assert chain_ids([a, c])[1] != chain_ids([b, c])[1]
    assert chain_ids([a, b])[:1] == chain_ids([a, c])[:1]


def test_chain_ids_match_the_recorded_engine():
    """On overlay2, the engine lists freed layers by chain ID: the recorded layer keys are those IDs."""
    from snapshot_helpers import expected as expected_outcome
    snap = recorded("28.5")
    deleted = {entry["Deleted"] for case in expected_outcome("28.5")["removals"].values()
               for response in case["engine_response"] for entry in response if "Deleted" in entry}
    layer_keys = {key for keys in snap.layers.values() for key in keys}
    assert deleted - set(snap.images) <= layer_keys
    assert len(deleted - set(snap.images)) >= 8


@pytest.mark.parametrize("n_layers, history_oldest_first, sizes", [
    (2, [10, 20], [10, 20]),                       # equal counts: taken as they are
    (2, [10, 0], [10, 0]),                         # equal counts, an empty layer is a layer
    (3, [10, 0, 20, 0, 0], [10, 0, 20]),           # ENV/CMD entries: sized entries are layers, zeros oldest first
    (2, [10, 0, 0, 20], [10, 20]),
    (2, [0, 10, 0], [0, 10]),
    (1, [0, 0, 10], [10]),
    (3, [10, 20], None),                           # too few entries
    (2, [10, 20, 30], None),                       # more sized entries than layers
    (0, [], []),
])
def test_layer_sizes_from_history(n_layers, history_oldest_first, sizes):
    diff_ids = [f"sha256:{i:064x}" for i in range(n_layers)]
    history = [{"Size": size, "CreatedBy": f"step {i}"} for i, size in enumerate(history_oldest_first)][::-1]
    assert layer_sizes_from_history(diff_ids, history) == sizes


def test_layer_sizes_from_history_tolerates_missing_sizes():
    assert layer_sizes_from_history(["sha256:" + "1" * 64], [{"Size": None}, {}, {"Size": 5}]) == [5]


SPEC_SIZES = {"S": 3_000_000, "X": 2_500_000, "k1-own": 1_500_000, "d1-own": 2_000_000, "d3-own": 500_000,
              "d4-own": 700_000, "run-own": 400_000, "stop-own": 300_000, "multi-own": 200_000, "dang-own": 150_000}


@pytest.mark.parametrize("flavour", OVERLAY2)
def test_recorded_layer_sizes_are_the_scenario_sizes(flavour):
    snap = recorded(flavour)
    k1, d1 = by_tag(snap, PREFIX + "lab/k1:1"), by_tag(snap, PREFIX + "lab/d1:1")
    d3, d4 = by_tag(snap, PREFIX + "lab/d3:1"), by_tag(snap, PREFIX + "lab/d4:1")
    assert snap.layers[k1.id][:2] == snap.layers[d1.id][:2]       # base + S
    assert snap.layers[d3.id][:2] == snap.layers[d4.id][:2]       # base + X
    sizes = [snap.layer_sizes[key] for key in snap.layers[d1.id]]
    assert sizes[1:] == [SPEC_SIZES["S"], SPEC_SIZES["d1-own"]]
    assert [snap.layer_sizes[key] for key in snap.layers[d4.id]][1:] == [SPEC_SIZES["X"], SPEC_SIZES["d4-own"]]
    for image in snap.images.values():
        assert sum(snap.layer_sizes[key] for key in snap.layers[image.id]) == image.size


# ---------------------------------------------------------------- accounting

SIZES = {"base": 100, "S": 3000, "X": 2500, "k1": 1500, "d1": 2000, "d2": 1000, "d3": 500, "d4": 700, "r": 40}


@pytest.fixture
def shared():
    """The engine-facts §3 layout, small: S shared by kept k1 and deleted d1/d2; X only by d3 and d4."""
    return make_snapshot([
        ("k1", ["lab/k1:1"], ["base", "S", "k1"], None),
        ("d1", ["lab/d1:1", "lab/d1:2"], ["base", "S", "d1"], None),
        ("d2", ["lab/d2:1"], ["base", "S", "d2"], None),
        ("d3", ["lab/d3:1"], ["base", "X", "d3"], None),
        ("d4", ["lab/d4:1"], ["base", "X", "d4"], None),
        ("r", ["lab/r:1"], ["base", "r"], None),
    ], containers=[("halted", "r", "exited", 77)], sizes=SIZES)


@pytest.mark.parametrize("deleted, removed, freed", [
    ([], [], 0),
    (["d1"], [], 2000),                             # S stays: k1 holds it
    (["d1", "d2"], [], 3000),                       # S counted for neither
    (["d3"], [], 500),                              # X stays: d4 holds it
    (["d3", "d4"], [], 2500 + 500 + 700),           # X shared only among deleted images IS freed
    (["d1", "d2", "d3", "d4"], [], 2000 + 1000 + 3700),
    (["d1", "d2", "k1"], [], 3000 + 2000 + 1000 + 1500),  # S freed once, not three times
    (["r"], [], 0),                                 # the stopped container holds r's layers
    (["r"], ["halted"], 40 + 77),                   # container removed: layers and writable bytes
    ([], ["halted"], 77),                           # container alone: its writable layer only
    (["k1", "d1", "d2", "d3", "d4", "r"], ["halted"], sum(SIZES.values()) + 77),  # base freed when nothing is left
])
def test_freed_bytes(shared, deleted, removed, freed):
    ctr = {c.name: c.id for c in shared.containers.values()}
    assert freed_bytes(shared, {hid(d) for d in deleted}, {ctr[r] for r in removed}) == freed


def test_incremental_accounting_counts_each_layer_once(shared):
    accounting = Accounting(shared)
    steps = [accounting.delete_image(hid(name)) for name in ("d3", "d4", "d1", "d2", "k1")]
    assert steps == [500, 2500 + 700, 2000, 1000, 3000 + 1500]
    assert sum(steps) == accounting.total


def test_a_running_container_holds_layers_too(shared):
    snap = make_snapshot([("d", ["lab/d:1"], ["base", "d"], None)], containers=[("web", "d", "running", 5)],
                         sizes=SIZES)
    assert freed_bytes(snap, {hid("d")}) == 0


def test_held_by_containers_only(shared):
    accounting = Accounting(shared)
    assert accounting.held_by_containers_only(hid("r")) == 40


def test_an_image_without_layers_is_one_private_pseudo_layer_of_its_size():
    snap = Snapshot({}, [Image(hid("a"), size=1234), Image(hid("b"), size=99)], [])
    assert freed_bytes(snap, {hid("a")}) == 1234


@pytest.mark.parametrize("flavour", OVERLAY2)
def test_recorded_running_container_holds_its_image(flavour):
    snap = recorded(flavour)
    web = container_named(snap, "rec-web")
    assert web.running and web.image_id == by_tag(snap, PREFIX + "lab/run:1").id
    assert freed_bytes(snap, {web.image_id}) == 0


def _needing_snapshot(with_orphan_holder):
    ids = {name: "sha256:" + name * 64 for name in "abcd"}
    images = [Image(ids["a"], ["lab/a:1"], shared_size=10), Image(ids["b"], ["lab/b:1"], shared_size=10),
              Image(ids["c"], ["lab/c:1"], shared_size=0), Image(ids["d"], ["lab/d:1"], shared_size=0)]
    containers = [Container("f" * 64, "old", "sha256:" + "e" * 64)] if with_orphan_holder else []
    return Snapshot({"image_store": "overlay2"}, images, containers), ids


def test_images_needing_layers_sharing_images_are_read_even_next_to_an_orphan_holder():
    for orphan in (False, True):
        snapshot, ids = _needing_snapshot(orphan)
        # a shares: every sharing image is needed, the private c and d are not.
        assert images_needing_layers(snapshot, [ids["a"]]) == {ids["a"], ids["b"]}
        # c shares nothing: only its own chain.
        assert images_needing_layers(snapshot, [ids["c"]]) == {ids["c"]}
