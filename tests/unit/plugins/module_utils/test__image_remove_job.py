"""image_remove's job through the real runner, on a stub engine: community.docker.docker_image_remove's contract (the
option tag, the return value image, the diff with exists, id, tags, digests, plus images), in check mode and after a
real run."""

from __future__ import annotations

import pytest
from snapshot_helpers import FLAVOURS, PREFIX, by_tag, hid, make_snapshot, recorded
from stub_engine import StubEngine, run

from ansible_collections.reclaim.docker.plugins.module_utils._image_remove_job import ImageRemoveJob
from ansible_collections.reclaim.docker.plugins.module_utils._model import Image, Snapshot
from ansible_collections.reclaim.docker.plugins.module_utils._simulation import references_after_removing

DIFF_KEYS = {"exists", "id", "tags", "digests"}  # community.docker.docker_image_remove's, for an image that exists


@pytest.fixture
def snap():
    return make_snapshot([("a", ["lab/a:1", "lab/a:2"], ["a"], None), ("b", ["lab/b:1"], ["b"], None)])


# ---------------------------------------------------------------- the option tag

def test_tag_applies_to_a_name_without_one(snap, tmp_path):
    result = run(ImageRemoveJob, StubEngine(snap), {"name": ["lab/a"], "tag": "2"}, tmp_path)
    assert result["untagged"] == ["lab/a:2"] and result["deleted"] == [] and result["not_found"] == []


def test_the_default_tag_is_latest(snap, tmp_path):
    result = run(ImageRemoveJob, StubEngine(snap), {"name": ["lab/a"]}, tmp_path, check=True)
    assert result["not_found"] == ["lab/a"] and result["changed"] is False


def test_a_single_name_as_a_string_works_as_in_docker_image_remove(snap, tmp_path):
    assert run(ImageRemoveJob, StubEngine(snap), {"name": "lab/b:1"}, tmp_path, check=True)["deleted"] == [hid("b")]


@pytest.mark.parametrize("tag", ["", "-1", "a b", "t" * 129, "sha256:" + "a" * 64, None])
def test_a_bad_tag_fails_naming_it(snap, tag, tmp_path):
    result = run(ImageRemoveJob, StubEngine(snap), {"name": ["lab/a"], "tag": tag}, tmp_path)
    # Ours names it; for None, ansible-core before 2.19 refuses it first ("argument 'tag' is of type ...").
    assert result["failed"] is True and result["msg"].startswith(("tag ", "argument 'tag' ")), result["msg"]


# ---------------------------------------------------------------- the return value image

def test_image_is_the_inspect_result_of_the_first_name_before_removal(snap, tmp_path):
    for check in (True, False):
        result = run(ImageRemoveJob, StubEngine(snap), {"name": ["lab/b:1", "lab/a:1"]}, tmp_path, check=check)
        assert result["image"] == {"Id": hid("b"), "RepoTags": ["lab/b:1"], "RepoDigests": []}
        assert result["deleted"] == [hid("b")]


def test_image_is_empty_when_the_first_name_matches_nothing(snap, tmp_path):
    assert run(ImageRemoveJob, StubEngine(snap), {"name": ["lab/none:1", "lab/b:1"]}, tmp_path)["image"] == {}


# ---------------------------------------------------------------- the diff

@pytest.mark.parametrize("check", [True, False])
def test_untag_only_diff(snap, check, tmp_path):
    diff = run(ImageRemoveJob, StubEngine(snap), {"name": ["lab/a:1"]}, tmp_path, check=check, diff=True)["diff"]
    before = dict(exists=True, id=hid("a"), tags=["lab/a:1", "lab/a:2"], digests=[])
    assert {k: diff["before"][k] for k in DIFF_KEYS} == before
    assert {k: diff["after"][k] for k in DIFF_KEYS} == dict(exists=True, id=hid("a"), tags=["lab/a:2"], digests=[])
    assert diff["before"]["images"] == [dict(id=hid("a"), exists=True, tags=["lab/a:1", "lab/a:2"], digests=[])]
    assert diff["after"]["images"] == [dict(id=hid("a"), exists=True, tags=["lab/a:2"], digests=[])]


def test_deletion_diff_is_exists_false_after(snap, tmp_path):
    diff = run(ImageRemoveJob, StubEngine(snap), {"name": ["lab/b:1"]}, tmp_path, diff=True)["diff"]
    assert set(diff["before"]) == DIFF_KEYS | {"images"} and diff["before"]["exists"] is True
    assert diff["after"] == {"exists": False,
                             "images": [dict(id=hid("b"), exists=False, tags=[], digests=[])]}


def test_nothing_found_diff(snap, tmp_path):
    diff = run(ImageRemoveJob, StubEngine(snap), {"name": ["lab/none:1"]}, tmp_path, check=True, diff=True)["diff"]
    assert diff == {"before": {"exists": False, "images": []}, "after": {"exists": False, "images": []}}


def test_several_names_keep_the_first_at_the_top_and_list_every_image(snap, tmp_path):
    diff = run(ImageRemoveJob, StubEngine(snap), {"name": ["lab/a:1", "lab/b:1", "lab/none:1"]}, tmp_path, check=True, diff=True)["diff"]
    assert diff["before"]["id"] == hid("a") and diff["after"]["tags"] == ["lab/a:2"]
    assert [(i["id"], i["exists"]) for i in diff["after"]["images"]] == sorted([(hid("a"), True), (hid("b"), False)])


def test_pruned_parents_are_in_images(tmp_path):
    chain = make_snapshot([("base", [], ["l1"], None), ("app", ["lab/app:1"], ["l1", "l2"], "base")])
    diff = run(ImageRemoveJob, StubEngine(chain), {"name": ["lab/app:1"]}, tmp_path, check=True, diff=True)["diff"]
    assert {i["id"] for i in diff["after"]["images"]} == {hid("app"), hid("base")}
    assert not any(i["exists"] for i in diff["after"]["images"])


@pytest.mark.parametrize("debug, diff_mode, has_diff", [(False, False, False), (True, False, True), (False, True, True)])
def test_debug_returns_the_diff_without_diff_mode(snap, debug, diff_mode, has_diff, tmp_path):
    """community.docker's modules that plan changes return their diff with debug; so does this one."""
    result = run(ImageRemoveJob, StubEngine(snap), {"name": ["lab/a:1"], "debug": debug}, tmp_path, check=True, diff=diff_mode)
    assert ("diff" in result) is has_diff


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_recorded_engines_untag_drops_the_digests_the_engine_drops(flavour, tmp_path):
    """On the containerd store every tagged image lists repo@<id>; removing a repository's last tag drops its digest
    reference too (the engine's rule, which the planner follows)."""
    snap = recorded(flavour)
    image = by_tag(snap, PREFIX + "lab/multi:1")
    diff = run(ImageRemoveJob, StubEngine(snap), {"name": [PREFIX + "lab/multi:1"]}, tmp_path, check=True, diff=True)["diff"]
    assert diff["after"]["digests"] == sorted(references_after_removing(
        image.references, PREFIX + "lab/multi:1", snap.containerd_store) & set(image.repo_digests))
    assert diff["after"]["tags"] == [t for t in image.repo_tags if t != PREFIX + "lab/multi:1"]


def test_containerd_digest_reference_takes_the_repositorys_tags(tmp_path):
    image = Image(hid("x"), repo_tags=["lab/x:1", "other/y:1"], repo_digests=[f"lab/x@{hid('x')}", f"other/y@{hid('x')}"])
    snap = Snapshot({"image_store": "containerd"}, [image], [], {hid("x"): ()}, {})
    diff = run(ImageRemoveJob, StubEngine(snap), {"name": [f"lab/x@{hid('x')}"]}, tmp_path, check=True, diff=True)["diff"]
    assert diff["after"]["tags"] == ["other/y:1"] and diff["after"]["digests"] == [f"other/y@{hid('x')}"]
