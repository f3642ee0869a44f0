"""Protection: by reference glob, by label, by age; and what it refuses."""

from __future__ import annotations

import pytest

from ansible_collections.reclaim.docker.plugins.module_utils._plan import UNKNOWN_TIME, Hold
from ansible_collections.reclaim.docker.plugins.module_utils._protection import Protection, protection_argument_spec
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem

NOW = 1_800_000_000.0
OLD = NOW - 40 * 86400
NEW = NOW - 60


def test_protection():
    protection = Protection({"references": ["registry.example.com/prod/*", "postgres:*"], "labels": ["keep"]}, "1h", NOW)
    assert protection.hold({}, OLD, ["postgres:16"]) == Hold("protected", "protected: postgres:16 matches postgres:*")
    assert protection.hold({}, OLD, ["registry.example.com/prod/api:1"]).category == "protected"
    assert str(protection.hold({"keep": "x"}, OLD)) == "protected: label keep"
    assert protection.hold({}, NEW).category == "too_young"
    assert protection.hold({}, OLD, ["registry.example.com/dev/api:1"]) is None


def test_bad_protection():
    with pytest.raises(ValueProblem, match="protect.labels"):
        Protection({"labels": ["=x"]}, None, NOW)
    with pytest.raises(ValueProblem, match="protect.references: 'postgres' never matches"):
        Protection({"references": ["postgres"]}, None, NOW)
    with pytest.raises(ValueProblem, match="min_age"):
        Protection({}, "soon", NOW)


def test_an_unknown_creation_time_is_too_young_only_under_min_age():
    assert Protection({}, "1h", NOW).hold({}, None) == UNKNOWN_TIME
    assert Protection({}, None, NOW).hold({}, None) is None


def test_the_options_as_the_fragment_documents_them():
    spec = protection_argument_spec().argument_spec
    assert spec["min_age"] == {"type": "str"}
    assert set(spec["protect"]["options"]) == {"references", "labels"}
