# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: cleanup_steps
short_description: The cleanup role's settings as the module arguments of its steps
version_added: 0.2.0
author: reclaim.docker developers
description:
  - Turns the settings of the P(reclaim.docker.cleanup#role) role into the arguments of its two steps,
    M(reclaim.docker.image_retention) and M(reclaim.docker.prune), once per host.
  - The profile says what the prune removes (see the role's README); the retention step runs when a policy is set and
    the profile is not V(aggressive). A C(protect) in the policy adds to O(protect) for the retention step.
  - With an approved plan, each step gets the objects approved for it (an object without a C(step) is approved for
    both) as C(approved), and the plan's engine ID, when it has one, as C(approved_engine_id).
  - Fails, naming the setting, when O(prune_named_volumes) is set without O(prune_volumes).
options:
  _input:
    description: The profile, V(conservative), V(standard) or V(aggressive).
    type: str
    required: true
  retention:
    description: The retention policy (the role's C(cleanup_retention)); empty for no retention step.
    type: dict
  protect:
    description: References and labels never removed by any step (the role's C(cleanup_protect)).
    type: dict
  min_age:
    description: Nothing younger than this is removed by any step.
    type: str
    default: 1h
  prune_volumes:
    description: Also prune unused anonymous volumes.
    type: bool
    default: false
  prune_named_volumes:
    description: Also prune unused named volumes; needs O(prune_volumes).
    type: bool
    default: false
  approved_plan:
    description: One host's approved plan (C(engine_id), C(objects)); empty or null for none.
    type: dict
"""

EXAMPLES = r"""
- name: The arguments of both steps
  ansible.builtin.set_fact:
    steps: "{{ 'standard' | reclaim.docker.cleanup_steps(retention={'keep_last': 3}, min_age='2h') }}"

- name: Prune as the profile says
  reclaim.docker.prune: "{{ steps.prune }}"
"""

RETURN = r"""
_value:
  description: The module arguments of each step, and the approved plan as given.
  type: dict
  contains:
    retention:
      description: The arguments of M(reclaim.docker.image_retention); null when the step does not run.
      type: dict
    prune:
      description: The arguments of M(reclaim.docker.prune), with O(reclaim.docker.prune#module:usage=true).
      type: dict
    approved_plan:
      description: The approved plan, V({}) for none.
      type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.reclaim.docker.plugins.plugin_utils._fleet import CleanupProblem, cleanup_steps


def _cleanup_steps(profile, **settings):
    try:
        return cleanup_steps(profile, **settings)
    except CleanupProblem as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"cleanup_steps": _cleanup_steps}
