# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_artifacts
short_description: The AWX artifacts of a fleet report
version_added: 0.2.0
author: reclaim.docker developers
description:
  - The data the P(reclaim.docker.fleet_report#role) role hands to C(ansible.builtin.set_stats), JSON-safe.
  - C(reclaim_fleet_hosts) is keyed by hostname, so that the maps of a sliced AWX job's slices merge into the whole
    fleet; the totals go under C(reclaim_fleet_totals_<job>) (O(job_id), else C(local)), one key per slice, which
    consumers add up; an audit adds C(reclaim_audit_plans), each host's plan.
options:
  _input:
    description: The fleet report, as P(reclaim.docker.fleet_summary#filter) builds it.
    type: dict
    required: true
  hosts:
    description: The hosts to list.
    type: list
    elements: str
    required: true
  report_dir:
    description: The report's folder, as C(reclaim_fleet_report_dir).
    type: str
    required: true
  job_id:
    description: The AWX job (C(awx_job_id) or C(tower_job_id)); null outside AWX.
    type: raw
  copied_to:
    description: Where the report files were delivered (the role's C(fleet_report_copy_to)), as
      C(reclaim_fleet_report_copied_to); null when they were not.
    type: str
    version_added: 0.2.0
"""

EXAMPLES = r"""
- name: Set the AWX artifacts
  ansible.builtin.set_stats:
    per_host: false
    data: "{{ report | reclaim.docker.fleet_artifacts(hosts=groups['docker_hosts'], report_dir=dir, job_id=awx_job_id | default(none)) }}"
"""

RETURN = r"""
_value:
  description: C(reclaim_fleet_mode), C(reclaim_fleet_report_dir), C(reclaim_fleet_hosts) (each host's C(status) and
    C(reclaimed_bytes), and C(leaked_bytes) and C(container_logs_bytes) when its root dir was walked),
    C(reclaim_fleet_totals_<job>), for an audit C(reclaim_audit_plans), and for a delivered report
    C(reclaim_fleet_report_copied_to).
  type: dict
"""

from ansible_collections.reclaim.docker.plugins.plugin_utils._fleet import fleet_artifacts


def _fleet_artifacts(report, hosts, report_dir, job_id=None, copied_to=None):
    return fleet_artifacts(report, hosts, report_dir, job_id, copied_to)


class FilterModule:
    def filters(self):
        return {"fleet_artifacts": _fleet_artifacts}
