# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""An argument spec with its constraints, as one object (community.crypto's ArgumentSpec): each shared group of options
(connection, layer cache, lock, ledger, protection, approval) is one builder returning one, and a job merges them."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


class ArgumentSpec:
    def __init__(self, argument_spec=None, mutually_exclusive=None, required_together=None, required_if=None):
        self.argument_spec = dict(argument_spec or {})
        self.mutually_exclusive = list(mutually_exclusive or [])
        self.required_together = list(required_together or [])
        self.required_if = list(required_if or [])

    def merge(self, *others):
        """This spec with the options and constraints of OTHERS added; returns self."""
        for other in others:
            self.argument_spec.update(other.argument_spec)
            self.mutually_exclusive.extend(other.mutually_exclusive)
            self.required_together.extend(other.required_together)
            self.required_if.extend(other.required_if)
        return self

    def create_ansible_module(self, supports_check_mode=True):
        return AnsibleModule(argument_spec=self.argument_spec, mutually_exclusive=self.mutually_exclusive,
                             required_together=self.required_together, required_if=self.required_if,
                             supports_check_mode=supports_check_mode)
