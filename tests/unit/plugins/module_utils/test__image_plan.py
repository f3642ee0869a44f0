"""The image-removal planner, on snapshots recorded from real engines and on small hand-made ones."""

from __future__ import annotations

import pytest
from snapshot_helpers import (
    FLAVOURS,
    OVERLAY2,
    PREFIX,
    by_tag,
    container_named,
    expected,
    hid,
    make_snapshot,
    recorded,
    remove_images,
)

from ansible_collections.reclaim.docker.plugins.module_utils._apply import untagged_by
from ansible_collections.reclaim.docker.plugins.module_utils._image_plan import RemovalRequest, _ImageRemovalPlanner
from ansible_collections.reclaim.docker.plugins.module_utils._model import short_id

P = PREFIX


def actions(plan):
    return [(a["action"], a.get("reference", a.get("name"))) for a in plan.actions]


@pytest.fixture(params=FLAVOURS)
def snap(request):
    return recorded(request.param)


# ---------------------------------------------------------------- exact bytes, against the engines

@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("case", ["d1_both_tags", "d3_and_d4", "d3_only", "k1_and_d1", "multi_one_tag",
                                  "multi_by_id_forced", "dangling_by_id", "stopped_with_container"])
def test_planned_bytes_equal_what_the_engine_freed(flavour, case):
    """The recorded engine removed these names and LayersSize dropped by layers_size_drop (plus, on overlay2, the
    SizeRw of the containers removed first; the containerd store's LayersSize counts their snapshots): the planner
    must predict exactly that."""
    outcome = expected(flavour)["removals"][case]
    snap = recorded(flavour)
    ids = expected(flavour)["spec_ids"]
    names = [short_id(ids[n[3:]]) if n.startswith("id:") else n for n in outcome["names"]]
    plan = remove_images(snap, names, force=outcome["force"], remove_stopped_containers=bool(outcome["containers"]))
    assert plan.refusals == [] and plan.not_found == [] and plan.orphaned == []
    containers_outside = 0 if snap.containerd_store else outcome["containers_size_rw"]
    assert plan.reclaimed_bytes == outcome["layers_size_drop"] + containers_outside
    removed = [a["name"] for a in plan.actions if a["action"] == "remove_container"]
    assert removed == outcome["containers"]
    # The images the engine reported Deleted are the ones planned for deletion.
    engine_deleted = {e["Deleted"] for r in outcome["engine_response"] for e in r if e.get("Deleted") in snap.images}
    assert {a["image"] for a in plan.actions if a["action"] == "delete_image"} == engine_deleted


@pytest.mark.parametrize("flavour, case, freed", [
    ("28.5", "d1_both_tags", 2_000_000),          # S stays with k1
    ("28.5", "d3_and_d4", 3_700_000),             # X shared only by the deleted d3 and d4 is freed
    ("28.5", "k1_and_d1", 6_500_000),             # S counted once
    ("20.10", "stopped_with_container", 300_000),
])
def test_fixture_guard_the_recorded_drops_are_the_scenario_sizes(flavour, case, freed):
    """A guard on the recorded fixtures, not on the code: the engines' measured drops are what the scenario's layer
    sizes say, so the planner tests above compare with a measurement that makes sense (re-recording must keep it)."""
    assert expected(flavour)["removals"][case]["layers_size_drop"] == freed


def test_a_containerd_drop_is_content_and_snapshots():
    """d3 alone, on the containerd store: its manifest, its config and its own layer blob (sizes from the manifest's
    descriptors), and its own snapshot (the history's size); X and the base stay with d4."""
    snap = recorded("28.5-containerd")
    image = by_tag(snap, P + "lab/d3:1")
    manifest_blob, config_blob, _base_blob, _x_blob, own_blob = snap.content[image.id]["manifests"][image.id]
    own_snapshot = snap.layers[image.id][-1]
    assert [snap.layer_sizes[k] for k in (manifest_blob, config_blob, own_blob, own_snapshot)] == \
        [739, 667, 512_000, 512_000]
    assert expected("28.5-containerd")["removals"]["d3_only"]["layers_size_drop"] == 739 + 667 + 512_000 + 512_000


# ---------------------------------------------------------------- tags

def test_untag_when_other_tags_remain(snap):
    plan = remove_images(snap, [P + "lab/multi:1"])
    assert actions(plan) == [("untag", P + "lab/multi:1")]
    assert plan.actions[0]["bytes"] == 0 and plan.reclaimed_bytes == 0
    assert P + "lab/multi:2" in plan.actions[0]["reason"]


def test_last_tag_deletes(snap):
    image = by_tag(snap, P + "lab/d3:1")
    plan = remove_images(snap, [P + "lab/d3:1"])
    assert actions(plan) == [("delete_image", P + "lab/d3:1")]
    assert plan.actions[0]["image"] == image.id and plan.actions[0]["untags"] == [P + "lab/d3:1"] + (
        list(image.repo_digests))
    if not snap.containerd_store:
        assert plan.reclaimed_bytes == 500_000


def test_two_tags_of_one_image_in_one_call(snap):
    plan = remove_images(snap, [P + "lab/d1:2", P + "lab/d1:1"])
    assert actions(plan) == [("untag", P + "lab/d1:2"), ("delete_image", P + "lab/d1:1")]
    assert plan.actions[0]["bytes"] == 0
    if not snap.containerd_store:
        assert plan.actions[1]["bytes"] == 2_000_000


def test_a_name_listed_twice_is_removed_once(snap):
    plan = remove_images(snap, [P + "lab/d3:1", P + "lab/d3:1"])
    assert actions(plan) == [("delete_image", P + "lab/d3:1")]
    assert plan.not_found == [P + "lab/d3:1"]  # the second time it is already gone
    assert plan.refusals == []


def test_an_image_named_by_tag_and_by_id_is_deleted_once(snap):
    image = by_tag(snap, P + "lab/d3:1")
    plan = remove_images(snap, [P + "lab/d3:1", short_id(image.id)])
    assert [a["action"] for a in plan.actions] == ["delete_image"]
    assert plan.not_found == [short_id(image.id)]


@pytest.mark.parametrize("name", [P + "lab/nope:1", "1", "12", "abcdef", "sha256:" + "f" * 64, "nope"])
def test_absent(snap, name):
    plan = remove_images(snap, [name], force=True, remove_stopped_containers=True)
    assert plan.actions == [] and plan.refusals == [] and plan.not_found == [name]


def test_tag_completes_each_name_without_tag_or_digest():
    """image_remove's tag (community.docker.docker_image_remove's): NAME:TAG for a bare name; a name's own tag wins."""
    snap = make_snapshot([("a", ["lab/a:1", "lab/a:2", "lab/a:3"], ["a"], None)])
    plan = remove_images(snap, ["lab/a", "lab/a:3"], tag="2")
    assert actions(plan) == [("untag", "lab/a:2"), ("untag", "lab/a:3")]
    assert plan.not_found == []


def test_tag_leaves_ids_alone_and_names_without_the_tag_are_not_found():
    snap = make_snapshot([("a", ["lab/a:1"], ["a"], None)])
    assert remove_images(snap, ["lab/a"], tag="9").not_found == ["lab/a"]
    assert actions(remove_images(snap, [hid("a")], tag="9")) == [("delete_image", hid("a"))]


def test_docker_io_names_resolve_like_the_cli():
    snap = make_snapshot([("bb", ["busybox:latest"], ["bb"], None)])
    plan = remove_images(snap, ["docker.io/library/busybox"])
    assert actions(plan) == [("delete_image", "busybox:latest")]


# ---------------------------------------------------------------- by ID

def test_id_with_several_tags_is_refused_without_force_and_names_the_tags(snap):
    image = by_tag(snap, P + "lab/multi:1")
    plan = remove_images(snap, [short_id(image.id)])
    assert plan.actions == []
    [refusal] = plan.refusals
    assert refusal["name"] == short_id(image.id)
    for tag in (P + "lab/multi:1", P + "lab/multi:2", P + "other/multi:1"):
        assert tag in refusal["reason"]
    assert "force" in refusal["reason"]


def test_id_with_several_tags_in_one_repository_is_refused_too(snap):
    image = by_tag(snap, P + "lab/d1:1")
    assert remove_images(snap, [image.id]).refusals


def test_id_with_several_tags_and_force_untags_all_and_deletes(snap):
    image = by_tag(snap, P + "lab/multi:1")
    plan = remove_images(snap, [image.id], force=True)
    assert actions(plan) == [("delete_image", image.id)]
    action = plan.actions[0]
    assert action["force"] is True
    assert set(action["untags"]) == set(image.repo_tags) | set(image.repo_digests)
    if not snap.containerd_store:
        assert plan.reclaimed_bytes == 200_000


def test_dangling_image_by_short_id(snap):
    dangling = next(i for i in snap.images.values() if not i.repo_tags and not i.manifests[1:])
    plan = remove_images(snap, [short_id(dangling.id)])
    assert actions(plan) == [("delete_image", dangling.id)] and plan.actions[0]["force"] is False
    if not snap.containerd_store:
        assert plan.reclaimed_bytes == 150_000


def test_six_hex_short_id(snap):
    image = by_tag(snap, P + "lab/d3:1")
    prefix = image.id[7:13]
    assert sum(i.id[7:].startswith(prefix) for i in snap.images.values()) == 1
    assert actions(remove_images(snap, [prefix])) == [("delete_image", image.id)]


# ---------------------------------------------------------------- containers

def _running_names(snap):
    image = by_tag(snap, P + "lab/run:1")
    return [P + "lab/run:1", short_id(image.id), image.id]


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("remove_stopped", [False, True])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_running_container_refuses_with_and_without_force(snap, force, remove_stopped, which):
    name = _running_names(snap)[which]
    web = container_named(snap, "rec-web")
    plan = remove_images(snap, [name], force=force, remove_stopped_containers=remove_stopped)
    assert plan.actions == [] and plan.orphaned == []
    [refusal] = plan.refusals
    assert refusal["name"] == name
    for part in ("rec-web", short_id(web.id), "running"):
        assert part in refusal["reason"]


@pytest.mark.parametrize("state", ["running", "paused", "restarting"])
def test_paused_and_restarting_containers_hold_their_image_as_running_ones(state):
    snap = make_snapshot([("a", ["lab/a:1"], ["a"], None)], containers=[("c", "a", state, 0)])
    plan = remove_images(snap, ["lab/a:1"], force=True, remove_stopped_containers=True)
    assert plan.actions == [] and state in plan.refusals[0]["reason"]


def test_stopped_container_refuses_and_suggests_remove_stopped_containers(snap):
    halted = container_named(snap, "rec-halted")
    plan = remove_images(snap, [P + "lab/stop:1"])
    assert plan.actions == []
    [refusal] = plan.refusals
    for part in ("remove_stopped_containers", "rec-halted", short_id(halted.id), "exited"):
        assert part in refusal["reason"]


def test_stopped_container_removed_first_with_remove_stopped_containers(snap):
    halted = container_named(snap, "rec-halted")
    plan = remove_images(snap, [P + "lab/stop:1"], remove_stopped_containers=True)
    assert [a["action"] for a in plan.actions] == ["remove_container", "delete_image"]
    # The containerd store gives a container an init snapshot too (28 KiB), which SizeRw does not count.
    init_snapshot = 28_672 if snap.containerd_store else 0
    assert plan.actions[0]["container"] == halted.id and plan.actions[0]["bytes"] == halted.size_rw + init_snapshot
    assert plan.actions[1]["image"] == halted.image_id
    if not snap.containerd_store:
        assert plan.actions[1]["bytes"] == 300_000
        assert plan.reclaimed_bytes == 300_000 + 50_000


def test_force_alone_on_a_stopped_containers_image_untags_and_orphans(snap):
    halted = container_named(snap, "rec-halted")
    plan = remove_images(snap, [P + "lab/stop:1"], force=True)
    assert actions(plan) == [("force_untag", P + "lab/stop:1")]
    # Its last tag: every reference goes with it, the containerd store's repo@digest too.
    assert plan.actions[0]["untags"] == sorted(by_tag(snap, P + "lab/stop:1").references)
    assert plan.actions[0]["bytes"] == 0 and plan.reclaimed_bytes == 0
    assert plan.actions[0]["record_deleted"] is (not snap.containerd_store)
    [orphan] = plan.orphaned
    assert orphan["image"] == halted.image_id and orphan["containers"] == [halted.id]
    assert orphan["container_names"] == ["rec-halted"]
    if not snap.containerd_store:
        assert orphan["bytes"] == 300_000


def test_force_by_id_on_a_stopped_containers_image_deletes_the_record_on_every_store(snap):
    image = by_tag(snap, P + "lab/stop:1")
    plan = remove_images(snap, [image.id], force=True)
    assert [a["action"] for a in plan.actions] == ["force_untag"] and plan.actions[0]["record_deleted"] is True
    # The container keeps the layers; on the containerd store the record's content goes with it, but for the base
    # layer's blob (1,986,560 B of tar), which the other images hold.
    content = sum(m["content"] for m in image.manifests)
    assert plan.actions[0]["bytes"] == (content - 1_986_560 if snap.containerd_store else 0)


def test_stopped_container_of_a_multi_tag_image_only_untags():
    snap = make_snapshot([("a", ["lab/a:1", "lab/a:2"], ["a"], None)], containers=[("c", "a", "exited", 9)])
    assert actions(remove_images(snap, ["lab/a:1"])) == [("untag", "lab/a:1")]
    plan = remove_images(snap, ["lab/a:1", "lab/a:2"], remove_stopped_containers=True)
    assert actions(plan) == [("untag", "lab/a:1"), ("remove_container", "c"), ("delete_image", "lab/a:2")]
    assert plan.reclaimed_bytes == 1000 + 9


def test_two_stopped_containers_are_both_removed():
    snap = make_snapshot([("a", ["lab/a:1"], ["base", "a"], None), ("k", ["lab/k:1"], ["base", "k"], None)],
                         containers=[("c2", "a", "exited", 5), ("c1", "a", "created", 0)])
    plan = remove_images(snap, ["lab/a:1"], remove_stopped_containers=True)
    assert actions(plan) == [("remove_container", "c1"), ("remove_container", "c2"), ("delete_image", "lab/a:1")]
    assert [a["bytes"] for a in plan.actions] == [0, 5, 1000]


# ---------------------------------------------------------------- containerd digests

def test_containerd_digest_reference_removes_that_repositorys_tags():
    snap = recorded("28.5-containerd")
    image = by_tag(snap, P + "lab/d1:1")
    [digest] = image.repo_digests
    plan = remove_images(snap, [digest])
    assert actions(plan) == [("delete_image", digest)]


def test_removing_a_repositorys_last_tag_drops_its_digest():
    snap = recorded("28.5-containerd")
    image = by_tag(snap, P + "other/multi:1")
    plan = remove_images(snap, [P + "other/multi:1"])
    assert actions(plan) == [("untag", P + "other/multi:1")]
    # The image keeps lab/multi's tags and digest; other/multi's digest goes with its last tag, and is reported.
    assert f"{P}other/multi@{image.id}" not in plan.actions[0]["reason"]
    assert f"{P}lab/multi@{image.id}" in plan.actions[0]["reason"]
    assert plan.actions[0]["untags"] == [f"{P}other/multi:1", f"{P}other/multi@{image.id}"]


def test_an_image_in_two_repositories_loses_every_reference_it_had(snap):
    """By its names one by one or by ID with force: `untags` (so `untagged`) holds every reference the image had,
    each repository's digests with its last tag, as image inspect lists them (the containerd store's recorded snapshot
    holds both repositories' digests, as inspect does)."""
    image = by_tag(snap, P + "other/multi:1")
    by_names = remove_images(snap, sorted(image.repo_tags))
    assert actions(by_names) == [("untag", P + "lab/multi:1"), ("untag", P + "lab/multi:2"),
                                 ("delete_image", P + "other/multi:1")]
    assert untagged_by(by_names.actions) == sorted(image.references)
    by_id = remove_images(snap, [image.id], force=True)
    assert by_id.actions[0]["untags"] == untagged_by(by_id.actions) == sorted(image.references)
    if snap.containerd_store:
        assert image.repo_digests == (f"{P}lab/multi@{image.id}", f"{P}other/multi@{image.id}")


# ---------------------------------------------------------------- prune of untagged parents

CHAIN = [
    ("root", [], ["r"], None),
    ("mid", [], ["r", "m"], "root"),
    ("app", ["lab/app:1"], ["r", "m", "a"], "mid"),
]
CHAIN_SIZES = {"r": 100, "m": 20, "a": 3}


@pytest.mark.parametrize("store, prune, deleted, freed", [
    ("overlay2", True, ["app", "mid", "root"], 123),
    ("overlay2", False, ["app"], 3),
    ("containerd", True, ["app", "mid", "root"], 123),
    ("containerd", False, ["app"], 3),
])
def test_prune_of_untagged_parents(store, prune, deleted, freed):
    snap = make_snapshot(CHAIN, sizes=CHAIN_SIZES, store=store)
    plan = remove_images(snap, ["lab/app:1"], prune_parents=prune)
    assert [a["image"] for a in plan.actions] == [hid(n) for n in deleted]
    assert all(a["action"] == "delete_image" for a in plan.actions)
    assert [a["bytes"] for a in plan.actions] == [{"app": 3, "mid": 20, "root": 100}[n] for n in deleted]
    assert plan.reclaimed_bytes == freed


@pytest.mark.parametrize("extra_images, containers, deleted", [
    ([("sib", ["lab/sib:1"], ["r", "m", "s"], "mid")], [], ["app"]),       # mid has another child
    ([("sib", ["lab/sib:1"], ["r", "s"], "root")], [], ["app", "mid"]),    # root has another child
    ([], [("c", "mid", "exited", 0)], ["app"]),                            # a container uses mid
    ([], [("c", "root", "running", 0)], ["app", "mid"]),
])
@pytest.mark.parametrize("store", ["overlay2", "containerd"])
def test_prune_stops_at_a_needed_parent(extra_images, containers, deleted, store):
    snap = make_snapshot(CHAIN + extra_images, containers=containers, sizes=CHAIN_SIZES, store=store)
    plan = remove_images(snap, ["lab/app:1"])
    assert [a["image"] for a in plan.actions] == [hid(n) for n in deleted]


def test_prune_keeps_a_tagged_parent():
    chain = [("root", ["lab/root:1"], ["r"], None)] + CHAIN[1:]
    plan = remove_images(make_snapshot(chain, sizes=CHAIN_SIZES), ["lab/app:1"])
    assert [a["image"] for a in plan.actions] == [hid("app"), hid("mid")]


@pytest.mark.parametrize("store, refused", [("overlay2", True), ("containerd", False)])
def test_parent_with_a_child_is_refused_on_graphdriver_only(store, refused):
    snap = make_snapshot(CHAIN, sizes=CHAIN_SIZES, store=store)
    plan = remove_images(snap, [hid("mid")], force=True, prune_parents=False)
    if refused:
        assert plan.actions == [] and "child" in plan.refusals[0]["reason"]
        assert short_id(hid("app")) in plan.refusals[0]["reason"]
    else:
        assert actions(plan) == [("delete_image", hid("mid"))] and plan.refusals == []


def test_child_then_parent_in_one_call_is_allowed():
    snap = make_snapshot(CHAIN, sizes=CHAIN_SIZES)
    plan = remove_images(snap, ["lab/app:1", hid("mid")], prune_parents=False)
    assert [a["image"] for a in plan.actions] == [hid("app"), hid("mid")] and plan.refusals == []


# ---------------------------------------------------------------- platforms (containerd store)

@pytest.fixture
def c8d():
    return recorded("28.5-containerd")


def test_platform_shared_with_another_image_is_refused(c8d):
    other = by_tag(c8d, P + "lab/mp-amd64:1")
    plan = remove_images(c8d, [P + "lab/mp:1"], platform="linux/amd64")
    assert plan.actions == []
    [refusal] = plan.refusals
    assert short_id(other.id) in refusal["reason"] and "force" in refusal["reason"]


def test_platform_shared_with_force_is_removed(c8d):
    image = by_tag(c8d, P + "lab/mp:1")
    plan = remove_images(c8d, [P + "lab/mp:1"], platform="linux/amd64", force=True)
    [action] = plan.actions
    assert action["action"] == "delete_platform" and action["image"] == image.id
    # Its manifest, config, layer blob and snapshot, which mp-amd64 loses too; both indexes stay.
    assert action["bytes"] == expected("28.5-containerd")["platform_removals"]["mp_amd64_shared"]["layers_size_drop"]


def test_unshared_platform_is_removed_without_force(c8d):
    plan = remove_images(c8d, [P + "lab/mp:1"], platform="linux/arm64")
    [action] = plan.actions
    assert (action["action"], action["platform"]) == ("delete_platform", "linux/arm64")
    assert action["reference"] == P + "lab/mp:1"
    assert action["bytes"] == expected("28.5-containerd")["platform_removals"]["mp_arm64"]["layers_size_drop"] > 0


@pytest.mark.parametrize("case", ["mp_arm64", "mp_amd64_shared", "part_arm64_in_part", "part_amd64"])
def test_platform_bytes_equal_what_the_engine_freed(c8d, case):
    """Measured once containerd's collector had run; part's arm64 was pulled in part (its manifest only)."""
    outcome = expected("28.5-containerd")["platform_removals"][case]
    plan = remove_images(c8d, [outcome["reference"]], platform=outcome["platform"], force=True)
    assert plan.refusals == [] and plan.not_found == []
    assert plan.reclaimed_bytes == outcome["layers_size_drop"]


def test_removing_the_platforms_then_the_image_frees_all_it_held_once(c8d):
    image = by_tag(c8d, P + "lab/part:1")
    plan = remove_images(c8d, [P + "lab/part:1"], platform="linux/arm64")
    plan_all = remove_images(c8d, [P + "lab/part:1"])
    planner = _ImageRemovalPlanner(c8d, RemovalRequest([]), None)  # the planner's steps, in an order no request has
    for platform in ("linux/amd64", "linux/arm64"):
        planner.remove_platform(P + "lab/part:1", platform)
    planner.remove(P + "lab/part:1")
    assert [a["action"] for a in planner.plan.actions] == ["delete_platform", "delete_platform", "delete_image"]
    assert planner.plan.actions[-1]["bytes"] == image.index_size  # only the index was left
    assert planner.plan.reclaimed_bytes == plan_all.reclaimed_bytes > plan.reclaimed_bytes == 399


@pytest.mark.parametrize("name, platform, absent", [
    (P + "lab/mp:1", "linux/s390x", P + "lab/mp:1 (linux/s390x)"),
    (P + "lab/nope:1", "linux/amd64", P + "lab/nope:1"),
])
def test_platform_absent(c8d, name, platform, absent):
    plan = remove_images(c8d, [name], platform=platform)
    assert plan.actions == [] and plan.not_found == [absent]


# ---------------------------------------------------------------- a container orphaned by an earlier rmi -f

def _orphaned(flavour):
    import json

    from snapshot_helpers import SNAPSHOTS

    from ansible_collections.reclaim.docker.plugins.module_utils._model import Snapshot
    data = json.loads((SNAPSHOTS / f"{flavour}.orphaned.json").read_text())
    return Snapshot.from_dict(data["snapshot"]), data["removal"]


@pytest.mark.parametrize("flavour", OVERLAY2)
def test_orphaned_container_keeps_the_shared_layers_on_the_engine(flavour):
    """What the engine did: only b's own layer went (du agrees); LayersSize dropped by base + S + b, because it
    counts only the layers listed images reference, and no listed image references the container's layers."""
    snap, removal = _orphaned(flavour)
    [halted] = snap.containers.values()
    assert halted.image_id not in snap.images            # the record went with rmi -f; the container stayed
    deleted_layers = {e["Deleted"] for e in removal["engine_response"] if "Deleted" in e} - set(snap.images)
    assert [snap.layer_sizes[k] for k in deleted_layers] == [200_000]
    assert 200_000 < removal["du_drop"] < 200_000 * 1.2
    assert removal["layers_size_drop"] == sum(snap.layer_sizes.values())  # misleading here


@pytest.mark.parametrize("flavour", OVERLAY2)
def test_bytes_freed_next_to_an_orphaned_container_are_what_the_engine_deleted(flavour):
    snap, removal = _orphaned(flavour)
    plan = remove_images(snap, removal["names"])
    deleted_layers = {e["Deleted"] for e in removal["engine_response"] if "Deleted" in e} - set(snap.images)
    assert plan.reclaimed_bytes == sum(snap.layer_sizes[k] for k in deleted_layers)


def test_an_orphaned_image_is_reported_once():
    snap = make_snapshot([("a", ["lab/a:1"], ["a"], None)], containers=[("c", "a", "exited", 5)], store="containerd")
    plan = remove_images(snap, ["lab/a:1", hid("a")], force=True)
    assert [a["action"] for a in plan.actions] == ["force_untag", "force_untag"]
    assert [o["image"] for o in plan.orphaned] == [hid("a")]
