# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin utility is PRIVATE to the collection: it can change at any time.

"""What the filters return, as data Ansible never templates again."""

from __future__ import annotations

try:
    # ansible-core 2.19 and later never template a filter's result again: it is returned as it is.
    from ansible.template import trust_as_template  # noqa: F401 pylint: disable=unused-import

    def as_data(value):
        return value
except ImportError:  # ansible-core 2.17 and 2.18 template every string of a variable at each use, unless unsafe
    from ansible.utils.unsafe_proxy import wrap_var as as_data  # noqa: F401
