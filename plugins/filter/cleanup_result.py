# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: cleanup_result
short_description: One host's cleanup_result from the registered results of the cleanup role's steps
version_added: 0.2.0
author: reclaim.docker developers
description:
  - The one definition of the fact C(cleanup_result) that the P(reclaim.docker.cleanup#role) role sets and the
    P(reclaim.docker.fleet_report#role) role reports (every key, its type and its default; see the role's README).
  - A run that finished, from the registered results of M(reclaim.docker.image_retention) (skipped or not) and
    M(reclaim.docker.prune) (run with O(reclaim.docker.prune#module:usage=true)). The prune's result says whether the
    run was an audit (check mode). An audit predicts the usage after from the usage before and the bytes both steps
    would free; a cleanup has it as the prune read it after the last step.
  - With the registered result of M(reclaim.docker.disk_usage_info) run with
    O(reclaim.docker.disk_usage_info#module:root_dir=true) before the other steps (C(root_dir)), C(root_dir) keeps
    what its walk of Docker's root dir found, with the five largest container logs; null without a walk.
  - A run that failed (O(failed) set), with the usage read before the failure and the error.
options:
  _input:
    description: The steps' registered results, C(root_dir), C(retention) and C(prune); a step that did not run may be
      left out.
    type: dict
    required: true
  profile:
    description: The profile the run used.
    type: str
  approved_plan:
    description: The host's approved plan, empty or null for none; with one, the result counts what was approved,
      applied, not approved and skipped (C(approval)).
    type: dict
  failed:
    description: The failed task's result (C(ansible_failed_result)), for a run that failed.
    type: dict
  mode:
    description: V(audit) or V(cleanup), for a run that failed (a run that finished takes it from the prune's result).
    type: str
"""

EXAMPLES = r"""
- name: Record the result
  ansible.builtin.set_fact:
    cleanup_result: >-
      {{ {'root_dir': root_dir_walk, 'retention': retention_run, 'prune': prune_run}
         | reclaim.docker.cleanup_result(profile='standard', approved_plan={}) }}
"""

RETURN = r"""
_value:
  description:
    - C(mode), C(status), C(profile), C(reclaimed_bytes), C(removed), C(usage_before), C(usage_after),
      C(filesystem_delta_bytes), C(skipped), C(engine_id), C(plan), C(not_approved), C(approval), C(root_dir),
      C(error), as the P(reclaim.docker.cleanup#role) role's README describes them.
  type: dict
"""

from ansible_collections.reclaim.docker.plugins.plugin_utils._fleet import cleanup_result
from ansible_collections.reclaim.docker.plugins.plugin_utils._templating import as_data


def _cleanup_result(steps, **parts):
    return as_data(cleanup_result(steps, **parts))


class FilterModule:
    def filters(self):
        return {"cleanup_result": _cleanup_result}
