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
  - If the engine answers that something changed since the read, nothing is retried, and never with force. A name
    already gone (404) is what was asked for; its action is skipped. A name the engine refuses (409, a container uses it
    now) or removes less of than planned fails the task, naming it, as M(community.docker.docker_image_remove) fails,
    since the names were asked for, unlike what a prune selects. The actions done before are reported.
  - A call that gets no answer within O(timeout) may still be carried out by the engine. It is reported with status
    V(unknown) unless its object is found gone afterwards, its bytes in RV(unknown_bytes), apart from
    RV(reclaimed_bytes); the task fails naming it, and the next run, which reads the engine afresh, settles it.
extends_documentation_fragment:
  - reclaim.docker._docker
  - reclaim.docker._layer_cache
  - reclaim.docker._lock
  - reclaim.docker._usage_ledger
attributes:
  check_mode:
    support: full
    description: Returns what a real run would remove and free, from the same plan.
  diff_mode:
    support: full
    description:
      - M(community.docker.docker_image_remove)'s diff (C(exists), C(id), C(tags), C(digests) of the image that the first
        name in O(name) names, before and after), with C(images) added for every image the task concerns. See RV(diff).
  idempotent:
    support: full
    description: A second run with the same names finds nothing to remove.
options:
  name:
    description:
      - The images to remove, each a C(repo[:tag]) (no tag means O(tag)), a C(repo@sha256:...) digest reference, or an
        image ID, full (with or without C(sha256:)) or short (at least 6 hex digits, without C(sha256:)). A name of 6 or
        more hex digits is first looked up as C(NAME:TAG), then as an ID prefix.
      - M(community.docker.docker_image_remove) takes one name; a single string works here too.
      - A name that Docker's reference grammar refuses (for example capitals in the repository, or a tag with a space)
        fails the task before the engine is contacted.
      - Names are handled in order; everything that can be done is done, and if any could not be removed the task fails at
        the end with one message that lists each and why.
    type: list
    elements: str
    required: true
  tag:
    description:
      - The tag of each name in O(name) that has neither a tag nor a digest, as in
        M(community.docker.docker_image_remove). A tag or digest in the name takes precedence; image IDs take none.
      - The names are reported as given (RV(not_found)); RV(untagged) lists the references with their tags.
    type: str
    default: latest
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

- name: Remove a tag given apart from the name, as with community.docker.docker_image_remove
  reclaim.docker.image_remove:
    name: registry.example.com/app
    tag: "1.4.2"
  register: removal

- name: Show what the image was before (the inspect result) and which references went
  ansible.builtin.debug:
    msg: "{{ removal.image.Id | default('not found') }} lost {{ removal.untagged }}"

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
  description:
    - References removed (or, in check mode, that would be), with the C(repo@digest) references that go with a
      repository's last tag; so every reference that image inspect listed and the image no longer has.
    - On the containerd image store the engine's own answer (passed on by M(community.docker.docker_image_remove)) names
      the tags only.
  returned: always
  type: list
  elements: str
  sample: [app:1.4.0]
deleted:
  description:
    - Full IDs of images deleted (or that would be).
    - Images only; M(community.docker.docker_image_remove) passes on the engine's answer, which on graph driver engines
      (overlay2) also lists the IDs of deleted layers.
  returned: always
  type: list
  elements: str
  sample: [sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b]
removed_containers:
  description: Full IDs of stopped containers removed (or that would be).
  returned: always
  type: list
  elements: str
  sample: [9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b3f2a]
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
  sample:
    - image: sha256:7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b3f2a9c1b
      containers: [9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b3f2a]
      container_names: [batch-job]
      bytes: 1500000
reclaimed_bytes:
  description: Bytes freed (in check mode, that would be freed), from the layer graph.
  returned: always
  type: int
  sample: 2800000
unknown_bytes:
  description:
    - What the actions with status V(unknown) (sent, no answer, not found done afterwards) free if the engine carried
      them out, apart from RV(reclaimed_bytes). 0 in check mode and when every call was answered.
    - The next run reads the engine afresh, which settles them; what they freed is then counted by neither run.
  returned: always
  type: int
  sample: 0
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
  sample: >-
    containerd's content store cannot be read (the engine is not on this host (tcp://docker.example.com:2376)): the
    bytes count the images' unpacked snapshots, not their content blobs, which the engine frees too
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
    untags:
      description: For V(delete_image) and V(force_untag), the references the call removes.
      type: list
      elements: str
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
        - After a real run, V(done), V(partial), V(skipped) (the engine said the world changed), V(failed) (the engine's
          error, or the call could not be sent), V(unknown), or V(not_run) (an earlier call failed or got no answer, so
          no later one was started).
        - V(unknown) is a call sent that got no answer in O(timeout). It is checked afterwards, V(done) if its object was
          gone by then; still there proves nothing (a frozen engine carries a call out when it resumes), so it stays
          V(unknown), with C(bytes) what it frees if it took effect, counted in RV(unknown_bytes), and the task fails.
      type: str
    engine_reason:
      description: The engine's message for a skipped or failed action, or what a check found after no answer.
      type: str
  sample:
    - action: remove_container
      container: 9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b3f2a
      name: batch-job
      image: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
      reason: "stopped container batch-job (9c1b7d0e5a6b, exited) uses image 3f2a9c1b7d0e (remove_stopped_containers)"
      bytes: 300000
      status: done
    - action: delete_image
      image: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
      reference: app:1.4.0
      untags: [app:1.4.0]
      reason: "app:1.4.0 removed: no other reference, no container uses it"
      bytes: 2500000
      status: done
not_found:
  description: Names (as given in O(name)) that matched nothing (or nothing left after earlier names).
  returned: always
  type: list
  elements: str
  sample: [app:0.9]
image:
  description:
    - The engine's inspect result (C(GET /images/ID/json)) of the image that the first name in O(name) names, read before
      anything is removed, as M(community.docker.docker_image_remove) returns it for its one name; also in check mode.
    - Empty if that name matched nothing. With several names, the other images are in RV(diff) (C(images)) and
      RV(actions).
  returned: always
  type: dict
  sample:
    Id: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
    RepoTags: [app:1.4.0]
    RepoDigests: []
    Created: "2026-11-02T09:14:55.123456789Z"
    Architecture: amd64
    Os: linux
    Size: 2500000
diff:
  description:
    - M(community.docker.docker_image_remove)'s diff, extended for several names. C(before) and C(after) each hold the
      state of the image that the first name in O(name) names (C(exists), C(id), C(tags), C(digests); only
      C(exists=false) when it does not exist), and C(images), the same state of every image the task concerns.
    - C(after) is the state that the actions leave (in check mode, would leave). The containerd image store lists a
      C(repo@digest) reference for each repository of a tagged image, so C(digests) holds them there.
    - Returned in diff mode, and with O(debug=true).
  returned: when diff mode is on or O(debug=true)
  type: dict
  contains:
    before:
      description: The state before the task.
      type: dict
      contains:
        exists:
          description: Whether the first name's image exists.
          type: bool
        id:
          description: Its ID, when it exists.
          type: str
        tags:
          description: Its tags (C(repo:tag)), sorted, when it exists.
          type: list
          elements: str
        digests:
          description: Its digest references (C(repo@sha256:...)), sorted, when it exists.
          type: list
          elements: str
        images:
          description:
            - Every image that a name resolves to or an action changes (pruned parents included), sorted by ID, each with
              C(id), C(exists), C(tags) and C(digests) (empty lists when it does not exist).
          type: list
          elements: dict
    after:
      description: The state after the task (in check mode, predicted), with the keys of C(before).
      type: dict
  sample:
    before:
      exists: true
      id: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
      tags: [app:1.4.0]
      digests: []
      images:
        - id: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
          exists: true
          tags: [app:1.4.0]
          digests: []
    after:
      exists: false
      images:
        - id: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
          exists: false
          tags: []
          digests: []
"""

from ansible_collections.reclaim.docker.plugins.module_utils._image_remove_job import ImageRemoveJob
from ansible_collections.reclaim.docker.plugins.module_utils._runner import run_job


def main():
    run_job(ImageRemoveJob)


if __name__ == "__main__":
    main()
