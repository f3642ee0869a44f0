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
          description: How many are in use (images used by a container, running containers, volumes that a container
            mounts, build cache records in use).
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

from ansible_collections.reclaim.docker.plugins.module_utils._connection import docker_module
from ansible_collections.reclaim.docker.plugins.module_utils._disk_usage import (
    USAGE_TYPES,
    df_types,
    filesystem_usage,
    summarize,
)
from ansible_collections.reclaim.docker.plugins.module_utils._pipeline import Pipeline


def main():
    module = docker_module(
        dict(
            images=dict(type="bool", default=True),
            containers=dict(type="bool", default=True),
            volumes=dict(type="bool", default=False),
            build_cache=dict(type="bool", default=True),
            filesystem=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    pipeline = Pipeline(module)
    client = pipeline.client
    usage_types = [t for t in USAGE_TYPES if module.params[t]]
    with pipeline.reading():
        engine = client.facts()
        df = client.system_df(df_types(usage_types)) if usage_types else {}

    root_dir = engine["docker_root_dir"]
    filesystem = None
    if module.params["filesystem"] and client.is_local and root_dir:
        try:
            filesystem = filesystem_usage(root_dir)
        except OSError as exc:
            module.warn(f"Cannot read the filesystem of {root_dir}: {exc}")
    module.exit_json(changed=False, disk_usage=summarize(df, usage_types), filesystem=filesystem, engine=engine)


if __name__ == "__main__":
    main()
