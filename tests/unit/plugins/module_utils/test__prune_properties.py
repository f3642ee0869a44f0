"""Invariants of the prune planner on generated snapshots (the generator and bytes oracle are shared)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test__plan_properties import SETTINGS, oracle_bytes, requests, snapshots

from ansible_collections.reclaim.docker.plugins.module_utils._filters import Filters, Protection
from ansible_collections.reclaim.docker.plugins.module_utils._image_plan import Plan, plan_image_removal
from ansible_collections.reclaim.docker.plugins.module_utils._model import Container, Snapshot, Volume
from ansible_collections.reclaim.docker.plugins.module_utils._prune_plan import PrunePlanner

NOW = 1_800_000_000.0


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


def plan_of(snapshot, options, assume_deleted=()):
    planner = PrunePlanner(snapshot, Protection({"labels": [options["protect_label"]] if options["protect_label"] else []},
                                                None, NOW))
    planner.images_left.assume_deleted(assume_deleted)
    if options["containers"]:
        planner.containers(Filters("containers", {}, NOW))
    planner.images(Filters("images", {"dangling": options["dangling"]}, NOW))
    return planner.plan


@SETTINGS
@given(prune_cases())
def test_nothing_in_use_and_nothing_protected_goes(case):
    snapshot, options = case
    plan = plan_of(snapshot, options)
    removed = {a["container"] for a in plan.actions if a["action"] == "remove_container"}
    deleted = {a["image"] for a in plan.actions if a["action"] == "delete_image"}
    assert not any(snapshot.containers[c].running for c in removed)
    for container in snapshot.containers.values():
        if container.id not in removed:
            assert container.image_id not in deleted, "an image a remaining container uses was deleted"
    if options["protect_label"]:
        assert not any("keep" in snapshot.images[i].labels for i in deleted)
    if options["dangling"]:
        # Dangling only: nothing tagged is touched (pruned parents are untagged too).
        assert not any(a["action"] == "untag" for a in plan.actions)
        assert all(not snapshot.images[i].repo_tags for i in deleted)


@SETTINGS
@given(prune_cases())
def test_bytes_equal_the_oracle_and_planning_is_pure(case):
    snapshot, options = case
    before = snapshot.to_dict()
    plan = plan_of(snapshot, options)
    assert snapshot.to_dict() == before
    assert plan.reclaimed_bytes == oracle_bytes(snapshot, plan)
    assert all(a["bytes"] >= 0 for a in plan.actions)
    again = plan_of(snapshot, options)
    assert again.actions == plan.actions


@st.composite
def chained_cases(draw):
    """A removal (as the cleanup role's retention step: whole images, never forced, containers left alone), then a
    prune."""
    snapshot, options = draw(prune_cases())
    request = dict(draw(requests(snapshot)), force=False, remove_stopped_containers=False, platform=None)
    return snapshot, request, options


@SETTINGS
@given(chained_cases())
def test_a_check_mode_chain_predicts_the_bytes_of_both_steps(case):
    """The prune told what the removal deletes counts the layers the two share, so the two predictions add up to
    what the real run (removal, then prune on what is left) frees."""
    snapshot, request, options = case
    first = plan_image_removal(snapshot, **request)
    deleted_first = {a["image"] for a in first.actions if a["action"] == "delete_image"}
    second = plan_of(snapshot, options, sorted(deleted_first))
    assert not deleted_first & {a["image"] for a in second.actions if a["action"] == "delete_image"}
    both = Plan()
    both.actions = first.actions + second.actions
    assert first.reclaimed_bytes + second.reclaimed_bytes == oracle_bytes(snapshot, both)


# A volume's times: unknown, long ago, or recent (all in Unix seconds, against NOW).
VOLUME_TIMES = st.one_of(st.none(), st.floats(min_value=NOW - 400 * 86400, max_value=NOW + 60))


@st.composite
def volume_cases(draw):
    """Volumes (anonymous or named, creation unknown or known), each with a ledger use or none and containers that
    mount it (running or stopped, some removed by the same run), and unused_for."""
    volumes, containers, ledger = [], [], {}
    for i in range(draw(st.integers(0, 6))):
        name = f"{i:064x}" if draw(st.booleans()) else f"data{i}"
        volumes.append(Volume(name, created=draw(VOLUME_TIMES), anonymous=draw(st.booleans()),
                              size=draw(st.integers(0, 10_000))))
        use = draw(VOLUME_TIMES)
        if use is not None:
            ledger[name] = use
        for j in range(draw(st.integers(0, 2))):
            created = draw(st.floats(min_value=NOW - 400 * 86400, max_value=NOW))
            containers.append(Container(f"c{i}-{j}", f"c{i}-{j}", "sha256:x", created=created, volumes=[name],
                                        state=draw(st.sampled_from(["running", "exited", "created"])),
                                        stopped=draw(st.one_of(st.none(), st.floats(min_value=created, max_value=NOW)))))
    snapshot = Snapshot({}, [], containers, volumes=volumes)
    snapshot.volume_last_use = ledger
    unused_for = draw(st.integers(0, 90)) * 86400
    return snapshot, dict(unused_for=f"{unused_for}s", all=draw(st.booleans()), containers=draw(st.booleans()))


@SETTINGS
@given(volume_cases())
def test_an_unknown_or_recent_use_never_selects_a_volume(case):
    snapshot, options = case
    planner = PrunePlanner(snapshot, Protection({}, None, NOW))
    if options["containers"]:
        planner.containers(Filters("containers", {}, NOW))
    planner.volumes(Filters("volumes", {"unused_for": options["unused_for"], "all": options["all"]}, NOW))
    unused_since = NOW - float(options["unused_for"][:-1])
    for action in (a for a in planner.plan.actions if a["action"] == "remove_volume"):
        volume = snapshot.volumes[action["volume"]]
        users = [c for c in snapshot.containers.values() if volume.name in c.volumes]
        assert volume.anonymous or options["all"]
        assert volume.created is not None and volume.created < unused_since
        assert snapshot.volume_last_use.get(volume.name, float("-inf")) < unused_since
        assert not any(c.running for c in users)
        assert all((c.stopped or c.created) < unused_since for c in users)
        assert action["bytes"] == volume.size
    removed = {a["volume"] for a in planner.plan.actions if a["action"] == "remove_volume"}
    for volume in snapshot.volumes.values():
        if volume.created is None and (volume.anonymous or options["all"]):
            assert volume.name not in removed
