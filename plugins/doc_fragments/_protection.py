# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is PRIVATE to the collection: it can change at any time.

from __future__ import annotations


class ModuleDocFragment:
    # protect and min_age, as _filters.protection_argument_spec() declares them.
    DOCUMENTATION = r"""
options:
  protect:
    description: What is never removed nor untagged, whatever else selects it.
    type: dict
    suboptions:
      references:
        description:
          - Glob patterns on image references (C(repo:tag)), for example V(registry.example.com/prod/*) or V(postgres:*).
          - The engine lists Docker Hub images by their short names (V(postgres:16), not V(docker.io/library/postgres:16))
            and every image with its tag. A pattern that can never match one (V(postgres) without a tag, a C(docker.io/)
            prefix, a digest, an unclosed C([), capitals in the name or characters Docker's reference grammar refuses)
            fails the task.
        type: list
        elements: str
        default: []
      labels:
        description:
          - C(KEY) or C(KEY=VALUE); protects the images, containers, networks and volumes that have it.
          - A key is never empty, has no whitespace, and does not start or end with C(!).
        type: list
        elements: str
        default: []
  min_age:
    description:
      - Nothing created less than this long ago is removed (for example images just built and not yet pushed). A Go
        duration (V(1h), V(90m), V(720h)) or days and weeks (V(2d), V(1w)).
      - An object whose creation time the engine does not give (or gives in a form that cannot be read) is kept as if
        new, with the reason.
    type: str
"""
