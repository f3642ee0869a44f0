"""The hypothesis strategies of the unit tests: random engine states and random requests to plan on, one place for
every test file that draws them."""

from __future__ import annotations

import hashlib
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ansible_collections.reclaim.docker.plugins.module_utils._filters import ALLOWED_KEYS
from ansible_collections.reclaim.docker.plugins.module_utils._image_plan import RemovalRequest, plan_image_removal
from ansible_collections.reclaim.docker.plugins.module_utils._model import Container, Image, Snapshot, blob_key

NOW = 1_800_000_000.0
DAY = 86400.0

# CI replays the same examples every run (a landing must not hinge on luck); local runs keep exploring.
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=bool(os.environ.get("CI")))
REPOS = ("a", "b", "lab/c", "docker.io/library/d")
TAGS = ("1", "2", "latest")
STATES = ("running", "exited", "created", "paused", "restarting", "dead")
RUNNING = {"running", "paused", "restarting"}
PLATFORMS = ("linux/amd64", "linux/arm64")


def _hex(seed):
    return hashlib.sha256(seed.encode()).hexdigest()


@st.composite
def snapshots(draw):
    store = draw(st.sampled_from(["overlay2", "containerd"]))
    pool = [("sha256:" + _hex(f"layer{i}"), draw(st.integers(0, 10_000))) for i in range(draw(st.integers(1, 8)))]
    n_images = draw(st.integers(1, 7))
    chains, parents = [], []
    for i in range(n_images):
        parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        base = list(chains[parent]) if parent is not None else []
        extra = draw(st.lists(st.sampled_from(pool), max_size=3, unique=True))
        chain = base + [layer for layer in extra if layer not in base]
        if not chain:
            chain = [draw(st.sampled_from(pool))]
        chains.append(tuple(chain))
        # A legacy-built child links its parent; a BuildKit-built one shares the layers but has no link.
        parents.append(parent if parent is not None and draw(st.booleans()) else None)
    ids = ["sha256:" + _hex(f"image{i}/{chains[i]}") for i in range(n_images)]
    # Every possible tag goes to at most one image; some images are dangling (untagged legacy parents...).
    tags = {i: [] for i in range(n_images)}
    dangling = {i for i in range(n_images) if draw(st.integers(0, 2)) == 0}
    for repo in REPOS:
        for tag in TAGS:
            owner = draw(st.one_of(st.none(), st.integers(0, n_images - 1)))
            if owner is not None and owner not in dangling:
                tags[owner].append(f"{repo}:{tag}".replace("docker.io/library/", ""))
    images, layers, layer_sizes, content = [], {}, {}, {}
    manifest_pool = draw(manifest_pools()) if store == "containerd" else []
    for i in range(n_images):
        # The containerd store holds repo@<image ID> for the repository of every tag (docs/engine-notes.md); overlay2
        # a digest for a repository pulled or pushed, here the first.
        if store == "containerd":
            digests = [f"{repo}@{ids[i]}" for repo in sorted({t.rsplit(':', 1)[0] for t in tags[i]})]
        elif tags[i] and draw(st.booleans()):
            digests = [f"{tags[i][0].rsplit(':', 1)[0]}@sha256:{_hex('digest' + ids[i])}"]
        else:
            digests = []
        inspected = draw(st.integers(0, 4)) > 0  # now and then an image never inspected: its own Size
        size = sum(s for _key, s in chains[i])
        listed, index_size = [], 0
        if manifest_pool and draw(st.integers(0, 4)):  # now and then the content store was not read
            listed, index_size, content[ids[i]] = draw(image_content(ids[i], manifest_pool, size))
            layer_sizes.update((key, blob_size) for m in manifest_pool for key, blob_size in m["blobs"])
            if index_size:
                layer_sizes[blob_key(ids[i])] = index_size
        images.append(Image(ids[i], repo_tags=tags[i], repo_digests=digests,
                            parent_id=ids[parents[i]] if parents[i] is not None else "", size=size,
                            shared_size=-1, manifests=listed, index_size=index_size))
        if inspected:
            layers[ids[i]] = tuple(key for key, _size in chains[i])
            layer_sizes.update(dict(chains[i]))
    containers = []
    for j in range(draw(st.integers(0, 4))):
        image = draw(st.integers(0, n_images - 1))
        size_rw = draw(st.integers(0, 5_000))
        # The containerd store's SizeRootFs: the writable layer, an init snapshot, the image's layers.
        size_root_fs = size_rw + draw(st.integers(0, 100)) + sum(s for _key, s in chains[image]) \
            if store == "containerd" and draw(st.booleans()) else 0
        containers.append(Container(_hex(f"container{j}"), f"ctr{j}", ids[image], state=draw(st.sampled_from(STATES)),
                                    size_rw=size_rw, size_root_fs=size_root_fs))
    return Snapshot({"image_store": store}, images, containers, layers, layer_sizes, content=content)


@st.composite
def manifest_pools(draw):
    """Platform manifests that images list, some listed by several; each with its blobs (keys and sizes, itself
    first), some blobs in several manifests, and how much of it the store has: all, the manifest blob only, none."""
    blobs = [(blob_key("sha256:" + _hex(f"blob{i}")), draw(st.integers(0, 3_000)))
             for i in range(draw(st.integers(1, 6)))]
    pool = []
    for i in range(draw(st.integers(1, 5))):
        digest = "sha256:" + _hex(f"manifest{i}")
        named = draw(st.lists(st.sampled_from(blobs), min_size=1, max_size=3, unique=True))
        present = draw(st.sampled_from(["all", "manifest", "none"]))
        own = [(blob_key(digest), draw(st.integers(100, 900)))]
        pool.append(dict(digest=digest, platform=draw(st.sampled_from(PLATFORMS)),
                         blobs=own + (named if present == "all" else []) if present != "none" else [],
                         available=present == "all"))
    return pool


@st.composite
def image_content(draw, image_id, manifest_pool, layers_size):
    """An image's listed manifests, index size and content (see Snapshot.content), from MANIFEST_POOL."""
    manifests = draw(st.lists(st.sampled_from(manifest_pool), min_size=1, max_size=3, unique_by=lambda m: m["digest"]))
    present = [m for m in manifests if m["blobs"]]
    unpacked = draw(st.sampled_from([None] + [m["digest"] for m in present]))
    listed = [dict(digest=m["digest"], kind="image", available=m["available"], platform=m["platform"],
                   manifest_size=m["blobs"][0][1] if m["blobs"] else 0, content=sum(size for _k, size in m["blobs"]),
                   unpacked=layers_size if m["digest"] == unpacked else 0) for m in manifests]
    index_size = draw(st.integers(100, 900)) if draw(st.booleans()) else 0
    return listed, index_size, dict(index=(blob_key(image_id),) if index_size else (), unpacked=unpacked,
                                    manifests={m["digest"]: tuple(key for key, _size in m["blobs"]) for m in present})


@st.composite
def requests(draw, snapshot):
    images = sorted(snapshot.images.values(), key=lambda i: i.id)
    candidates = ["nope:1", "12", "1", "ffffff", "sha256:" + "f" * 64, "b@sha256:" + "e" * 64]
    for image in images:
        candidates += list(image.repo_tags) + list(image.repo_digests)
        candidates += [image.id, image.id[7:19], image.id[7:13]]
        candidates += ["docker.io/library/" + t for t in image.repo_tags if "/" not in t]
    names = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=6))
    platform = draw(st.sampled_from((None,) + PLATFORMS)) if snapshot.containerd_store else None
    return dict(names=names, force=draw(st.booleans()), prune_parents=draw(st.booleans()),
                remove_stopped_containers=draw(st.booleans()), platform=platform)


@st.composite
def cases(draw):
    snapshot = draw(snapshots())
    return snapshot, draw(requests(snapshot))


@st.composite
def prune_cases(draw):
    snapshot = draw(snapshots())
    options = dict(
        containers=draw(st.booleans()),
        dangling=draw(st.booleans()),
        protect_label=draw(st.sampled_from([None, "keep"])),
    )
    for image in snapshot.images.values():
        if draw(st.booleans()):
            image.labels["keep"] = "1"
    return snapshot, options


@st.composite
def chained_cases(draw):
    """A removal (as the cleanup role's retention step: whole images, never forced, containers left alone), then a
    prune."""
    snapshot, options = draw(prune_cases())
    request = dict(draw(requests(snapshot)), force=False, remove_stopped_containers=False, platform=None)
    return snapshot, request, options


@st.composite
def retention_cases(draw, keep_last=st.one_of(st.none(), st.integers(0, 3))):
    snapshot = draw(snapshots())
    for image in snapshot.images.values():
        image.created = NOW - draw(st.integers(0, 100)) * DAY
        if draw(st.booleans()):
            image.labels["keep"] = "1"
    return snapshot, dict(
        keep_last=draw(keep_last),
        max_age=draw(st.one_of(st.none(), st.integers(1, 90).map(lambda d: d * DAY))),
        min_age=draw(st.sampled_from([None, "72h"])),
        dangling=draw(st.booleans()),
    )


@st.composite
def pressures(draw):
    """None, or disk pressure with marks anywhere around the usage (eviction that reaches the low mark, or not)."""
    if draw(st.booleans()):
        return None
    high = draw(st.integers(0, 60_000))
    return dict(used=draw(st.integers(0, 100_000)), high=high, low=draw(st.integers(0, high)), mark="test")


@st.composite
def layer_graphs(draw):
    """Images over a shared pool of layers (some never inspected: one pseudo-layer of their Size), containers of
    listed images and of image records already gone (orphan holders), any of them removable in any order."""
    pool = ["sha256:" + _hex(f"layer{i}") for i in range(draw(st.integers(1, 10)))]
    sizes = {key: draw(st.integers(0, 5000)) for key in pool}
    images, layers = [], {}
    for i in range(draw(st.integers(0, 8))):
        image_id = "sha256:" + _hex(f"image{i}")
        images.append(Image(image_id, size=draw(st.integers(0, 3000))))
        if draw(st.integers(0, 4)):
            layers[image_id] = tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=5, unique=True)))
    gone = ["sha256:" + _hex(f"gone{i}") for i in range(draw(st.integers(0, 2)))]
    for image_id in gone:
        layers[image_id] = tuple(draw(st.lists(st.sampled_from(pool), max_size=4, unique=True)))
    holders = [i.id for i in images] + gone
    containers = []
    if holders:
        for i in range(draw(st.integers(0, 5))):
            containers.append(Container("c" * 63 + str(i), f"c{i}", draw(st.sampled_from(holders)),
                                        size_rw=draw(st.integers(0, 100))))
    snapshot = Snapshot({"image_store": "overlay2"}, images, containers, layers, sizes)
    removals = draw(st.lists(st.one_of(
        st.tuples(st.just("image"), st.sampled_from([i.id for i in images] or ["sha256:" + "0" * 64])),
        st.tuples(st.just("container"), st.sampled_from([c.id for c in containers] or ["none"])),
        st.tuples(st.just("held"), st.sampled_from([i.id for i in images] or ["sha256:" + "0" * 64])),
    ), max_size=12))
    return snapshot, removals


@st.composite
def content_graphs(draw):
    """Engine states of either store (the containerd store's with content: indexes, platform manifests shared by
    several images, blobs shared by several manifests, platforms present in whole, in part or not at all), and
    removals of images, containers and platforms in any order."""
    snapshot = draw(snapshots())
    manifests = sorted({m["digest"] for i in snapshot.images.values() for m in i.manifests}) or ["sha256:" + "0" * 64]
    removals = draw(st.lists(st.one_of(
        st.tuples(st.just("image"), st.sampled_from(sorted(snapshot.images))),
        st.tuples(st.just("container"), st.sampled_from(sorted(snapshot.containers) or ["none"])),
        st.tuples(st.just("held"), st.sampled_from(sorted(snapshot.images))),
        st.tuples(st.just("platform"), st.sampled_from(manifests)),
    ), max_size=12))
    return snapshot, removals


@st.composite
def plans_with_outcomes(draw):
    snapshot = draw(snapshots())
    request = draw(requests(snapshot))
    plan = plan_image_removal(snapshot, RemovalRequest(**request))
    # Each action took effect, was skipped, or found its object removed by someone else first (a 404).
    fates = [draw(st.sampled_from(["done", "skipped", "gone"] if a["action"] in ("delete_image", "remove_container")
                                  else ["done", "skipped"])) for a in plan.actions]
    return snapshot, plan, fates


# ---------------------------------------------------------------- option values

# Near misses are where parsers go wrong: text from the characters the grammars use, forms close to valid ones,
# huge numbers, and any text at all.
GRAMMAR_TEXT = st.text(alphabet="abzAZ09:._-/@*?[]!{}= \n\tµ+sha256", max_size=40)
# Numbers as text, up to far past what a float holds (a float of 310 digits is infinite).
NUMBERS = st.one_of(st.from_regex(r"[0-9]{1,25}(\.[0-9]{0,3})?", fullmatch=True),
                    st.integers(min_value=300, max_value=420).map(lambda digits: "9" * digits))
DURATIONS = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"[-+]?([0-9]{0,3}(\.[0-9]{0,3})?(ns|us|µs|ms|s|m|h|d|w|y|H|)){1,3}", fullmatch=True),
    st.tuples(st.sampled_from(["", "-", "+"]), NUMBERS, st.sampled_from(["h", "d", "w", "ns", "1s", ""])).map("".join),
)
SIZES = st.one_of(
    st.integers(min_value=-2 ** 70, max_value=2 ** 70), st.booleans(), st.text(max_size=12),
    st.tuples(st.sampled_from(["", " ", "-"]), NUMBERS, st.from_regex(r" ?[kKmMgGtTpPxX]?[iI]?[bB]? ?", fullmatch=True))
    .map("".join),
)
TIMES = st.one_of(
    DURATIONS,
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,12})?)?)?)?([zZ]|[+-][0-9]{2}:[0-9]{2})?",
                  fullmatch=True),
    NUMBERS,
)
# What a YAML value can be: filters and protect come from users' YAML as any of these.
# No infinity: ansible-core's own int conversion raises OverflowError on it, inside AnsibleModule, for any module.
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                    GRAMMAR_TEXT, TIMES)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(GRAMMAR_TEXT, inner, max_size=3)), max_leaves=6)
IMAGE_NAMES = st.one_of(
    GRAMMAR_TEXT, st.from_regex(r"[a-z0-9.:/_-]{1,30}(:[\w.-]{0,5})?(@sha256:[0-9a-fA-F]{60,66})?", fullmatch=True))
FILTER_KEYS = st.one_of(st.sampled_from(sorted({k for keys in ALLOWED_KEYS.values() for k in keys})), GRAMMAR_TEXT)
