#!/usr/bin/python
# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: prune
short_description: Prune Docker containers, images, networks, volumes and build cache, with an exact check mode
version_added: 0.1.0
description:
  - A superset of M(community.docker.docker_prune) with the same option and return names, so that changing the module name
    is enough to switch, plus a check mode that predicts what a real run removes and frees, protection rules, and
    O(min_age).
  - The filters C(until), C(label), C(label!) and C(dangling) are evaluated by this module, the same way on every engine
    (Docker 29's image prune ignores C(label!); older engines OR several C(label!); the containerd image store compares
    C(until) with the record time). Several C(label) must all hold, several C(label!) must all hold, and C(until) compares
    with the time the object was created. An object whose creation time is unknown never matches C(until), it is kept
    as if new and reported in RV(skipped_items).
  - The selected items are removed one by one in a safe order, as C(docker system prune) does it; containers first (the
    images they held are freed in the same run, and check mode predicts that), then images children first, networks,
    volumes, build cache.
  - An item that changed since the run read the engine (404 gone, 409 now in use) is skipped and reported with the
    engine's reason.
  - Every option value is checked before the engine is contacted. An option of an object type that is not pruned (for
    example O(containers_filters) with O(containers=false), or O(builder_cache_all) with O(builder_cache=false)) is
    ignored with a warning, as M(community.docker.docker_prune) ignores it, so that a playbook can take the switch from
    a variable and leave the filters set. Such filters are not checked either; O(builder_cache_keep_storage) is, as
    M(community.docker.docker_prune) reads it.
  - A call that gets no answer within O(timeout) may still be carried out by the engine. It is reported with status
    V(unknown) unless its object is found gone afterwards, its bytes in RV(unknown_bytes), apart from
    RV(reclaimed_bytes); the task fails naming it, and the next run, which reads the engine afresh, settles it.
extends_documentation_fragment:
  - reclaim.docker._docker
  - reclaim.docker._protection
  - reclaim.docker._layer_cache
  - reclaim.docker._lock
  - reclaim.docker._usage_ledger
  - reclaim.docker._approval
attributes:
  check_mode:
    support: full
    description:
      - Returns the same fields as a real run, predicted from the same plan. Build cache is predicted from its records;
        where BuildKit's choice cannot be predicted to the byte (O(builder_cache_keep_storage), filters other than
        C(until)), RV(builder_cache_prediction) says so.
  diff_mode:
    support: none
    description: The returned lists say what goes.
  idempotent:
    support: full
    description: A second run with the same options finds nothing to remove.
options:
  containers:
    description: Prune stopped containers (exited, created, dead). Running, paused and restarting ones are never touched.
    type: bool
    default: false
  containers_filters:
    description:
      - Filters selecting containers, keys C(until), C(stopped_for), C(label), C(label!). For example C(until=24h).
      - C(until) compares the time the container was created, as Docker's filter does. C(stopped_for) (ours, a
        duration) selects containers that stopped at least that long ago, by their C(State.FinishedAt); one that never
        ran counts from its creation. It costs one inspect per stopped container.
      - Values are a string, a list (several C(label) all hold; several C(label!) all hold), or Docker's map form.
    type: dict
  images:
    description: Prune images that no remaining container uses (running or stopped).
    type: bool
    default: false
  images_filters:
    description:
      - Filters selecting images, keys C(dangling) (V(true), the default, selects untagged images only; V(false) selects
        every unused image, as C(docker image prune -a)), C(until), C(label), C(label!).
      - C(until) compares with the image's creation time on every engine.
    type: dict
  networks:
    description:
      - Prune networks that no remaining container uses. Stricter than the engine, which counts only running containers;
        a network that a stopped container is attached to is kept, so the container can start again.
    type: bool
    default: false
  networks_filters:
    description: Filters selecting networks, keys C(until), C(label), C(label!).
    type: dict
  volumes:
    description:
      - Prune volumes that no remaining container uses. Only anonymous volumes unless O(volumes_filters) has C(all=true)
        (as Engine API 1.42 and newer do). Volumes hold data, not caches; never set this lightly.
      - On engines older than API 1.42 (Docker 20.10), which do not label anonymous volumes, volumes named by 64 hex
        digits count as anonymous.
    type: bool
    default: false
  volumes_filters:
    description:
      - Filters selecting volumes, keys C(label), C(label!), C(all), C(unused_for).
      - C(unused_for) (ours, a duration such as V(30d)) selects volumes last used at least that long ago, which no
        engine filter can (C(docker volume prune) takes no C(until) and knows no last use). A volume counts as used
        when a container that mounts it is created, started, stops or is removed, as the usage ledger recorded it (see
        O(usage_ledger), from this run's containers and the engine's events since the previous run, or by the role
        C(reclaim.docker.usage_tracker)); when a container that is still there last ran or was created (now for a
        running one); and when it was created. The latest of these counts, so a volume created anew under a name
        used before does not look as old as that name's uses. A volume whose creation time is unknown is kept and
        reported in RV(skipped_items), whatever the ledger says, and so is one that a stopped container mounts whose
        stop time could not be read (the module reads the stop time of each stopped container that mounts a volume).
      - Without the usage ledger (O(usage_ledger=false)), a container created, used and removed between two runs
        (C(docker run --rm -v NAME:/path)) leaves no use, and the volume counts from its creation.
      - Each V(remove_volume) action and each volume of RV(plan) says what its last use is based on
        (C(last_use_source)).
    type: dict
  builder_cache:
    description: Prune the build cache (BuildKit records not in use).
    type: bool
    default: false
  builder_cache_all:
    description: Also remove build cache records shared with images.
    type: bool
    default: false
  builder_cache_filters:
    description:
      - Filters for the build cache, keys C(until), C(id), C(type), C(inuse), C(shared), C(private), C(description),
        C(parent). They are checked here (BuildKit ignores keys it does not know) and passed to the engine.
      - C(type) takes BuildKit's record types, V(internal), V(frontend), V(source.local), V(source.git.checkout),
        V(exec.cachemount), V(regular).
    type: dict
  builder_cache_keep_storage:
    description:
      - Keep this much build cache, for example V(5GB). A number of bytes, or a number with a unit, B, K, M, G, T (optionally
        followed by B or iB; every unit is a power of 1024, as in Docker).
    type: str
  assume_deleted:
    description:
      - Full image IDs (V(sha256:...)) that an earlier task of the same check-mode run would delete, such as the
        RV(reclaim.docker.image_retention#module:deleted) of O(reclaim.docker.image_retention#module:keep_last)
        enforcement. The prediction then counts the layers those images share with the images pruned here, as the
        real run, where they are already gone, frees them.
      - Used in check mode only; a real run reads what is really on the engine.
    type: list
    elements: str
    default: []
  usage:
    description:
      - Also return RV(usage_before) and RV(usage_after), as M(reclaim.docker.image_retention) does, image storage (the
        engine's C(LayersSize)) and, where the module runs on the Docker host, the filesystem under Docker's root dir,
        read before the run acts and again after a real run (check mode predicts it from the bytes the run would free),
        so that a playbook needs no M(reclaim.docker.disk_usage_info) task around the prune.
      - Two more engine reads before the run (C(/system/df) for images, and C(/info)), and one after a real run.
    type: bool
    default: false
    version_added: 0.2.0
notes:
  - RV(images_space_reclaimed) equals the drop of the engine's own C(LayersSize), to the byte, on every engine; on the
    containerd image store it includes content blobs read from containerd's content store on the Docker host (where that
    store cannot be read, RV(exact) is false and it counts snapshots only). RV(containers_space_reclaimed) is the removed
    containers' writable layers (on the containerd store, with their init snapshots).
  - With BuildKit, the build cache can hold the layers of deleted images; their disk space comes back when the build cache
    is pruned.
seealso:
  - module: community.docker.docker_prune
  - module: reclaim.docker.image_remove
  - module: reclaim.docker.disk_usage_info
author:
  - reclaim.docker developers (@reclaim-docker)
"""

EXAMPLES = r"""
- name: docker image prune (dangling images)
  reclaim.docker.prune:
    images: true

- name: docker image prune -a (every unused image)
  reclaim.docker.prune:
    images: true
    images_filters:
      dangling: false

- name: docker system prune (stopped containers, unused networks, dangling images, build cache)
  reclaim.docker.prune:
    containers: true
    images: true
    networks: true
    builder_cache: true

- name: docker system prune -a
  reclaim.docker.prune:
    containers: true
    images: true
    images_filters:
      dangling: false
    networks: true
    builder_cache: true
    builder_cache_all: true

- name: >-
    docker system prune -a --volumes. Extremely dangerous: volumes hold data. Named volumes go only with
    volumes_filters all, the second switch.
  reclaim.docker.prune:
    containers: true
    images: true
    images_filters:
      dangling: false
    networks: true
    volumes: true
    volumes_filters:
      all: true
    builder_cache: true
    builder_cache_all: true

- name: >-
    Anonymous volumes no container has used for 30 days (a --rm job's use counts: run the role
    reclaim.docker.usage_tracker, or prune often enough that the engine's last 256 events cover the time between runs)
  reclaim.docker.prune:
    volumes: true
    volumes_filters:
      unused_for: 30d

- name: Retention, keep 30 days and anything labelled keep, never production images
  reclaim.docker.prune:
    containers: true
    containers_filters:
      until: 720h
      label!: keep
    images: true
    images_filters:
      dangling: false
      until: 720h
      label!: keep
    protect:
      references:
        - registry.example.com/prod/*
    min_age: 1h

- name: Audit, what would a prune free
  reclaim.docker.prune:
    containers: true
    images: true
    images_filters:
      dangling: false
  check_mode: true
  register: audit

- name: Audit a retention step, then the prune that follows it
  reclaim.docker.image_retention:
    keep_last: 3
  check_mode: true
  register: retention

- name: Predict the prune as it will run after the retention step
  reclaim.docker.prune:
    images: true
    assume_deleted: "{{ retention.deleted }}"
  check_mode: true
"""

RETURN = r"""
containers:
  description: Full IDs of the containers removed (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b3f2a]
containers_space_reclaimed:
  description: Bytes of their writable layers.
  returned: always
  type: int
  sample: 300000
images:
  description: Full IDs of the images deleted.
  returned: always
  type: list
  elements: str
  sample:
    - sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
    - sha256:7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b3f2a9c1b
untagged:
  description: References removed from the deleted images.
  returned: always
  type: list
  elements: str
  sample: [app:1.0]
images_space_reclaimed:
  description: Bytes freed by deleting the images, from the layer graph (layers that no remaining image or container uses).
  returned: always
  type: int
  sample: 4000000
networks:
  description: Names of the networks removed.
  returned: always
  type: list
  elements: str
  sample: [ci-net]
volumes:
  description: Names of the volumes removed.
  returned: always
  type: list
  elements: str
  sample: [5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f]
volumes_space_reclaimed:
  description:
    - Bytes the removed volumes held, as the engine counts them (C(docker system df -v)), read before the run; check
      mode predicts the same figure.
  returned: always
  type: int
  sample: 52428800
builder_cache_space_reclaimed:
  description: Bytes of build cache removed; in check mode, the prediction.
  returned: always
  type: int
  sample: 104857600
builder_cache_caches_deleted:
  description: IDs of the build cache records removed (after a real run).
  returned: always
  type: list
  elements: str
  sample: [mz0ko2ojb7s3c1zw3x1d2u3o4, q8r7s6t5u4v3w2x1y0z9a8b7c, k3l4m5n6o7p8q9r0s1t2u3v4w]
builder_cache_prediction:
  description: The build cache prediction, in both modes, to compare with RV(builder_cache_space_reclaimed).
  returned: when O(builder_cache=true)
  type: dict
  contains:
    bytes:
      description: Predicted bytes.
      type: int
    records:
      description: Predicted number of records.
      type: int
    exact:
      description: Whether BuildKit's choice is predictable to the byte with these options.
      type: bool
  sample: {bytes: 104857600, records: 3, exact: true}
reclaimed_bytes:
  description: All of the above, added up.
  returned: always
  type: int
  sample: 161586400
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
skipped_items:
  description:
    - Items the filters selected that stay, each with why (protected, too young, in use, changed since the run read the
      engine), and each item of O(approved) this run keeps (in use, tagged since, gone, no longer selected).
    - Not called C(skipped), which Ansible reserves (a true C(skipped) marks the whole task as skipped).
  returned: always
  type: list
  elements: dict
  sample:
    - type: image
      id: sha256:5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c
      name: 5b6c7d8e9f0a
      reason: "protected: label keep"
plan:
  description:
    - What this run's plan removes (in check mode, what a real run would), item by item, and the engine it was made on;
      after a review, its objects and engine ID are what O(approved) and O(approved_engine_id) take.
    - In a real run, what was planned; RV(actions) says what took effect.
  returned: always
  type: dict
  contains:
    engine_id:
      description: The engine's ID (C(ID) in C(docker info)).
      type: str
    objects:
      description:
        - One per object removed, with C(type) (V(container), V(image), V(network), V(volume) or V(build_cache)),
          C(id) (a volume's name), C(name), C(bytes) (what its actions free), for an image C(references) (all it had
          when planned), and for a volume C(last_use) and C(last_use_source), as in RV(actions).
      type: list
      elements: dict
  sample:
    engine_id: "4c3e2b1a-0d9f-4e8d-b7c6-a5f4e3d2c1b0"
    objects:
      - type: container
        id: 9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b3f2a
        name: batch-job
        bytes: 300000
      - type: image
        id: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
        name: 3f2a9c1b7d0e
        references: []
        bytes: 2500000
      - type: image
        id: sha256:7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b3f2a9c1b
        name: "app:1.0"
        references: [app:1.0]
        bytes: 1500000
      - type: volume
        id: 5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f
        name: 5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f
        bytes: 52428800
        last_use: "2026-10-28T14:03:11Z"
        last_use_source: ledger
not_approved:
  description:
    - With O(approved), the items this run would have removed without it and kept because they are not approved,
      as RV(plan) lists items, C(bytes) being what each would have freed. Empty without O(approved).
  returned: always
  type: list
  elements: dict
  sample:
    - type: container
      id: 2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f
      name: nightly-report
      bytes: 120000
usage_before:
  description: With O(usage), image storage (the engine's C(LayersSize)) and the filesystem under Docker's root dir,
    before the run acted.
  returned: when O(usage=true)
  type: dict
  version_added: 0.2.0
  contains:
    images_bytes:
      description: The engine's C(LayersSize).
      type: int
    filesystem:
      description: The filesystem holding Docker's root dir (C(path), C(total), C(used), C(free), C(used_percent)); null
        when the module does not run on the Docker host.
      type: dict
  sample:
    images_bytes: 8906643
    filesystem: {path: /var/lib/docker, total: 53660876800, used: 40245657600, free: 13415219200, used_percent: 75.0}
usage_after:
  description:
    - With O(usage), the same after the run; read again after a real run, predicted in check mode (RV(usage_before) less
      RV(images_space_reclaimed) of image storage and RV(reclaimed_bytes) of the filesystem).
  returned: when O(usage=true)
  type: dict
  version_added: 0.2.0
  sample:
    images_bytes: 6406643
    filesystem: {path: /var/lib/docker, total: 53660876800, used: 40243157600, free: 13417719200, used_percent: 75.0}
check_mode:
  description:
    - Whether the run was in check mode, so that what it reports removed and freed is a prediction; however check mode
      was asked for (C(--check), or C(check_mode) on the play or the task, which C(ansible_check_mode) does not show).
  returned: success
  type: bool
  sample: false
  version_added: 0.2.0
actions:
  description: The ordered plan, each action with its reason, the bytes it frees and, after a real run, its status.
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description:
        - V(remove_container), V(untag), V(delete_image), V(remove_network), V(remove_volume) or V(prune_build_cache).
        - An image with several tags is deleted without force, as C(docker rmi) would do it. Each tag but the last is
          an V(untag) action, and V(delete_image) by the last tag deletes the image (the engine still refuses if a
          container appeared meanwhile).
      type: str
    container:
      description: The container ID, for V(remove_container).
      type: str
    image:
      description: The image ID, for V(untag) and V(delete_image); for V(remove_container), the image the container holds.
      type: str
    network:
      description: The network ID, for V(remove_network).
      type: str
    volume:
      description: The volume name, for V(remove_volume).
      type: str
    name:
      description: The object's name, for V(remove_container), V(remove_network) and V(remove_volume).
      type: str
    reference:
      description: What the engine is called with to untag or delete an image (a tag, or its ID when it has none).
      type: str
    untags:
      description: For V(untag) and V(delete_image), the references the call removes.
      type: list
      elements: str
    reason:
      description: Why this action is in the plan.
      type: str
    bytes:
      description:
        - Bytes this action frees, given the actions before it. After a real run, priced from the actions that took
          effect, so a layer that a skipped action's image still holds is freed by none. For V(prune_build_cache)
          after a real run, what BuildKit reports it freed.
      type: int
    status:
      description:
        - After a real run, V(done), V(partial) (the engine did less than planned), V(skipped) (the engine said the
          world changed), V(failed) (the engine's error, or the call could not be sent), V(unknown), or V(not_run) (an
          earlier call failed or got no answer, so no later one was started).
        - V(unknown) is a call sent that got no answer in O(timeout). It is checked afterwards, V(done) if its object was
          gone by then; still there proves nothing (a frozen engine carries a call out when it resumes), so it stays
          V(unknown), with C(bytes) what it frees if it took effect, counted in RV(unknown_bytes), and the task fails.
      type: str
    engine_reason:
      description: The engine's message for a skipped or failed action, or what a check found after no answer.
      type: str
    predicted_bytes:
      description: For V(prune_build_cache) after a real run, the bytes the plan predicted.
      type: int
    record_items:
      description:
        - For V(prune_build_cache), the records the plan predicts it removes (C(id), C(name), C(bytes)). With
          O(approved), one V(prune_build_cache) per approved record, by its ID.
      type: list
      elements: dict
    last_use:
      description:
        - For V(remove_volume), when the volume was last used (ISO 8601, UTC; see O(volumes_filters)); null when its
          creation time is unknown.
      type: str
    last_use_source:
      description:
        - For V(remove_volume), what C(last_use) is based on, V(ledger) (the usage ledger's last use), V(containers)
          (the containers that mount it, when they last ran or were created) or V(created) (the volume's creation),
          whichever is latest; V(unknown) when its creation time is unknown, or when a stopped container that mounts it
          stopped at a time that could not be read (never selected by C(unused_for)).
      type: str
  sample:
    - action: remove_container
      container: 9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b3f2a
      image: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
      name: batch-job
      reason: stopped container batch-job (9c1b7d0e5a6b, exited) matches containers_filters
      bytes: 300000
      status: done
    - action: delete_image
      image: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
      reference: sha256:3f2a9c1b7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b
      untags: []
      reason: dangling image 3f2a9c1b7d0e matches images_filters
      bytes: 2500000
      status: done
    - action: delete_image
      image: sha256:7d0e5a6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b3f2a9c1b
      reference: app:1.0
      untags: [app:1.0]
      reason: unused image 7d0e5a6b8c9d matches images_filters
      bytes: 1500000
      status: done
    - action: remove_volume
      volume: 5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f
      name: 5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f
      last_use: "2026-10-28T14:03:11Z"
      last_use_source: ledger
      reason: >-
        anonymous volume 5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f is unused, last used
        2026-10-28T14:03:11Z (ledger) and matches volumes_filters
      bytes: 52428800
      status: done
"""

from ansible_collections.reclaim.docker.plugins.module_utils._prune_job import PruneJob
from ansible_collections.reclaim.docker.plugins.module_utils._runner import run_job


def main():
    run_job(PruneJob)


if __name__ == "__main__":
    main()
