# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_summary
short_description: The fleet report (reclaim.docker/fleet-report/v1) from each host's cleanup_result
version_added: 0.2.0
author: reclaim.docker developers
description:
  - Reads the fact C(cleanup_result) of each host, normalises it as P(reclaim.docker.cleanup#role) defines it (a host
    without one is V(unreachable)), and adds up the totals, in one pass on the controller.
  - The report's C(mode) is V(cleanup) if any host ran a cleanup, else V(audit) if any host ran an audit or
    O(check_mode) is true, else V(cleanup).
  - The contract is the P(reclaim.docker.fleet_report#role) role's README.
options:
  _input:
    description: The inventory hostnames to report on; a host listed twice counts once.
    type: list
    elements: str
    required: true
  hostvars:
    description: Where each host's C(cleanup_result) is read, C(hostvars).
    type: dict
    required: true
  generated_at:
    description: The report's time, as it is to be written (for example C(2026-11-27T14:15:00Z)).
    type: str
    required: true
  check_mode:
    description: Whether the report runs in check mode (C(ansible_check_mode)).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Build the fleet report
  ansible.builtin.set_fact:
    report: >-
      {{ groups['docker_hosts'] | reclaim.docker.fleet_summary(hostvars=hostvars,
           generated_at=now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ'), check_mode=ansible_check_mode) }}
"""

RETURN = r"""
_value:
  description:
    - The report, C(schema), C(mode), C(generated_at), C(totals) and C(hosts) (each host's result less C(mode)).
    - C(totals) has C(hosts), C(ok), C(failed), C(unreachable), C(reclaimed_bytes), C(root_dir_hosts) (how many hosts
      had their root dir walked), and C(leaked_bytes) and C(container_logs_bytes) over those hosts (null when none
      was).
  type: dict
"""

from ansible_collections.reclaim.docker.plugins.plugin_utils._fleet import fleet_summary
from ansible_collections.reclaim.docker.plugins.plugin_utils._templating import as_data


def _result_of(hostvars, host):
    if host not in hostvars:
        return None
    return hostvars[host].get("cleanup_result")


def _fleet_summary(hosts, hostvars, generated_at, check_mode=False):
    return as_data(fleet_summary([(host, _result_of(hostvars, host)) for host in hosts], generated_at, check_mode))


class FilterModule:
    def filters(self):
        return {"fleet_summary": _fleet_summary}
