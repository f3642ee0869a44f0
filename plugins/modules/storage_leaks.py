#!/usr/bin/python
# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: storage_leaks
short_description: Find and remove storage under Docker's root dir that nothing the engine knows refers to
version_added: 0.2.0
description:
  - Finds the storage that no prune can reclaim because the engine lost track of it, mostly after a crash, a full disk
    or a kill during a pull, load, build or removal (moby issues 21925, 38344, 43586, 45939), and removes it safely.
  - "It finds, from the engine's own metadata files (see O(reclaim.docker.disk_usage_info#module:root_dir)):"
  - overlay2 layer directories that no layer, container, init layer or BuildKit snapshot names (kind C(layer_directory));
  - C(-removing) entries of the layer database, layers whose deletion did not finish, and the directories they name
    (kind C(removing)); a clean daemon stop removes these itself, a killed one leaves them;
  - on the containerd image store, snapshots that no containerd namespace names (kind C(containerd_snapshot)) and
    content blobs that none knows (kind C(containerd_content)).
  - Each leak is priced exactly, as C(du) counts it (a file hard-linked from elsewhere is not counted, since removing
    the leak does not free it). Check mode lists what a real run removes; the real run removes exactly those and
    reports RV(reclaimed_bytes), equal to the drop of C(du -sx) on the root dir.
  - "Safety rules, each tested:"
  - never a leak that changed less than O(min_age) ago (the newest mtime or ctime of anything in it), so a pull, load
    or build in progress, which writes before the engine's metadata names what it writes, is never touched;
  - never one that a mount uses (a mount point in it, or an overlay mount's C(lowerdir), C(upperdir) or C(workdir) in
    it, from C(/proc/self/mountinfo));
  - just before removing each one, the module reads the engine's metadata (layer database, BuildKit's and containerd's
    databases) and the mounts again and keeps the leak if anything refers to it now, or if it changed since the walk;
  - a real run holds the engine's lock (O(lock_timeout)), as the other modules that change an engine do;
  - the module reads Docker's root dir on the host it runs on, so it needs a C(unix://) O(docker_host) on the Docker host
    itself; another is refused before the engine is contacted, and so is a root dir holding another engine's ID;
  - when a directory or the metadata cannot be read, nothing is called leaked and the task fails, changing nothing.
  - Never removes what the engine knows (images, containers, volumes, build cache), nor anything outside the places
    where the engine keeps layers, snapshots and blobs. Run it as root (with C(become)), since Docker's root dir is root's.
extends_documentation_fragment:
  - reclaim.docker._docker
  - reclaim.docker._lock
attributes:
  check_mode:
    support: full
    description: Lists what a real run removes and frees, from the same walk and rules.
  diff_mode:
    support: none
    description: The leaks are listed in RV(leaks) in every mode.
  idempotent:
    support: full
    description: A second run finds nothing left to remove (what it kept, it keeps while the rules hold).
options:
  min_age:
    description:
      - Keep a leak that changed (mtime or ctime of anything in it) less than this long ago, as a Go duration
        (V(24h), V(90m)) or days and weeks (V(2d), V(1w)).
      - V(0) removes leaks of any age; only for a host whose engine is known idle (no pull, load or build running).
    type: str
    default: 24h
seealso:
  - module: reclaim.docker.disk_usage_info
  - module: reclaim.docker.prune
author:
  - reclaim.docker developers (@reclaim-docker)
"""

EXAMPLES = r"""
- name: List the leaked storage on this Docker host
  reclaim.docker.storage_leaks:
  become: true
  check_mode: true
  register: leaks

- name: Remove what leaked more than a week ago
  reclaim.docker.storage_leaks:
    min_age: 1w
  become: true
"""

RETURN = r"""
leaks:
  description: The leaks a real run removes (in check mode, would remove), in the order it removes them.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The leak's absolute path.
      type: str
    relative_path:
      description: Its path under Docker's root dir.
      type: str
    kind:
      description: V(layer_directory), V(removing), V(layer_link) (an overlay2 short link to no layer directory),
        V(containerd_snapshot) or V(containerd_content).
      type: str
    bytes:
      description: What removing it frees, as C(du) counts it, with its links.
      type: int
    links:
      description: overlay2's short links to this layer directory (under C(overlay2/l), relative to the root dir),
        removed with it as the storage driver does; a link longer than 60 bytes takes a 4 KiB block on ext4.
      type: list
      elements: str
    age:
      description: Seconds since anything in it last changed.
      type: int
    last_changed:
      description: When anything in it last changed (UTC, RFC 3339).
      type: str
  sample:
    - path: /var/lib/docker/overlay2/4df09e92bbb0f8dd0105c7bc52104f05bd7631c86184a1a2ef398997021a1db7
      relative_path: overlay2/4df09e92bbb0f8dd0105c7bc52104f05bd7631c86184a1a2ef398997021a1db7
      kind: layer_directory
      bytes: 4255744
      links: [overlay2/l/6Y4NMDZSAFXLR7UZU4XYGNL3TW]
      age: 172800
      last_changed: "2026-12-04T00:31:21Z"
kept:
  description: Leaks found and kept, each with the rule that keeps it (C(reason)); the keys of RV(leaks) besides.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /var/lib/docker/overlay2/8ca6ba0fa0dd628145de7df16221684f863d86d3f5deffd99ff994567b6274be
      relative_path: overlay2/8ca6ba0fa0dd628145de7df16221684f863d86d3f5deffd99ff994567b6274be
      kind: layer_directory
      bytes: 8019968
      age: 40
      last_changed: "2026-12-06T00:30:41Z"
      reason: "too young: changed less than min_age (86400 s) ago"
leaked_bytes:
  description: Bytes of all the leaks found, kept ones included.
  returned: always
  type: int
  sample: 12271616
reclaimed_bytes:
  description: Bytes freed (in check mode, that would be freed).
  returned: always
  type: int
  sample: 4251648
exact:
  description: Whether the bytes are exact; always V(true) when the task succeeds (it fails rather than guess).
  returned: always
  type: bool
  sample: true
actions:
  description: One V(remove_leak) per leak in RV(leaks), with its status after a real run.
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: V(remove_leak).
      type: str
    name:
      description: The leak's path, as failure messages name it.
      type: str
    path:
      description: The leak's path.
      type: str
    kind:
      description: The leak's kind.
      type: str
    bytes:
      description: Bytes freed (0 when it was not removed).
      type: int
    status:
      description: After a real run, V(done), V(skipped) (a check just before removal kept it) or V(failed).
      type: str
    engine_reason:
      description: Why it was skipped or failed.
      type: str
  sample:
    - {action: remove_leak, path: /var/lib/docker/overlay2/4df09e92bbb0f8dd0105c7bc52104f05bd7631c86184a1a2ef398997021a1db7,
       kind: layer_directory, bytes: 4251648, status: done}
root_dir:
  description: Docker's root directory on this host.
  returned: always
  type: str
  sample: /var/lib/docker
"""

from ansible_collections.reclaim.docker.plugins.module_utils._leak_job import LeakJob
from ansible_collections.reclaim.docker.plugins.module_utils._runner import run_job


def main():
    run_job(LeakJob)


if __name__ == "__main__":
    main()
