# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""Docker's root dir read on the Docker host: the checks that the module runs there, and one scan (walk, metadata,
categories) for disk_usage_info's root_dir and for storage_leaks.

Standard library only, Python 3.9 and later (it runs on the Docker host's Python).
"""

from __future__ import annotations

import os

from ansible_collections.reclaim.docker.plugins.module_utils._connection import is_local_endpoint
from ansible_collections.reclaim.docker.plugins.module_utils._disk_walk import walk
from ansible_collections.reclaim.docker.plugins.module_utils._root_dir import categorize, descend
from ansible_collections.reclaim.docker.plugins.module_utils._storage_index import read_index

ENGINE_ID_FILE = "engine-id"  # Docker 23 and later keep their ID here


def remote_host_problem(params, option):
    """Why OPTION cannot be used with the module's docker_host (None when it can): Docker's root dir is read from the
    host the module runs on, which is the Docker host only with a unix:// socket. Checked before the engine is
    contacted; a bad docker_host is left for the connection to name."""
    if is_local_endpoint(params):
        return None
    return (f"{option} reads Docker's root dir on the host the module runs on, so it needs a unix:// docker_host on "
            f"the Docker host itself; docker_host is {params['docker_host']}. Run the task on the Docker host (for "
            "example with delegate_to or the host in the inventory) with its local socket.")


def root_dir_problem(root, engine_id):
    """Why ROOT, the engine's root dir as it reports it, is not this host's root dir of that engine (None when it is):
    missing here, not a directory, or holding another engine's ID."""
    if not root:
        return "the engine reports no root dir"
    try:
        if not os.path.isdir(root):
            return f"the engine's root dir {root} is not a directory on this host: is the module on the Docker host?"
        with open(os.path.join(root, ENGINE_ID_FILE), encoding="utf-8") as handle:
            found = handle.read().strip()
    except FileNotFoundError:
        return None  # Docker 20.10 keeps no engine-id file
    except PermissionError:
        return f"no permission to read the engine's root dir {root}; run the module as root (become: true)"
    except OSError as exc:
        return f"the engine's root dir {root} cannot be read ({exc.strerror or exc})"
    if engine_id and found and found != engine_id:
        return (f"the root dir {root} on this host belongs to engine {found}, not to the engine that answered "
                f"({engine_id}): is the module on the Docker host?")
    return None


def scan(root, image_store):
    """Walk ROOT and explain it: (report, leaks) as _root_dir.categorize returns them, the report with `exact` (and
    `inexact_reason` when the walk or the metadata could not be read whole). IMAGE_STORE as disk_usage_info's engine
    facts name it."""
    found = walk(root, descend)
    index = read_index(root)
    report, leaks = categorize(root, {path: unit.as_dict() for path, unit in found.units.items()}, index)
    problems = [f"cannot read {problem}" for problem in found.problems] + index.problems
    if image_store == "containerd" and "containerd" not in index.stores:
        problems.append("the engine's containerd keeps its snapshots and content outside Docker's root dir (a system "
                        "containerd), where this walk does not go")
    report["exact"] = not problems
    if problems:
        report["inexact_reason"] = "; ".join(problems)
    return report, leaks
