"""An image pulled into two repositories, on real engines of every flavour, through Ansible: what the modules say it
held (image_remove's diff and untagged, the planner's references, an approved plan's references) is what image
inspect says, digests included.

The image comes from a private registry on the loopback (harness.registry): pushed under two repositories, removed,
then pulled from both, so each repository has its tag and its repo@digest on every flavour. The containerd store's
image list names only one of the two digests (docs/engine-notes.md).
"""

from __future__ import annotations

import docker
import pytest

from harness import registry, scenario

REMOVE = "reclaim.docker.image_remove"
PRUNE = "reclaim.docker.prune"


@pytest.fixture(scope="session")
def local_registry(engine):
    """A registry per engine: the flavours' tests may run in parallel (pytest-xdist), each with its own engine."""
    started = registry.start(f"{engine.name}-registry")
    yield started
    registry.stop(started)


def api(engine):
    return docker.APIClient(base_url=engine.docker_host, version="auto")


def overlay2(engine):
    return engine.flavour != "28.5-containerd"


def pulled_into_two_repositories(engine, local_registry, prefix):
    """An image pulled as REGISTRY/PREFIX/app:1 and REGISTRY/PREFIX/mirror:1 (and held by nothing else); its ID, its
    tags and its digests as inspect gives them."""
    built = scenario.build(engine.docker_host, {"images": [
        {"name": "app", "tags": ["src/app:1"], "layers": ["app"], "labels": {"reclaim.test": prefix}}]}, prefix=prefix)
    tags = [f"{local_registry.host}/{prefix}/{repository}:1" for repository in ("app", "mirror")]
    image_id = registry.pulled(api(engine), built.images["app"]["id"], tags)
    inspect = api(engine).inspect_image(image_id)
    assert sorted(inspect["RepoTags"]) == sorted(tags)
    assert sorted(repository(d) for d in inspect["RepoDigests"]) == sorted(repository(t) for t in tags)
    return image_id, sorted(inspect["RepoTags"]), sorted(inspect["RepoDigests"])


def repository(reference):
    return reference.split("@", 1)[0] if "@" in reference else reference.rsplit(":", 1)[0]


def engine_untagged(result):
    """The references the engine's own answers name as untagged."""
    return sorted(r["Untagged"] for a in result["actions"] for r in a.get("engine_response") or () if "Untagged" in r)


def check_then_real(ansible, engine, args):
    predicted, real = ansible.check_then_real(REMOVE, args, engine, diff=True, same=(
        "changed", "untagged", "deleted", "reclaimed_bytes", "diff", "exact"))
    assert real["exact"] is True, real.get("inexact_reason")
    return predicted, real


def test_removing_both_names_reports_both_repositories_digests(ansible, engine, local_registry, prefix):
    image_id, tags, digests = pulled_into_two_repositories(engine, local_registry, prefix)
    size_before = scenario.layers_size(engine.docker_host)
    _predicted, real = check_then_real(ansible, engine, {"name": tags})
    assert real["reclaimed_bytes"] == size_before - scenario.layers_size(engine.docker_host) > 0
    before = real["diff"]["before"]
    assert (before["id"], before["tags"], before["digests"]) == (image_id, tags, digests)
    assert sorted(real["image"]["RepoDigests"]) == digests  # the module's own inspect agrees with its snapshot
    assert real["untagged"] == sorted(tags + digests) and real["deleted"] == [image_id]
    assert real["diff"]["after"]["exists"] is False
    if overlay2(engine):
        # There the engine itself names each digest that went (the containerd store's answer names tags only).
        assert engine_untagged(real) == real["untagged"]
    with pytest.raises(docker.errors.NotFound):
        api(engine).inspect_image(image_id)


def test_the_last_tag_of_one_repository_takes_its_digest(ansible, engine, local_registry, prefix):
    image_id, tags, digests = pulled_into_two_repositories(engine, local_registry, prefix)
    app, mirror = tags
    _predicted, real = check_then_real(ansible, engine, {"name": [mirror]})
    assert [a["action"] for a in real["actions"]] == ["untag"] and real["deleted"] == []
    assert real["untagged"] == sorted([mirror] + [d for d in digests if repository(d) == repository(mirror)])
    inspect = api(engine).inspect_image(image_id)
    after = real["diff"]["after"]
    assert (after["tags"], after["digests"]) == (sorted(inspect["RepoTags"]), sorted(inspect["RepoDigests"]))
    assert after["tags"] == [app] and len(after["digests"]) == 1
    if overlay2(engine):
        assert engine_untagged(real) == real["untagged"]

    # By ID with force, the planner takes every reference the image still has, as inspect lists them.
    _predicted, real = check_then_real(ansible, engine, {"name": [image_id], "force": True})
    [delete] = real["actions"]
    assert delete["action"] == "delete_image"
    assert delete["untags"] == sorted(inspect["RepoTags"] + inspect["RepoDigests"])
    assert real["untagged"] == delete["untags"] and real["deleted"] == [image_id]


def test_an_approved_plan_holds_the_references_inspect_gives(ansible, engine, local_registry, prefix):
    image_id, tags, digests = pulled_into_two_repositories(engine, local_registry, prefix)
    args = {"images": True, "images_filters": {"dangling": False, "label": f"reclaim.test={prefix}"}}
    audit = ansible.module(PRUNE, args, engine, check=True)
    [item] = audit["plan"]["objects"]
    assert item["id"] == image_id and item["references"] == sorted(tags + digests)
    approved = dict(args, approved=audit["plan"]["objects"], approved_engine_id=audit["plan"]["engine_id"])
    _predicted, real = ansible.check_then_real(PRUNE, approved, engine, same=(
        "changed", "images", "untagged", "images_space_reclaimed", "not_approved", "skipped_items", "plan"))
    assert real["images"] == [image_id] and real["skipped_items"] == [] and real["not_approved"] == []
    assert real["untagged"] == item["references"]
    if overlay2(engine):
        assert engine_untagged(real) == real["untagged"]
