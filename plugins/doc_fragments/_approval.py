# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is PRIVATE to the collection: it can change at any time.

from __future__ import annotations


class ModuleDocFragment:
    # The approved plan options of the modules that remove what a plan selects
    # (module_utils/_approval.py, approval_argument_spec()).
    DOCUMENTATION = r"""
options:
  approved:
    description:
      - Remove only these items, an approved plan (for example the RV(plan) items of an earlier check-mode run, after
        someone reviewed them), not whatever the engine holds by the time this run starts.
      - Each element is an item ID (an image ID, a container ID, a network ID, a volume name, a build cache record ID)
        or a plan item, a dict with at least C(id); a plan item of an image with C(references) approves the image only
        with those references, so an image someone tagged since is kept and reported.
      - Anything else this run would remove is kept and listed in RV(not_approved). An approved item that changed
        (now in use, tagged since, gone, no longer selected) is kept and reported in RV(skipped_items). Check mode
        predicts exactly that.
      - An empty list approves nothing; when not set, everything the run selects may go.
    type: list
    elements: raw
  approved_engine_id:
    description:
      - The engine the approved plan was made on (C(engine_id) of RV(plan)). On another engine the task fails before
        anything is read for the plan, and nothing is changed.
      - Needs O(approved).
    type: str
"""
