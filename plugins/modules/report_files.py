#!/usr/bin/python
# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: report_files
short_description: Write report files on the controller, with no module run
version_added: 0.2.0
description:
  - Writes files whose contents the task already has (rendered templates, JSON) into one folder on the controller,
    where C(ansible-playbook) runs, whatever host the task runs for; the folder is created when missing. Each file is
    written to a temporary file in the folder and renamed over the old one, so a reader never sees half a report.
  - An action plugin, run by the controller itself. M(ansible.builtin.copy) and M(ansible.builtin.template) run two
    modules per file (a C(stat), then the copy), about a third of a CPU-second each; the reports of
    P(reclaim.docker.fleet_report#role), four files, cost this task alone.
  - Used by P(reclaim.docker.fleet_report#role) for its report files.
options:
  dest:
    description: The folder, on the controller; a relative path is relative to the directory C(ansible-playbook) runs in.
    type: path
    required: true
  files:
    description:
      - File name to contents, text; a final newline is added when missing. A name is a plain file name (no C(/), not
        C(.) nor C(..)).
    type: dict
    required: true
  mode:
    description: The files' permissions; the folder, when created, gets these plus search (C(x)) where reading is allowed.
    type: str
    default: "0644"
attributes:
  check_mode:
    support: full
    description: In check mode nothing is written; RV(written) says which files would change.
  diff_mode:
    support: none
    description: RV(written) names the files that changed.
  action:
    support: full
    description: Runs on the controller only, as an action plugin; nothing runs on the task's host.
  platform:
    support: full
    platforms: posix
    description: The controller's filesystem.
author:
  - reclaim.docker developers (@reclaim-docker)
"""

EXAMPLES = r"""
- name: Write a report
  reclaim.docker.report_files:
    dest: reports/latest
    files:
      report.json: "{{ report | ansible.builtin.to_nice_json }}"
      report.md: "{{ lookup('ansible.builtin.template', 'report.md.j2') }}"
  check_mode: false
"""

RETURN = r"""
dest:
  description: The folder's absolute path.
  returned: always
  type: str
  sample: /srv/reports/20261127T141500Z-audit
files:
  description: The files' absolute paths, in the order given.
  returned: always
  type: list
  elements: str
  sample: [/srv/reports/20261127T141500Z-audit/report.json]
written:
  description: The names of the files whose contents changed (in check mode, would change).
  returned: always
  type: list
  elements: str
  sample: [report.json]
"""
