"""Prune filters as Docker documents them, the same on every engine."""

from __future__ import annotations

import pytest

from ansible_collections.reclaim.docker.plugins.module_utils._filters import Filters, label_matches
from ansible_collections.reclaim.docker.plugins.module_utils._plan import UNKNOWN_STOP, UNKNOWN_TIME
from ansible_collections.reclaim.docker.plugins.module_utils._units import ValueProblem

NOW = 1_800_000_000.0
OLD = NOW - 40 * 86400
NEW = NOW - 60


@pytest.mark.parametrize("labels, expression, expected", [
    ({"keep": "yes"}, "keep", True), ({}, "keep", False), ({"tier": "prod"}, "tier=prod", True),
    ({"tier": "dev"}, "tier=prod", False), ({"tier": ""}, "tier=", True), ({"a": "b=c"}, "a=b=c", True),
])
def test_label_matches(labels, expression, expected):
    assert label_matches(labels, expression) is expected


@pytest.mark.parametrize("labels, expected", [
    ({}, True), ({"keep": "1"}, False), ({"tier": "prod"}, False), ({"tier": "dev"}, True),
    ({"keep": "1", "tier": "prod"}, False),
])
def test_several_label_negations_all_hold(labels, expected):
    # moby #40286: older engines OR them; Docker 29 ignores them for images.
    filters = Filters("images", {"label!": ["keep", "tier=prod"]}, NOW)
    assert filters.matches(labels, OLD) is expected


def test_several_labels_all_hold():
    filters = Filters("containers", {"label": ["a", "b=1"]}, NOW)
    assert filters.matches({"a": "x", "b": "1"}, OLD)
    assert not filters.matches({"a": "x"}, OLD)


def test_until_compares_creation_time():
    filters = Filters("images", {"until": "720h"}, NOW)
    assert filters.matches({}, OLD) and not filters.matches({}, NEW)


def test_an_unknown_time_is_new():
    assert not Filters("networks", {"until": "720h"}, NOW).matches({}, None)
    assert Filters("networks", {"label": "a"}, NOW).matches({"a": ""}, None)


def test_selects_names_the_unknown_time_that_alone_keeps_an_object_out():
    filters = Filters("containers", {"until": "720h", "stopped_for": "24h", "label": "a"}, NOW)
    assert filters.selects({"a": ""}, OLD, OLD) is True
    assert filters.selects({"a": ""}, None, OLD) == UNKNOWN_TIME
    assert filters.selects({"a": ""}, OLD, None) == UNKNOWN_STOP
    assert filters.selects({}, None, None) is False  # the label keeps it out whatever the times
    assert filters.selects({"a": ""}, NEW, OLD) is False


@pytest.mark.parametrize("value, expected", [
    ("k=v", ["k=v"]), (["a", "b"], ["a", "b"]), ({"k=v": True, "x": False}, ["k=v"]),
])
def test_value_forms(value, expected):
    assert Filters("networks", {"label": value}, NOW).all_of("label") == expected


@pytest.mark.parametrize("value, expected", [(True, True), ("false", False), ("1", True), (False, False)])
def test_boolean_keys(value, expected):
    assert Filters("images", {"dangling": value}, NOW).first("dangling") is expected


@pytest.mark.parametrize("category, raw, fragment", [
    ("images", {"reference": "x"}, "images_filters: unknown filter 'reference'"),
    ("volumes", {"until": "1h"}, "volumes_filters: unknown filter 'until'"),
    ("images", {"dangling": "maybe"}, "dangling must be true or false"),
    ("containers", {"until": ["1h", "2h"]}, "give one until"),
    ("containers", {"until": "30days"}, "containers_filters.until: '30days'"),
    ("networks", {"label": "=v"}, "networks_filters.label: '=v' is not KEY or KEY=VALUE"),
    ("builder_cache", {"foo": "1"}, "builder_cache_filters: unknown filter 'foo'"),
    ("builder_cache", {"type": "layers"}, "builder_cache_filters.type: 'layers' is no build cache record type"),
    ("builder_cache", {"parent": ["x", ""]}, "builder_cache_filters.parent: an empty value"),
    ("images", {"label": "tier = prod"}, "images_filters.label: 'tier = prod' has whitespace in its key"),
    ("images", {"label": "keep!=1"}, "images_filters.label: 'keep!=1' has a key with !"),
    ("networks", {"label!": {"keep": "yes"}}, "networks_filters.label!: in Docker's map form every value is true or false"),
    ("containers", {"label": None}, "containers_filters.label: takes a string, a list of strings"),
])
def test_bad_filters_name_the_option(category, raw, fragment):
    with pytest.raises(ValueProblem) as error:
        Filters(category, raw, NOW)
    assert fragment in str(error.value)


@pytest.mark.parametrize("value, message", [
    ("soon", "containers_filters.stopped_for: 'soon' is not a duration"),
    ("-1h", "containers_filters.stopped_for: '-1h' is negative"),
    (["1h", "2h"], "give one stopped_for"),
])
def test_bad_stopped_for(value, message):
    with pytest.raises(ValueProblem, match=message):
        Filters("containers", {"stopped_for": value}, NOW)
    with pytest.raises(ValueProblem, match="unknown filter 'stopped_for'"):
        Filters("images", {"stopped_for": "1h"}, NOW)
