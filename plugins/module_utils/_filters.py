# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""Prune filters, evaluated by our code the same way on every engine. Pure.

Engines disagree: Docker 29's image prune ignores `label!` (moby #52334), older engines OR several `label!`
(moby #40286), the containerd store compares `until` with the record time instead of the image's creation.
Here several `label` all hold, several `label!` all hold, and `until` compares with when the object was created.
"""

from __future__ import annotations

from ansible_collections.reclaim.docker.plugins.module_utils._plan import UNKNOWN_STOP, UNKNOWN_TIME
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem, parse_duration, parse_until

ALLOWED_KEYS = {
    "containers": ("until", "stopped_for", "label", "label!"),
    "images": ("dangling", "until", "label", "label!"),
    "networks": ("until", "label", "label!"),
    "volumes": ("label", "label!", "all"),
    # Passed on to BuildKit, which silently ignores keys it does not know: checked here instead.
    "builder_cache": ("until", "id", "type", "inuse", "shared", "private", "description", "parent"),
}
BOOLEAN_KEYS = ("dangling", "all", "inuse", "shared", "private")
# BuildKit's record types (client.UsageRecordType); a `type` filter with any other value selects nothing.
BUILD_CACHE_TYPES = ("internal", "frontend", "source.local", "source.git.checkout", "exec.cachemount", "regular")


def _values(option, value):
    """community.docker's filter values: a string, a bool, a list, or Docker's map form {"k=v": true}."""
    if isinstance(value, dict):
        if not all(isinstance(enabled, bool) for enabled in value.values()):
            raise ValueProblem(f"{option}: in Docker's map form every value is true or false, got {value!r}.")
        return [str(k) for k, enabled in value.items() if enabled]
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if any(v is None or isinstance(v, (dict, list, tuple)) for v in values):
        raise ValueProblem(f"{option}: takes a string, a list of strings or Docker's map form, got {value!r}.")
    return [_text(v) for v in values]


def _text(value):
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class Filters:
    """One category's filters, validated; `matches` decides for one object."""

    def __init__(self, category, raw, now):
        option = f"{category}_filters"
        self.values = {}
        for key, value in (raw or {}).items():
            if key not in ALLOWED_KEYS[category]:
                raise ValueProblem(f"{option}: unknown filter {key!r}; {category} take {', '.join(ALLOWED_KEYS[category])}.")
            values = _values(f"{option}.{key}", value)
            if key in BOOLEAN_KEYS:
                if len(values) != 1 or values[0].lower() not in ("true", "false", "1", "0"):
                    raise ValueProblem(f"{option}: {key} must be true or false, got {value!r}.")
                values = [values[0].lower() in ("true", "1")]
            if key == "until":
                if len(values) != 1:
                    raise ValueProblem(f"{option}: give one until, got {values!r}.")
                self.until = parse_until(values[0], f"{option}.until", now)
            if key == "stopped_for":
                if len(values) != 1:
                    raise ValueProblem(f"{option}: give one stopped_for, got {values!r}.")
                self.stopped_before = now - parse_duration(values[0], f"{option}.stopped_for")
            if key in ("label", "label!"):
                for label in values:
                    check_label(label, f"{option}.{key}")
            if key in ("id", "type", "description", "parent") and not all(values):
                raise ValueProblem(f"{option}.{key}: an empty value selects nothing, got {value!r}.")
            unknown_types = [v for v in values if v not in BUILD_CACHE_TYPES] if key == "type" else []
            if unknown_types:
                raise ValueProblem(f"{option}.type: {unknown_types[0]!r} is no build cache record type; BuildKit's are "
                                   f"{', '.join(BUILD_CACHE_TYPES)}.")
            self.values[key] = values

    def first(self, key, default=None):
        """The value of a single-valued filter (dangling, all), or DEFAULT when it is not set."""
        values = self.values.get(key)
        return values[0] if values else default

    def all_of(self, key):
        """Every value given for KEY (label and label! take several)."""
        return self.values.get(key, [])

    def selects(self, labels, created, stopped=None):
        """True or False, as matches() decides; or, for an object that an unknown time alone keeps out (its creation
        or stop time), the Hold that says so, for the planner to report it."""
        if self.matches(labels, created, stopped):
            return True
        if (created is None or stopped is None) and self.matches(labels, created or 0.0, stopped or 0.0):
            return UNKNOWN_TIME if created is None else UNKNOWN_STOP
        return False

    def matches(self, labels, created, stopped=None):
        """Whether an object with LABELS, created at CREATED and (a container) stopped at STOPPED (Unix seconds, None
        when unknown), passes until, stopped_for, label and label!. An unknown time never passes until nor
        stopped_for."""
        if "until" in self.values and (created is None or not created < self.until):
            return False
        if "stopped_for" in self.values and (stopped is None or not stopped < self.stopped_before):
            return False
        if not all(label_matches(labels, wanted) for wanted in self.all_of("label")):
            return False
        return not any(label_matches(labels, unwanted) for unwanted in self.all_of("label!"))


def check_label(expression, option):
    """EXPRESSION is KEY or KEY=VALUE, the key as Docker's CLI takes one (not empty, no whitespace). A key that starts
    or ends with ! is a negation typed into the value: it would name another label."""
    key = expression.partition("=")[0]
    if not key:
        raise ValueProblem(f"{option}: {expression!r} is not KEY or KEY=VALUE.")
    if any(char.isspace() for char in key):
        raise ValueProblem(f"{option}: {expression!r} has whitespace in its key, which Docker's labels never have.")
    if key.startswith("!") or key.endswith("!"):
        raise ValueProblem(f"{option}: {expression!r} has a key with !; a negation is the filter label! (label!: KEY).")


def label_matches(labels, expression):
    """KEY: the label is there; KEY=VALUE: it has that value."""
    key, _sep, value = expression.partition("=")
    if key not in labels:
        return False
    return not _sep or labels[key] == value
