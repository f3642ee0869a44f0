# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is PRIVATE to the collection: it can change at any time.

from __future__ import annotations


class ModuleDocFragment:
    # The usage ledger options of the modules that read containers
    # (module_utils/_usage_record.py, usage_ledger_argument_spec()).
    DOCUMENTATION = r"""
options:
  usage_ledger:
    description:
      - Keep the usage ledger, a file on the host where the module runs that records when each image was last seen in
        use, so that a container that ran and was removed (C(docker run --rm)) still counts as a use. Each run records
        the containers present (a running one as used now, a stopped one when it stopped or was created) and the
        engine's container events since the previous run; M(reclaim.docker.image_retention) evicts by it, least recently
        used first.
      - The engine keeps only its last 256 events, so uses of containers created and removed between two runs beyond
        that are lost; the role C(reclaim.docker.usage_tracker)
        follows the events as they happen, into the same ledger.
      - Check mode writes it too; it changes no engine state. A ledger that cannot be used never fails the task; the
        module warns why and goes on without it.
    type: bool
    default: true
  usage_ledger_dir:
    description:
      - The directory of the usage ledger, one file per engine, named by a digest of the engine's ID (C(usage-*.json));
        writers take an flock on a C(.lock) file next to it, so that none loses another's uses.
      - The ledger belongs to the directory's owner, so that the modules (usually root, through C(become)) and the
        service of the role C(reclaim.docker.usage_tracker) (its own user) share one file. A user uses a directory it
        owns; root uses any user's (the tracker's). A file there is trusted when the directory's owner owns it (or the
        one reading it, root's own file); root writes the files it writes there (the ledger and its lock) as the
        directory's owner's. Nothing group or others may write is used, nor a symbolic link; a file that breaks a rule
        is ignored with a warning and never touched. The layer cache keeps its own rule (only its owner's), so keep it
        elsewhere than the tracker's directory.
      - If not set, O(layer_cache_dir), or its default.
    type: path
"""
