# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin utility is PRIVATE to the collection: it can change at any time.

"""What the filters return, as data Ansible never templates again."""

from __future__ import annotations

from ansible.release import __version__ as ansible_core_version
from ansible.utils.unsafe_proxy import wrap_var

# ansible-core 2.17 and 2.18 template every string of a variable at each use, unless it is unsafe; 2.19 and later
# never template a filter's result again.
TEMPLATES_EVERY_USE = tuple(int(part) for part in ansible_core_version.split(".")[:2]) < (2, 19)


def as_data(value):
    """VALUE, which Ansible is not to template again: unsafe where ansible-core would (a 500-host report's facts cost
    ansible-core 2.17 5 CPU-seconds more otherwise), as it is where it would not."""
    return wrap_var(value) if TEMPLATES_EVERY_USE else value
