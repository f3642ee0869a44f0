"""Drift guards between the modules' RETURN docs and the code: the return values that several modules share read the
same, and each module documents exactly the actions its planner can emit (every documented one is reached by a case
below, and no generated case emits an undocumented one)."""

from __future__ import annotations

import importlib
import re
from collections import defaultdict

import pytest
import yaml
from hypothesis import given, settings
from unit.plugins.module_utils.snapshot_helpers import DAY, NOW, PREFIX, make_snapshot, policy, prune, recorded, \
    remove_images, snapshot_with_ages
from unit.plugins.module_utils.strategies import cases, prune_cases, retention_cases

from ansible_collections.reclaim.docker.plugins.module_utils._model import Network, Volume
from ansible_collections.reclaim.docker.plugins.module_utils._plan import ACTIONS
from ansible_collections.reclaim.docker.plugins.module_utils._retention_plan import plan_retention

MODULES = ("prune", "image_retention", "image_remove", "disk_usage_info", "storage_leaks")
# Return values documented word for word the same wherever they appear (RETURN doc fragments need ansible-core 2.20).
SAME_TEXT = ("unknown_bytes", "inexact_reason")
# Names that mean different things in different modules: storage_leaks' root_dir is the path its walk read, and its
# kept the leaks min_age or a mount holds; disk_usage_info's root_dir is the walk's report, image_retention's kept the
# images its policy keeps.
NAMESAKES = {"root_dir", "kept"}
# Fields every module's actions carry, in the same shape.
ACTION_FIELDS = ("action", "bytes", "status", "engine_reason")


def returns(module):
    return yaml.safe_load(importlib.import_module(f"ansible_collections.reclaim.docker.plugins.modules.{module}").RETURN)


def shape(block):
    """A return value's type and, recursively, its contents' names and types: what a playbook relies on."""
    return dict(type=block.get("type"), elements=block.get("elements"),
                contains={name: shape(inner) for name, inner in (block.get("contains") or {}).items()})


def documented_actions(module):
    description = returns(module)["actions"]["contains"]["action"]["description"]
    return set(re.findall(r"V\((\w+)\)", description if isinstance(description, str) else " ".join(description)))


def shared_names():
    modules_of = defaultdict(list)
    for module in MODULES:
        for name in returns(module):
            modules_of[name].append(module)
    return {name: modules for name, modules in modules_of.items() if len(modules) > 1}


@pytest.mark.parametrize("name", sorted(set(shared_names()) - NAMESAKES - {"actions"}))
def test_a_return_value_several_modules_share_has_one_shape(name):
    modules = shared_names()[name]
    shapes = {module: shape(returns(module)[name]) for module in modules}
    assert all(s == shapes[modules[0]] for s in shapes.values()), shapes
    if name in SAME_TEXT:
        assert all(returns(module)[name] == returns(modules[0])[name] for module in modules)


def test_every_module_s_actions_carry_the_common_fields_alike():
    modules = shared_names()["actions"]
    for field in ACTION_FIELDS:
        shapes = {module: shape(returns(module)["actions"]["contains"][field]) for module in modules}
        assert len({repr(s) for s in shapes.values()}) == 1, (field, shapes)


def test_every_action_has_a_type_in_the_plan_vocabulary():
    documented = set().union(*(documented_actions(m) for m in ("prune", "image_retention", "image_remove",
                                                               "storage_leaks")))
    assert documented == set(ACTIONS)


OLD = NOW - 40 * DAY
# The planners' invariants have their own, larger runs; these only look at the action names.
FEW = settings(max_examples=40, deadline=None)


def prune_everything():
    """A host with something for each of prune's actions: a stopped container, an unused image with two tags (one
    untagged, then the image deleted), a dangling image, an unused network and volume, a build cache record."""
    snapshot = make_snapshot([("two", ["lab/two:1", "lab/two:2"], ["t"], None), ("used", ["lab/used:1"], ["u"], None),
                              ("dangling", [], ["d"], None)], [("job", "used", "exited", 40)])
    for container in snapshot.containers.values():
        container.created = OLD
    snapshot.networks = {"n1": Network("n1", "old", created=OLD)}
    snapshot.volumes = {"v1": Volume("v1", created=OLD, size=10, anonymous=True)}
    snapshot.build_cache = [dict(ID="r1", Size=10, InUse=False, Shared=False, LastUsedAt="2020-01-01T00:00:00Z")]
    return prune(snapshot, containers={}, images={"dangling": False}, networks={}, volumes={}, builder_cache={})


def remove_each_way():
    """image_remove's five: an untag, a container removed before its image's deletion, force on an image in use,
    and one platform of a multi-platform image (containerd store)."""
    snapshot = make_snapshot([("two", ["lab/two:1", "lab/two:2"], ["t"], None), ("used", ["lab/used:1"], ["u"], None)],
                             [("job", "used", "exited", 40)])
    containerd = recorded("28.5-containerd")
    return [remove_images(snapshot, ["lab/two:1"]), remove_images(snapshot, ["lab/used:1"], force=True),
            remove_images(snapshot, ["lab/used:1"], remove_stopped_containers=True),
            remove_images(containerd, [PREFIX + "lab/mp:1"], platform="linux/amd64", force=True)]


def retain_the_newest():
    """keep_last 1: the older image of a repository deleted; the newest of one repository keeps its image, its tag of
    another repository, where a newer image is, is untagged."""
    snapshot = snapshot_with_ages([("a1", ["lab/a:1"], ["x"], 50, {}), ("a2", ["lab/a:2", "lab/b:1"], ["y"], 40, {}),
                                   ("b2", ["lab/b:2"], ["z"], 30, {})])
    return plan_retention(snapshot, policy(keep_last=1))


@pytest.mark.parametrize("module, plans", [
    ("prune", lambda: [prune_everything()]),
    ("image_remove", remove_each_way),
    ("image_retention", lambda: [retain_the_newest()]),
])
def test_every_documented_action_is_one_the_planner_emits(module, plans):
    assert {a["action"] for plan in plans() for a in plan.actions} == documented_actions(module)


def test_storage_leaks_documents_the_actions_that_remove_host_files():
    assert documented_actions("storage_leaks") == {name for name, (item, _key) in ACTIONS.items() if item == "leak"}


@FEW
@given(cases())
def test_image_remove_emits_only_documented_actions(case):
    snapshot, request = case
    assert {a["action"] for a in remove_images(snapshot, **request).actions} <= documented_actions("image_remove")


@FEW
@given(prune_cases())
def test_prune_emits_only_documented_actions(case):
    snapshot, options = case
    plan = prune(snapshot, containers={}, images={"dangling": options["dangling"]}, networks={}, volumes={},
                 builder_cache={})
    assert {a["action"] for a in plan.actions} <= documented_actions("prune")


@FEW
@given(retention_cases())
def test_image_retention_emits_only_documented_actions(case):
    snapshot, options = case
    plan = plan_retention(snapshot, policy(**options))
    assert {a["action"] for a in plan.actions} <= documented_actions("image_retention")


@pytest.mark.parametrize("module", MODULES)
def test_each_doc_block_is_yaml_a_mapping_or_a_task_list(module):
    """A plain scalar with ': ' in it turns a sentence into a mapping; sanity finds it later, this at once."""
    docs = importlib.import_module(f"ansible_collections.reclaim.docker.plugins.modules.{module}")
    assert isinstance(yaml.safe_load(docs.DOCUMENTATION)["description"], list)
    assert all(isinstance(note, str) for note in yaml.safe_load(docs.DOCUMENTATION).get("notes", []))
    assert all("name" in task for task in yaml.safe_load(docs.EXAMPLES))
    assert isinstance(returns(module), dict)
