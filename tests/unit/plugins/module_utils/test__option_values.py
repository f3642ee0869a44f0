"""Fuzzing the option parsers: any value either parses to something usable or raises ValueProblem naming the
option, never another exception (which a module would show as a traceback)."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import DURATIONS, FILTER_KEYS, GRAMMAR_TEXT, IMAGE_NAMES, SIZES, TIMES, VALUES

from ansible_collections.reclaim.docker.plugins.module_utils._filters import ALLOWED_KEYS, Filters
from ansible_collections.reclaim.docker.plugins.module_utils._model import check_image_name
from ansible_collections.reclaim.docker.plugins.module_utils._protection import Protection, check_reference_glob
from ansible_collections.reclaim.docker.plugins.module_utils._units import (
    INT64_MAX,
    MAX_DURATION,
    ValueProblem,
    go_duration,
    parse_duration,
    parse_size,
    parse_until,
)

NOW = 1_800_000_000.0
FUZZ = settings(max_examples=300, deadline=None)


def refused_by_name(call, option):
    """CALL's result, or None when it raised ValueProblem naming OPTION; any other exception fails the test."""
    try:
        return call()
    except ValueProblem as exc:
        assert str(exc).startswith(option), str(exc)
        return None


@FUZZ
@given(DURATIONS, st.booleans())
def test_durations(text, allow_negative):
    seconds = refused_by_name(lambda: parse_duration(text, "max_age", allow_negative), "max_age")
    if seconds is not None:
        assert math.isfinite(seconds) and abs(seconds) <= MAX_DURATION
        assert allow_negative or seconds >= 0


@FUZZ
@given(SIZES)
def test_sizes(value):
    size = refused_by_name(lambda: parse_size(value, "max_images_bytes"), "max_images_bytes")
    assert size is None or isinstance(size, int) and 0 <= size <= INT64_MAX


@FUZZ
@given(TIMES)
def test_until(text):
    moment = refused_by_name(lambda: parse_until(text, "images_filters.until", NOW), "images_filters.until")
    if moment is not None:
        assert math.isfinite(moment)
        go_duration(max(NOW - moment, 0))  # what the apply step hands BuildKit


@FUZZ
@given(st.sampled_from(sorted(ALLOWED_KEYS)), st.dictionaries(FILTER_KEYS, VALUES, max_size=4))
def test_filters(category, raw):
    filters = refused_by_name(lambda: Filters(category, raw, NOW), f"{category}_filters")
    if filters is not None:
        assert set(filters.values) <= set(ALLOWED_KEYS[category])
        filters.matches({"a": "b"}, NOW - 3600)


@FUZZ
@given(st.one_of(st.none(), st.dictionaries(st.sampled_from(["references", "labels"]),
                                            st.lists(GRAMMAR_TEXT, max_size=3), max_size=2)),
       st.one_of(st.none(), DURATIONS))
def test_protection(protect, min_age):
    protection = refused_by_name(lambda: Protection(protect, min_age, NOW), ("protect.", "min_age"))
    if protection is not None:
        protection.hold({"a": "b"}, NOW, ["lab/app:1"])


@FUZZ
@given(IMAGE_NAMES)
def test_image_names(name):
    refused_by_name(lambda: check_image_name(name, "name"), "name")


@FUZZ
@given(st.one_of(GRAMMAR_TEXT, st.from_regex(r"[a-z0-9.:/_*?\[\]!-]{1,30}", fullmatch=True)))
def test_reference_globs(pattern):
    refused_by_name(lambda: check_reference_glob(pattern, "protect.references"), "protect.references")


@pytest.mark.parametrize("pattern", [
    "registry.example.com/prod/*", "postgres:*", "*", "lab/*:[0-9]*", "*-dev:*", "localhost:5000/*", "app:1.?",
    "app:[!a]*", "Registry.Example.com/app:*",
])
def test_globs_that_can_match(pattern):
    check_reference_glob(pattern, "protect.references")


@pytest.mark.parametrize("pattern, fragment", [
    ("postgres", "write postgres:* for all of its tags"),
    ("localhost:5000/app", "NAME:TAG"),
    ("docker.io/library/postgres:*", "short names"),
    ("postgres@sha256:*", "not digests"),
    ("postgres:1[6", "never closes"),
    ("Postgres:*", "is not an image reference"),
    ("postgres:{15,16}", "has a tag other than"),
    ("postgres:.*", "has a tag other than"),
    ("", "is not an image reference"),
])
def test_globs_that_never_match(pattern, fragment):
    with pytest.raises(ValueProblem, match=re.escape(f"protect.references: {pattern!r} ")) as error:
        check_reference_glob(pattern, "protect.references")
    assert fragment in str(error.value)
