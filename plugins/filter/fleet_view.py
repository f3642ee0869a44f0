# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_view
short_description: The rows and charts of the fleet report's files, in the order they show them
version_added: 0.2.0
author: reclaim.docker developers
description:
  - What the P(reclaim.docker.fleet_report#role) role's templates render, computed once; each host's row, the HTML
    table's order (failed hosts, then unreachable ones, then the rest, each by space freed, largest first), the
    charts' largest hosts (the 20 largest one bar each, the others summed; a fleet of 21 hosts or fewer has a bar per
    host) and their scales, the rows of hosts with an approved plan, and the hosts that failed or could not be
    reached; whether any host's root dir was walked, the fleet's 20 largest container logs, and the Prometheus series.
options:
  _input:
    description: The fleet report, as P(reclaim.docker.fleet_summary#filter) builds it.
    type: dict
    required: true
  hosts:
    description: The hosts to show, in the order of the Markdown report and the job output.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Render the table's rows
  ansible.builtin.debug:
    msg: "{{ (report | reclaim.docker.fleet_view(hosts=groups['docker_hosts'])).table | map(attribute='name') }}"
"""

RETURN = r"""
_value:
  description: The rows and the charts.
  type: dict
  contains:
    rows:
      description:
        - Every host in O(hosts)' order, each C(name), C(status), C(approved) (whether it has an approved plan),
          C(freed), C(before) and C(after) (image bytes), C(removed_count) and C(removed_text) (for example
          V(3 images, 1 container)), C(leaked) and C(logs) (bytes, null when its root dir was not walked) with their
          texts. The host's entry stays in the report, under its name.
      type: list
      elements: dict
    table:
      description: The same rows, failed, then unreachable, then the rest, each by space freed (largest first).
      type: list
      elements: dict
    approved:
      description: The rows of hosts with an approved plan, in O(hosts)' order.
      type: list
      elements: dict
    chart_n:
      description: How many hosts each chart draws one bar each.
      type: int
    freed:
      description: The chart of space freed, C(top) (rows), C(rest) (how many others), C(rest_bytes), C(scale).
      type: dict
    usage:
      description: The chart of image storage, C(top), C(rest), C(rest_before), C(rest_after), C(scale).
      type: dict
    failed:
      description: The hosts that failed, in O(hosts)' order.
      type: list
      elements: str
    unreachable:
      description: The hosts that could not be reached (no result), in O(hosts)' order.
      type: list
      elements: str
    root_dir:
      description: Whether any host's root dir was walked (the files then show leaked and container log bytes).
      type: bool
      version_added: 0.2.0
    logs:
      description: The fleet's 20 largest container logs, largest first, each C(host), C(container), C(name),
        C(driver), C(path), C(bytes) and C(bytes_text).
      type: list
      elements: dict
      version_added: 0.2.0
    metrics:
      description:
        - The Prometheus series, C(timestamp) (the report's time in seconds since the epoch), C(status) (each host's
          three statuses, 1 for its own), C(reclaimed) (hosts whose run finished), C(leaked) and C(logs) (hosts whose
          root dir was walked), C(hosts) (counts by status) and C(fleet) (the byte totals; leaked and logs null when
          no root dir was walked).
      type: dict
      version_added: 0.2.0
"""

from ansible_collections.reclaim.docker.plugins.plugin_utils._fleet import fleet_view
from ansible_collections.reclaim.docker.plugins.plugin_utils._templating import as_data


def _fleet_view(report, hosts):
    return as_data(fleet_view(report, hosts))


class FilterModule:
    def filters(self):
        return {"fleet_view": _fleet_view}
