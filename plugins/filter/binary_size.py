# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: binary_size
short_description: Bytes as people read them, in binary units named as such
version_added: 0.2.0
author: reclaim.docker developers
description:
  - Docker's sizes are powers of 1024. This filter names them so, V(KiB), V(MiB), V(GiB), with two decimals, the
    numbers of C(ansible.builtin.human_readable); below 1 KiB, whole bytes (V(512 B)).
options:
  _input:
    description: A number of bytes (negative for a drop).
    type: int
    required: true
"""

EXAMPLES = r"""
- name: Show a size
  ansible.builtin.debug:
    msg: "{{ 8906643 | reclaim.docker.binary_size }}"  # 8.49 MiB
"""

RETURN = r"""
_value:
  description: The size, for example V(1.50 GiB).
  type: str
"""

from ansible_collections.reclaim.docker.plugins.plugin_utils._fleet import binary_size


class FilterModule:
    def filters(self):
        return {"binary_size": binary_size}
