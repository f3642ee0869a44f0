#!/usr/bin/python
# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: image_remove
short_description: Remove Docker images safely, and report exactly the space freed
version_added: 0.1.0
description:
  - Removes images by tag, digest or ID, as C(docker rmi) does, with the engine's own rules, and tells the truth about
    the result. Removing a tag of an image that has other references only untags it and frees nothing. Removing the last
    reference deletes the image and, with O(prune), its untagged parents.
  - An image that a running container uses is never removed, with or without O(force).
  - An image used only by stopped containers is refused unless O(remove_stopped_containers) removes those containers first
    (their writable layers count in the bytes freed). O(force) alone does what C(docker rmi -f) does, untag it, and reports
    the layers the containers still hold as RV(orphaned), with a warning that no space was freed.
  - The module reads the engine state once, plans every action with its reason and the bytes it frees (from the layer graph, that is,
    the layers that no remaining image or container references, never a sum of image sizes), then applies exactly that plan.
    Check mode is the same plan without the apply, so it predicts the real run.
  - If the engine answers that something changed since the read (404 gone, 409 now in use), that action is skipped and
    reported with the engine's reason; nothing is retried, and never with force.
extends_documentation_fragment:
  - reclaim.docker._docker
  - reclaim.docker._layer_cache
attributes:
  check_mode:
    support: full
    description: Returns what a real run would remove and free, from the same plan.
  diff_mode:
    support: full
    description: The references and image IDs concerned, before and after.
  idempotent:
    support: full
    description: A second run with the same names finds nothing to remove.
options:
  name:
    description:
      - The images to remove, each a C(repo[:tag]) (no tag means C(latest), as the Docker CLI does), a C(repo@sha256:...)
        digest reference, or an image ID, full (with or without C(sha256:)) or short (at least 6 hex digits, without
        C(sha256:)).
      - A name that Docker's reference grammar refuses (for example capitals in the repository, or a tag with a space)
        fails the task before the engine is contacted.
      - Names are handled in order; everything that can be done is done, and if any could not be removed the task fails at
        the end with one message that lists each and why.
    type: list
    elements: str
    required: true
  force:
    description:
      - The meaning of C(docker rmi -f). By ID, untag every reference and delete the image. For an image only stopped
        containers use, untag it although its layers stay held (reported as RV(orphaned)).
      - It never removes an image that a running container uses.
    type: bool
    default: false
  prune:
    description:
      - Also delete untagged parent images that nothing else needs, as C(docker rmi) does without C(--no-prune). Parents
        exist only for images built by the legacy builder (C(DOCKER_BUILDKIT=0)); BuildKit images have none.
      - A parent that another image builds on is kept on every engine, although the containerd image store's own
        C(docker rmi) deletes it.
    type: bool
    default: true
  remove_stopped_containers:
    description:
      - Remove the stopped containers that use an image before removing it. Running containers are never removed.
    type: bool
    default: false
  platform:
    description:
      - Remove only this platform's content (for example V(linux/arm64)) of a multi-platform image; the tags and the other
        platforms stay.
      - Needs Docker Engine API 1.50 or newer with the containerd image store (Docker 28 with the containerd snapshotter, or
        Docker 29). Other engines are refused before any change.
    type: str
notes:
  - On graphdriver engines (overlay2) the predicted bytes equal the drop of the engine's own C(LayersSize) (C(docker system df))
    plus the writable layers of removed containers, to the byte. On the containerd image store they equal the drop of
    C(LayersSize), which there counts snapshots and content blobs (index, manifests, configs, layer blobs, read from
    containerd's content store on the Docker host); where that store cannot be read, RV(exact) is false and the bytes
    count snapshots only.
  - Platform content is freed by containerd's garbage collector about two seconds after the call.
seealso:
  - module: community.docker.docker_image_remove
  - module: reclaim.docker.prune
  - module: reclaim.docker.disk_usage_info
author:
  - reclaim.docker developers (@reclaim-docker)
"""

EXAMPLES = r"""
- name: Remove a tag (untags only when the image has other tags)
  reclaim.docker.image_remove:
    name: registry.example.com/app:1.4.2

- name: Predict what removing several images would free
  reclaim.docker.image_remove:
    name:
      - app:1.4.0
      - app:1.4.1
      - 3f2a9c1b7d0e
  check_mode: true
  register: prediction

- name: Remove an image and the stopped containers that still use it
  reclaim.docker.image_remove:
    name: app:old
    remove_stopped_containers: true

- name: Remove the arm64 variant of a multi-platform image (containerd image store)
  reclaim.docker.image_remove:
    name: app:2.0
    platform: linux/arm64
"""

RETURN = r"""
untagged:
  description: References removed (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [app:1.4.0]
deleted:
  description: Full IDs of images deleted (or that would be).
  returned: always
  type: list
  elements: str
  sample: [sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b]
removed_containers:
  description: Full IDs of stopped containers removed (or that would be).
  returned: always
  type: list
  elements: str
orphaned:
  description: Images untagged by O(force) whose layers stopped containers still hold, with the bytes they hold.
  returned: always
  type: list
  elements: dict
  contains:
    image:
      description: The image ID.
      type: str
    containers:
      description: Full IDs of the containers holding its layers.
      type: list
      elements: str
    container_names:
      description: Their names.
      type: list
      elements: str
    bytes:
      description: Bytes the containers still hold that removing them would free.
      type: int
reclaimed_bytes:
  description: Bytes freed (in check mode, that would be freed), from the layer graph.
  returned: always
  type: int
  sample: 10000000
exact:
  description:
    - Whether the bytes are exact. False only on the containerd image store when containerd's content store cannot be
      read (a remote engine, no permission); the bytes then count the images' snapshots, not their content blobs.
  returned: always
  type: bool
  sample: true
inexact_reason:
  description: Why the bytes are not exact, when RV(exact) is false.
  returned: when RV(exact) is false
  type: str
actions:
  description: The ordered plan, each action with its reason, the bytes it frees and, after a real run, its status.
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: V(remove_container), V(untag), V(delete_image), V(force_untag) or V(delete_platform).
      type: str
    image:
      description: The image ID concerned.
      type: str
    reference:
      description: What the engine is called with (a reference or an image ID).
      type: str
    reason:
      description: Why this action is in the plan.
      type: str
    bytes:
      description:
        - Bytes this action frees, given the actions before it. After a real run, priced from the actions that took
          effect, so a layer that a skipped action's image still holds is freed by none.
      type: int
    status:
      description:
        - After a real run, V(done), V(partial), V(skipped) (the engine said the world changed), V(failed), or
          V(not_run) (an earlier call failed, so no later one was started).
        - A call that got no answer in O(timeout) is checked afterwards; V(done) if its object was gone by then.
      type: str
    engine_reason:
      description: The engine's message for a skipped or failed action, or what a check found after no answer.
      type: str
  sample:
    - action: delete_image
      image: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
      reference: app:1.4.0
      reason: "app:1.4.0 removed: no other reference, no container uses it"
      bytes: 2500000
      status: done
not_found:
  description: Names that matched nothing (or nothing left after earlier names).
  returned: always
  type: list
  elements: str
"""

import re

from ansible_collections.reclaim.docker.plugins.module_utils._apply import took_effect, untagged_by
from ansible_collections.reclaim.docker.plugins.module_utils._connection import EngineConnectionError, docker_module
from ansible_collections.reclaim.docker.plugins.module_utils._image_plan import plan_image_removal
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import layer_cache_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._model import check_image_name, short_id
from ansible_collections.reclaim.docker.plugins.module_utils._pipeline import Pipeline
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem

PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")
PLATFORM_MIN_API = "1.50"


class ImageRemover:
    def __init__(self, module):
        self.module = module
        self.params = module.params

    def validate(self):
        """Every option value, checked before the engine is contacted."""
        if not self.params["name"]:
            self.module.fail_json(msg="name must list at least one image reference.")
        try:
            for name in self.params["name"]:
                check_image_name(name, "name")
        except ValueProblem as exc:
            self.module.fail_json(msg=str(exc))
        platform = self.params["platform"]
        if platform is not None and not PLATFORM.fullmatch(platform):
            self.module.fail_json(msg=f"platform {platform!r} is not OS/ARCH[/VARIANT], for example linux/arm64.")

    def validate_engine(self, client):
        if self.params["platform"] is None:
            return
        try:
            client.require_api(PLATFORM_MIN_API, "platform")
        except EngineConnectionError as exc:
            self.module.fail_json(msg=f"{exc} Nothing was changed.")
        if not client.uses_containerd_store:
            self.module.fail_json(msg=f"platform needs the containerd image store (Docker 29, or Docker 28 with the "
                                      f"containerd snapshotter); the Docker daemon at {client.base_url} uses "
                                      f"{client.info().get('Driver')}. Nothing was changed.")

    def make_plan(self, snapshot):
        return plan_image_removal(snapshot, self.params["name"], force=self.params["force"],
                                  prune_parents=self.params["prune"],
                                  remove_stopped_containers=self.params["remove_stopped_containers"],
                                  platform=self.params["platform"])

    def run(self):
        self.validate()
        pipeline = Pipeline(self.module)
        self.validate_engine(pipeline.client)
        snapshot = pipeline.snapshot()
        plan = pipeline.plan(snapshot, self.make_plan)
        actions = pipeline.apply(snapshot, plan)
        effective = took_effect(actions)
        result = dict(
            untagged=untagged_by(effective),
            deleted=sorted({a["image"] for a in effective if a["action"] == "delete_image"
                            or a["action"] == "force_untag" and a["record_deleted"]}),
            removed_containers=[a["container"] for a in effective if a["action"] == "remove_container"],
            orphaned=[o for o in plan.orphaned
                      if any(a["action"] == "force_untag" and a["image"] == o["image"] for a in effective)],
            not_found=plan.not_found,
        )
        if self.module._diff:
            result["diff"] = self.diff(snapshot, effective)
        for orphan in result["orphaned"]:
            self.module.warn(f"Image {short_id(orphan['image'])} was untagged but no space was freed: stopped container(s) "
                             f"{', '.join(orphan['container_names'])} still hold {orphan['bytes']} bytes of its layers. "
                             "Remove them (remove_stopped_containers) to free it.")
        # A name the user asked for that the engine refused since the snapshot (409) is a problem here; one already
        # gone (404) is what was asked for.
        problems = [f"{r['name']}: {r['reason']}" for r in plan.refusals]
        problems += [f"{a['reference']}: {a['engine_reason']}" for a in actions
                     if a.get("status") == "partial" or a.get("status") == "skipped" and a.get("engine_status") != 404]
        pipeline.finish(actions, result, problems, failure="Could not remove")

    @staticmethod
    def diff(snapshot, effective):
        concerned = sorted({a["image"] for a in effective})
        before = {i: sorted(snapshot.images[i].references) if i in snapshot.images else [] for i in concerned}
        after = {i: list(refs) for i, refs in before.items()}
        for action in effective:
            image = action["image"]
            if action["action"] == "untag":
                after[image] = [r for r in after[image] if r != action["reference"]]
            elif action["action"] in ("delete_image", "force_untag"):
                after[image] = [r for r in after[image] if r not in action.get("untags", [])]
                if action["action"] == "delete_image" or action["record_deleted"]:
                    after.pop(image, None)
        return dict(before=dict(images=before), after=dict(images=after))


def main():
    argument_spec = dict(
        name=dict(type="list", elements="str", required=True),
        force=dict(type="bool", default=False),
        prune=dict(type="bool", default=True),
        remove_stopped_containers=dict(type="bool", default=False),
        platform=dict(type="str"),
    )
    argument_spec.update(layer_cache_argument_spec())
    ImageRemover(docker_module(argument_spec, supports_check_mode=True)).run()


if __name__ == "__main__":
    main()
