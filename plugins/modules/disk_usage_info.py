#!/usr/bin/python
# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: disk_usage_info
short_description: Report Docker disk usage, as C(docker system df) does, and the filesystem under Docker's root dir
version_added: 0.1.0
description:
  - Reports, per category (images, containers, local volumes, build cache), the count, how many are active, the size and the
    reclaimable bytes, computed the way the Docker CLI's C(docker system df) computes them.
  - When the module runs on the Docker host itself (a C(unix://) O(docker_host)), it also reports the filesystem that holds
    Docker's root directory, so that disk watermarks can be checked.
  - With O(root_dir=true), it also walks Docker's root directory and explains every byte there by category, the way
    C(du -sx) counts them, and lists the container logs (see RV(root_dir)).
  - Read-only; it never changes the engine.
extends_documentation_fragment:
  - reclaim.docker._docker
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to compare.
  idempotent:
    support: full
    description: Reading twice gives the same answer when the engine did not change in between.
options:
  images:
    description: Report images.
    type: bool
    default: true
  containers:
    description: Report containers.
    type: bool
    default: true
  volumes:
    description:
      - Report local volumes.
      - Sizing volumes walks every file in them, which is slow on big hosts, so it happens only when this is V(true).
        Engines older than API 1.42 (Docker 20.10) compute volume sizes for every request; there, leaving volumes out
        saves nothing on the engine side.
    type: bool
    default: false
  build_cache:
    description: Report the build cache.
    type: bool
    default: true
  filesystem:
    description:
      - Report the filesystem holding Docker's root directory (total, used, free, used percent).
      - Only possible when the module runs on the Docker host, that is, with a C(unix://) O(docker_host); otherwise
        RV(filesystem) is V(null).
    type: bool
    default: true
  root_dir:
    description:
      - Walk Docker's root directory and return RV(root_dir), its bytes as C(du -sx) counts them (allocated blocks,
        each hard-linked file once, nothing on another filesystem such as a running container's mount), by category.
      - Each layer directory, snapshot and content blob is attributed through the engine's own metadata. With
        overlay2, the layer database (C(image/overlay2/layerdb)) names each layer's directory (C(cache-id)) and each
        container's writable and init layers (C(mount-id), C(init-id)), and BuildKit's C(buildkit/snapshots.db) names
        the build cache's directories. With the containerd image store, containerd's C(meta.db) and its overlayfs
        snapshotter's C(metadata.db) (bbolt databases, read by the module itself) name each snapshot and blob, per
        namespace. What lies there and nothing refers to is RV(root_dir.categories.leaked); the module
        M(reclaim.docker.storage_leaks) lists and removes it.
      - The walk reads every file under the root dir, so it is off by default. Measured on hosts of 5,000 images and
        300 containers, with a warm page cache, the walk and the metadata took 0.8 to 1.2 seconds and 20 MiB peak
        memory on overlay2 (16,917 files and directories; C(du -sx) 0.3 seconds), and 1.5 to 1.6 seconds and 109 MiB
        on the containerd store, whose 48 MB C(meta.db) is read whole (18,426 files and directories; C(du -sx) 0.2
        seconds). With a cold cache the first walk there took 10 seconds.
      - Only on the Docker host itself, that is with a C(unix://) O(docker_host); another O(docker_host) is refused
        before the engine is contacted. The root dir is readable by root only, so run the module as root (with C(become)).
      - Where a directory or the metadata cannot be read, RV(root_dir.exact) is V(false) with the reason, and nothing
        is called leaked (what the metadata would have told goes to RV(root_dir.unexplained_bytes)).
      - Container logs are files in each container's directory, which C(docker system df) does not count. Their size
        is bounded only by the log options of the daemon (C(log-opts) in C(/etc/docker/daemon.json)) or of the
        container (C(--log-opt)); the C(json-file) and C(local) drivers keep at most C(max-file) files of C(max-size)
        each, and C(json-file) keeps everything by default. Measured on Docker 28.5, a container printing 6 MB of text
        (base64 lines) held 11,599,872 bytes of logs with C(json-file) and no options (each line is wrapped in JSON),
        1,601,536 bytes with C(max-size=1m) and C(max-file=2), 1,044,480 bytes with C(compress=true) too, and with
        the C(local) driver 8,216,576 bytes by default and 843,776 bytes with C(max-size=1m), C(max-file=2). Options
        apply to containers created after they are set. See the guide on Docker's root dir.
    type: bool
    default: false
seealso:
  - module: community.docker.docker_host_info
  - module: reclaim.docker.prune
author:
  - reclaim.docker developers (@reclaim-docker)
"""

EXAMPLES = r"""
- name: Show what Docker uses on this host
  reclaim.docker.disk_usage_info:
  register: usage

- name: Warn when the filesystem under Docker is over 85 percent full
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} is at {{ usage.filesystem.used_percent }}%"
  when: usage.filesystem is not none and usage.filesystem.used_percent > 85

- name: Where every byte under Docker's root dir went (walks the disk; root only)
  reclaim.docker.disk_usage_info:
    root_dir: true
  become: true
  register: usage

- name: Show the leaked bytes and the largest container log
  ansible.builtin.debug:
    msg: >-
      {{ usage.root_dir.categories.leaked }} bytes leaked;
      largest log {{ (usage.root_dir.container_logs | first | default({})).path | default('none') }}

- name: Volumes too (slow on hosts with big volumes)
  reclaim.docker.disk_usage_info:
    volumes: true
    docker_host: tcp://docker.example.com:2376
    validate_certs: true
"""

RETURN = r"""
disk_usage:
  description:
    - Per category asked for, what C(docker system df) shows, in bytes. Categories not asked for are left out.
    - O(images) size is the engine's C(LayersSize) (each layer once); reclaimable is what images that no container uses
      hold beyond what images in use share with them.
  returned: success
  type: dict
  contains:
    images: &category
      description: Counts and bytes of one category.
      type: dict
      returned: when asked for
      contains:
        count:
          description: How many there are.
          type: int
        active:
          description: How many are in use (images used by a container, running, paused or restarting containers,
            volumes that a container mounts, build cache records in use).
          type: int
        size:
          description: Bytes they take.
          type: int
        reclaimable:
          description: Bytes that removing the inactive ones would free, as C(docker system df) estimates it.
          type: int
    containers: *category
    volumes: *category
    build_cache: *category
  sample:
    images: {count: 12, active: 3, size: 734003200, reclaimable: 512000000}
    containers: {count: 4, active: 2, size: 1048576, reclaimable: 524288}
    build_cache: {count: 0, active: 0, size: 0, reclaimable: 0}
filesystem:
  description: The filesystem holding Docker's root directory, or V(null) when the module does not run on the Docker host.
  returned: success
  type: dict
  contains:
    path:
      description: Docker's root directory.
      type: str
    total:
      description: Size of the filesystem in bytes.
      type: int
    used:
      description: Bytes in use.
      type: int
    free:
      description: Bytes available to non-root users.
      type: int
    used_percent:
      description: Used over used plus free, in percent, as C(df) shows it.
      type: float
  sample: {path: /var/lib/docker, total: 270553059328, used: 23622320128, free: 246930739200, used_percent: 8.73}
root_dir:
  description:
    - Docker's root directory explained, byte for byte, when O(root_dir=true); the categories plus
      RV(root_dir.unexplained_bytes) equal RV(root_dir.bytes).
  returned: when O(root_dir=true)
  type: dict
  contains:
    path:
      description: Docker's root directory.
      type: str
    bytes:
      description: What the walk found, as C(du -sx --block-size=1) counts it.
      type: int
    categories:
      description: Bytes per category; each byte of the walk is in one category or unexplained.
      type: dict
      contains:
        images:
          description: Image layers (overlay2 layer directories the layer database names, the image and layer
            databases), or on the containerd store the snapshots of image layers and the content blobs of dockerd's
            namespace, and downloads in progress.
          type: int
        containers:
          description: Writable and init layers of containers, their directories (without logs) and mount points.
          type: int
        container_logs:
          description: The log files the C(json-file) and C(local) drivers write, rotated files included (see
            RV(root_dir.container_logs)).
          type: int
        volumes:
          description: Local volumes' directories.
          type: int
        build_cache:
          description: BuildKit's directory and its snapshots (overlay2 directories, or snapshots and content held for
            builds on the containerd store).
          type: int
        engine_metadata:
          description: The engine's databases and indexes (network, volumes' and containerd's metadata, overlay2's short
            links, swarm and trust state, the engine ID).
          type: int
        leaked:
          description:
            - Storage where the engine keeps layers, snapshots or blobs that nothing its metadata knows refers to (layer
              directories of no layer, container, init layer or BuildKit snapshot; C(-removing) layer entries and the
              directories they name; containerd snapshots and blobs no namespace names).
            - A pull, load or build in progress shows here until it completes; M(reclaim.docker.storage_leaks) never
              removes what changed less than its O(reclaim.docker.storage_leaks#module:min_age) ago.
          type: int
        other:
          description: The engine's temporary, runtime and plugin directories and containerd's runtime state.
          type: int
    unexplained_bytes:
      description: What no category claims (files the engine does not put there, or a store whose metadata could not be
        read).
      type: int
    unexplained:
      description: The largest unexplained paths, relative to RV(root_dir.path), at most 20, largest first.
      type: list
      elements: dict
      contains:
        path:
          description: Relative path.
          type: str
        bytes:
          description: Its bytes.
          type: int
    container_logs:
      description: The log files of each container that has any, largest first.
      type: list
      elements: dict
      contains:
        container:
          description: The container's ID.
          type: str
        name:
          description: The container's name.
          type: str
        driver:
          description: Its log driver (C(json-file), C(local), or another driver whose dual-logging cache this is).
          type: str
        path:
          description: Its current log file (C(json-file)), or its log directory's current file (C(local)).
          type: str
        bytes:
          description: Bytes of its log files, rotated ones included.
          type: int
    exact:
      description: Whether everything could be read (the walk and the engine's metadata).
      type: bool
    inexact_reason:
      description: What could not be read, when RV(root_dir.exact) is V(false).
      type: str
      returned: when RV(root_dir.exact) is V(false)
  sample:
    path: /var/lib/docker
    bytes: 12529664
    categories: {images: 10682368, containers: 368640, container_logs: 11599872, volumes: 61440, build_cache: 909312,
                 engine_metadata: 409600, leaked: 4251648, other: 98304}
    unexplained_bytes: 0
    unexplained: []
    container_logs:
      - container: 0a22c26fd4b23fdf71b5c3819eb73eb4d523cf91f4c089485bc7fa4dca87ce7a
        name: web
        driver: json-file
        path: /var/lib/docker/containers/0a22c26f.../0a22c26f...-json.log
        bytes: 11599872
    exact: true
engine:
  description: The engine that answered.
  returned: success
  type: dict
  contains:
    id:
      description: The engine's ID (from C(docker info)); stable while its data root stays.
      type: str
    version:
      description: Docker Engine version.
      type: str
    api_version:
      description: The API version used.
      type: str
    image_store:
      description: V(containerd) for the containerd image store, otherwise the graph driver's name (for example V(overlay2)).
      type: str
    docker_root_dir:
      description: Docker's root directory on the engine's host.
      type: str
  sample: {id: 0d8e7c7a-8f3e-4c57-9c52-4c3b1b7a2f11, version: 28.5.2, api_version: "1.51", image_store: overlay2, docker_root_dir: /var/lib/docker}
"""

from ansible_collections.reclaim.docker.plugins.module_utils._disk_usage_job import DiskUsageJob
from ansible_collections.reclaim.docker.plugins.module_utils._runner import run_job


def main():
    run_job(DiskUsageJob)


if __name__ == "__main__":
    main()
