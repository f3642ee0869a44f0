# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""Protection: what a run must never touch (images by reference glob, anything by label, anything younger than
min_age), as the options protect and min_age give it (the _protection doc fragment). Pure."""

from __future__ import annotations

import fnmatch
import re

from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec
from ansible_collections.reclaim.docker.plugins.module_utils._filters import check_label, label_matches
from ansible_collections.reclaim.docker.plugins.module_utils._model import reference_problem
from ansible_collections.reclaim.docker.plugins.module_utils._plan import UNKNOWN_TIME, Hold
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem, parse_duration

# fnmatch's wildcards: *, ?, and [...] (a leading ! negates; a ] first in it is a member).
GLOB_WILDCARD = re.compile(r"\*|\?|\[!?\]?[^\]]*\]")


def protection_argument_spec():
    """The options protect and min_age, as prune and image_retention take them (doc fragment _protection)."""
    return ArgumentSpec(dict(
        protect=dict(type="dict", options=dict(
            references=dict(type="list", elements="str", default=[]),
            labels=dict(type="list", elements="str", default=[]),
        )),
        min_age=dict(type="str"),
    ))


class Protection:
    """What a run must never touch: images by reference glob, anything by label, anything younger than min_age."""

    def __init__(self, protect, min_age, now):
        protect = protect or {}
        self.references = list(protect.get("references") or [])
        self.labels = list(protect.get("labels") or [])
        for pattern in self.references:
            check_reference_glob(pattern, "protect.references")
        for label in self.labels:
            check_label(label, "protect.labels")
        self.min_age = parse_duration(min_age, "min_age") if min_age is not None else None
        self.now = now

    def hold(self, labels, created, references=()):
        """Why an object must stay (a Hold: protected, too_young or unknown_time), or None."""
        for pattern in self.references:
            hit = next((r for r in references if fnmatch.fnmatchcase(r, pattern)), None)
            if hit:
                return Hold("protected", f"protected: {hit} matches {pattern}")
        for label in self.labels:
            if label_matches(labels, label):
                return Hold("protected", f"protected: label {label}")
        if self.min_age is not None and created is None:
            return UNKNOWN_TIME
        if self.min_age is not None and created > self.now - self.min_age:
            return Hold("too_young", "too young: created less than min_age ago")
        return None


def check_reference_glob(pattern, option):
    """PATTERN can match a tag as the engine lists it (NAME:TAG, Docker Hub names short): with each wildcard
    standing for one character that every part of a reference takes, the rest is in Docker's reference grammar."""
    example = GLOB_WILDCARD.sub("0", pattern)
    if "[" in example:
        raise ValueProblem(f"{option}: {pattern!r} opens a [ that it never closes ([...] matches one character).")
    if "@" in pattern:
        raise ValueProblem(f"{option}: {pattern!r} never matches: patterns match tags (NAME:TAG), not digests.")
    if pattern.startswith(("docker.io/", "index.docker.io/")):
        raise ValueProblem(f"{option}: {pattern!r} never matches: the engine lists Docker Hub images by their short "
                           "names (busybox:1.36, lab/app:1); leave out docker.io/ and library/.")
    problem = reference_problem(example)
    if problem:
        raise ValueProblem(f"{option}: {pattern!r} never matches: with its wildcards filled in, it {problem}.")
    if not any(char in pattern.rsplit("/", 1)[-1] for char in ":*?["):
        raise ValueProblem(f"{option}: {pattern!r} never matches: the engine lists every image as NAME:TAG; write "
                           f"{pattern}:* for all of its tags.")
