"""image_remove's community.docker.docker_image_remove contract, with no engine: the option tag, the return value
image and the diff (before/after with exists, id, tags, digests, plus images), in check mode and after a real run."""

from __future__ import annotations

import contextlib
import io
import json
from unittest import mock

import pytest
from unit.plugins.module_utils.snapshot_helpers import FLAVOURS, PREFIX, by_tag, hid, make_snapshot, recorded

from ansible_collections.reclaim.docker.plugins.module_utils._model import Image, Snapshot
from ansible_collections.reclaim.docker.plugins.module_utils._plan import references_after_removing
from ansible_collections.reclaim.docker.plugins.modules import image_remove

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19
    @contextlib.contextmanager
    def patch_module_args(args=None):
        from ansible.module_utils import basic
        with mock.patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()):
            yield

DIFF_KEYS = {"exists", "id", "tags", "digests"}  # community.docker.docker_image_remove's, for an image that exists


class FakeClient:
    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.calls = []

    def request(self, method, path, params=None):
        self.calls.append((method, path))
        image = self.snapshot.images[path.split("/")[2]]
        return {"Id": image.id, "RepoTags": list(image.repo_tags), "RepoDigests": list(image.repo_digests)}


class FakePipeline:
    """The pipeline's steps on SNAPSHOT: a real run's actions all take effect."""

    snapshot_to_use = None

    def __init__(self, module):
        self.module = module
        self.client = FakeClient(self.snapshot_to_use)

    def reading(self):
        return contextlib.nullcontext()

    def snapshot(self):
        return self.snapshot_to_use

    def plan(self, snapshot, make_plan):
        return make_plan(snapshot)

    def apply(self, snapshot, plan):
        if self.module.check_mode:
            return plan.actions
        return [dict(a, status="done") for a in plan.actions]

    def finish(self, actions, result, problems=(), failure=""):
        result = dict(result, changed=bool(actions), actions=actions)
        if problems:
            self.module.fail_json(msg=f"{failure}: " + "; ".join(problems), **result)
        self.module.exit_json(**result)


def run(snapshot, args, check=False, diff=False):
    """image_remove's main() on ARGS against SNAPSHOT; its result."""
    out = io.StringIO()
    module_args = dict(args, docker_host="unix:///nonexistent.sock", _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(module_args), contextlib.redirect_stdout(out), \
            mock.patch.object(image_remove, "Pipeline", FakePipeline), \
            mock.patch.object(FakePipeline, "snapshot_to_use", snapshot):
        with pytest.raises(SystemExit):
            image_remove.main()
    return json.loads(out.getvalue())


@pytest.fixture
def snap():
    return make_snapshot([("a", ["lab/a:1", "lab/a:2"], ["a"], None), ("b", ["lab/b:1"], ["b"], None)])


# ---------------------------------------------------------------- the option tag

def test_tag_applies_to_a_name_without_one(snap):
    result = run(snap, {"name": ["lab/a"], "tag": "2"})
    assert result["untagged"] == ["lab/a:2"] and result["deleted"] == [] and result["not_found"] == []


def test_the_default_tag_is_latest(snap):
    result = run(snap, {"name": ["lab/a"]}, check=True)
    assert result["not_found"] == ["lab/a"] and result["changed"] is False


def test_a_single_name_as_a_string_works_as_in_docker_image_remove(snap):
    assert run(snap, {"name": "lab/b:1"}, check=True)["deleted"] == [hid("b")]


@pytest.mark.parametrize("tag", ["", "-1", "a b", "t" * 129, "sha256:" + "a" * 64, None])
def test_a_bad_tag_fails_naming_it(snap, tag):
    result = run(snap, {"name": ["lab/a"], "tag": tag})
    # Ours names it; for None, ansible-core before 2.19 refuses it first ("argument 'tag' is of type ...").
    assert result["failed"] is True and result["msg"].startswith(("tag ", "argument 'tag' ")), result["msg"]


# ---------------------------------------------------------------- the return value image

def test_image_is_the_inspect_result_of_the_first_name_before_removal(snap):
    for check in (True, False):
        result = run(snap, {"name": ["lab/b:1", "lab/a:1"]}, check=check)
        assert result["image"] == {"Id": hid("b"), "RepoTags": ["lab/b:1"], "RepoDigests": []}
        assert result["deleted"] == [hid("b")]


def test_image_is_empty_when_the_first_name_matches_nothing(snap):
    assert run(snap, {"name": ["lab/none:1", "lab/b:1"]})["image"] == {}


# ---------------------------------------------------------------- the diff

@pytest.mark.parametrize("check", [True, False])
def test_untag_only_diff(snap, check):
    diff = run(snap, {"name": ["lab/a:1"]}, check=check, diff=True)["diff"]
    before = dict(exists=True, id=hid("a"), tags=["lab/a:1", "lab/a:2"], digests=[])
    assert {k: diff["before"][k] for k in DIFF_KEYS} == before
    assert {k: diff["after"][k] for k in DIFF_KEYS} == dict(exists=True, id=hid("a"), tags=["lab/a:2"], digests=[])
    assert diff["before"]["images"] == [dict(id=hid("a"), exists=True, tags=["lab/a:1", "lab/a:2"], digests=[])]
    assert diff["after"]["images"] == [dict(id=hid("a"), exists=True, tags=["lab/a:2"], digests=[])]


def test_deletion_diff_is_exists_false_after(snap):
    diff = run(snap, {"name": ["lab/b:1"]}, diff=True)["diff"]
    assert set(diff["before"]) == DIFF_KEYS | {"images"} and diff["before"]["exists"] is True
    assert diff["after"] == {"exists": False,
                             "images": [dict(id=hid("b"), exists=False, tags=[], digests=[])]}


def test_nothing_found_diff(snap):
    diff = run(snap, {"name": ["lab/none:1"]}, check=True, diff=True)["diff"]
    assert diff == {"before": {"exists": False, "images": []}, "after": {"exists": False, "images": []}}


def test_several_names_keep_the_first_at_the_top_and_list_every_image(snap):
    diff = run(snap, {"name": ["lab/a:1", "lab/b:1", "lab/none:1"]}, check=True, diff=True)["diff"]
    assert diff["before"]["id"] == hid("a") and diff["after"]["tags"] == ["lab/a:2"]
    assert [(i["id"], i["exists"]) for i in diff["after"]["images"]] == sorted([(hid("a"), True), (hid("b"), False)])


def test_pruned_parents_are_in_images():
    chain = make_snapshot([("base", [], ["l1"], None), ("app", ["lab/app:1"], ["l1", "l2"], "base")])
    diff = run(chain, {"name": ["lab/app:1"]}, check=True, diff=True)["diff"]
    assert {i["id"] for i in diff["after"]["images"]} == {hid("app"), hid("base")}
    assert not any(i["exists"] for i in diff["after"]["images"])


@pytest.mark.parametrize("debug, diff_mode, has_diff", [(False, False, False), (True, False, True), (False, True, True)])
def test_debug_returns_the_diff_without_diff_mode(snap, debug, diff_mode, has_diff):
    """community.docker's modules that plan changes return their diff with debug; so does this one."""
    result = run(snap, {"name": ["lab/a:1"], "debug": debug}, check=True, diff=diff_mode)
    assert ("diff" in result) is has_diff


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_recorded_engines_untag_drops_the_digests_the_engine_drops(flavour):
    """On the containerd store every tagged image lists repo@<id>; removing a repository's last tag drops its digest
    reference too (the engine's rule, which the planner follows)."""
    snap = recorded(flavour)
    image = by_tag(snap, PREFIX + "lab/multi:1")
    diff = run(snap, {"name": [PREFIX + "lab/multi:1"]}, check=True, diff=True)["diff"]
    assert diff["after"]["digests"] == sorted(references_after_removing(
        image.references, PREFIX + "lab/multi:1", snap.containerd_store) & set(image.repo_digests))
    assert diff["after"]["tags"] == [t for t in image.repo_tags if t != PREFIX + "lab/multi:1"]


@pytest.mark.parametrize("containerd, remaining", [
    (False, {"lab/x:2", "other/y:1", "other/y@sha256:d"}),
    (True, {"lab/x:2", "other/y:1", "other/y@sha256:d"}),
])
def test_references_after_removing_a_tag_with_others_in_its_repository(containerd, remaining):
    refs = {"lab/x:1", "lab/x:2", "other/y:1", "other/y@sha256:d"}
    assert references_after_removing(refs, "lab/x:1", containerd) == remaining


def test_references_after_removing_the_last_tag_of_a_repository_drop_its_digests():
    refs = {"lab/x:1", "lab/x@sha256:d", "other/y:1"}
    assert references_after_removing(refs, "lab/x:1", False) == {"other/y:1"}


def test_containerd_digest_reference_takes_the_repositorys_tags():
    image = Image(hid("x"), repo_tags=["lab/x:1", "other/y:1"], repo_digests=[f"lab/x@{hid('x')}", f"other/y@{hid('x')}"])
    snap = Snapshot({"image_store": "containerd"}, [image], [], {hid("x"): ()}, {})
    diff = run(snap, {"name": [f"lab/x@{hid('x')}"]}, check=True, diff=True)["diff"]
    assert diff["after"]["tags"] == ["other/y:1"] and diff["after"]["digests"] == [f"other/y@{hid('x')}"]
