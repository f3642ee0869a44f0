"""Record how each engine lists an image's names (GET /images/json) against what image inspect gives, for the unit
tests of _snapshot.repo_digests.

Run by hand (needs root, the private engines of tests/harness/engines.py and Debian's docker-registry, which
harness.registry installs), from the repository root:

    .venv/bin/python tests/unit/record_repo_digests.py            # every flavour
    .venv/bin/python tests/unit/record_repo_digests.py 28.5       # one flavour

For each flavour it starts a private engine (``ut-recdig*``, stopped afterwards) and a registry on the loopback,
makes the CASES below (images loaded by ``scenario.build`` with prefix ``rec``, pushed, removed, pulled by tag or by
digest, tagged), then writes, for every image of the engine, the list's ``Id``, ``RepoTags`` and ``RepoDigests`` (with
the parameters ``read_snapshot`` uses) and inspect's ``RepoTags`` and ``RepoDigests`` to
``tests/unit/plugins/module_utils/snapshots/repo_digests.json``. The registry's port changes from run to run.

The JSON file is committed; re-run this only when the cases change or to measure another engine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT / "tests")]

from harness import engines, registry, scenario  # noqa: E402

OUT = HERE / "plugins" / "module_utils" / "snapshots" / "repo_digests.json"
PREFIX = "rec"
ENGINE_NAMES = {"20.10": "ut-recdig20", "28.5": "ut-recdig28", "28.5-containerd": "ut-recdigc8"}
# What each image went through (R is the registry and prefix): pulls by tag (R/REPO:1) and by digest (R/REPO@), then
# local tags and removals, in order.
CASES = {
    "two_repositories": dict(pull=["a-one:1", "a-two:1"]),
    "two_repositories_one_with_two_tags": dict(pull=["b-one:1", "b-two:1"], tag=["R/b-one:2"]),
    "digest_only": dict(pull=["c-one@"]),
    "digest_then_a_tag_in_another_repository": dict(pull=["d-one@"], tag=["R/d-local:1"]),
    "pulled_then_a_local_tag": dict(pull=["e-one:1"], tag=["local/e:1"]),
    "two_digests_only": dict(pull=["f-one@", "f-two@"]),
    "pulled_then_its_tag_removed": dict(pull=["g-one:1", "g-two@"], remove=["R/g-one:1"]),
    "a_tag_and_a_digest_in_another_repository": dict(pull=["h-one:1", "h-two@"]),
    "loaded_with_tags_in_two_repositories": dict(tags=["local/i:1", "other/i:1"]),
    "dangling": dict(tags=[]),
}


def make_cases(api, host, registry_host):
    images = [{"name": name, "tags": case.get("tags", [f"src/{name}:1"]), "layers": [name]}
              for name, case in CASES.items()]
    built = scenario.build(host, {"layers": {name: 10_000 for name in CASES}, "images": images}, prefix=PREFIX)
    remote = f"{registry_host}/{PREFIX}"
    for name, case in CASES.items():
        if not case.get("pull"):
            continue
        image_id = built.images[name]["id"]
        # A pull by digest needs a tag to push under: "pushed", never pulled.
        pushed = [f"{remote}/{pull[:-1]}:pushed" if pull.endswith("@") else f"{remote}/{pull}" for pull in case["pull"]]
        digests = [registry.push(api, image_id, reference) for reference in pushed]
        api.remove_image(image_id, force=True)
        for pull, digest in zip(case["pull"], digests):
            if pull.endswith("@"):
                registry.pull(api, f"{remote}/{pull}{digest}")
            else:
                registry.pull(api, f"{remote}/{pull}")
        source = f"{remote}/{case['pull'][0]}{digests[0]}" if case["pull"][0].endswith("@") \
            else f"{remote}/{case['pull'][0]}"
        for tag in case.get("tag", []):
            repository, version = tag.replace("R/", remote + "/").rsplit(":", 1)
            api.tag(source, repository if repository.startswith(remote) else f"{PREFIX}/{repository}", version)
        for reference in case.get("remove", []):
            api.remove_image(reference.replace("R/", remote + "/"))
    if scenario.is_containerd_store(api):  # an index too, in two repositories
        scenario.build(host, {"multiplatform": [{"name": "k", "tag": "src/k:1"}]}, prefix=PREFIX)
        api.tag(f"{PREFIX}/src/k:1", f"{PREFIX}/other/k", "1")


def record(flavour):
    engine = engines.start(flavour, ENGINE_NAMES[flavour])
    reg = registry.start(f"{ENGINE_NAMES[flavour]}-registry")
    try:
        api = scenario.client(engine.docker_host)
        make_cases(api, engine.docker_host, reg.host)
        params = {"all": 1, "shared-size": 1}
        if scenario.is_containerd_store(api):
            params["manifests"] = 1
        listed = api._result(api._get(api._url("/images/json"), params=params), json=True)
        images = []
        for entry in sorted(listed, key=lambda e: e["Id"]):
            inspect = api.inspect_image(entry["Id"])
            images.append({"list": {key: entry.get(key) for key in ("Id", "RepoTags", "RepoDigests")},
                           "inspect": {key: inspect.get(key) for key in ("RepoTags", "RepoDigests")}})
        return {"api_version": api.api_version, "containerd_store": scenario.is_containerd_store(api),
                "registry": reg.host, "images": images}
    finally:
        registry.stop(reg)
        engines.stop(engine)


def main(flavours):
    recorded = json.loads(OUT.read_text()) if OUT.exists() else {}
    for flavour in flavours:
        recorded[flavour] = record(flavour)
        print(f"{flavour}: {len(recorded[flavour]['images'])} images")
    OUT.write_text(json.dumps(dict(sorted(recorded.items())), indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:] or list(engines.FLAVOURS))
