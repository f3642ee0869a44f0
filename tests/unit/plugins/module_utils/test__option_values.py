"""Fuzzing the option parsers: any value either parses to something usable or raises ValueProblem naming the
option, never another exception (which a module would show as a traceback)."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.reclaim.docker.plugins.module_utils._filters import (
    ALLOWED_KEYS,
    Filters,
    Protection,
    check_reference_glob,
)
from ansible_collections.reclaim.docker.plugins.module_utils._model import check_image_name
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

# Near misses are where parsers go wrong: text from the characters the grammars use, forms close to valid ones,
# huge numbers, and any text at all.
GRAMMAR_TEXT = st.text(alphabet="abzAZ09:._-/@*?[]!{}= \n\tµ+sha256", max_size=40)
# Numbers as text, up to far past what a float holds (a float of 310 digits is infinite).
NUMBERS = st.one_of(st.from_regex(r"[0-9]{1,25}(\.[0-9]{0,3})?", fullmatch=True),
                    st.integers(min_value=300, max_value=420).map(lambda digits: "9" * digits))
DURATIONS = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"[-+]?([0-9]{0,3}(\.[0-9]{0,3})?(ns|us|µs|ms|s|m|h|d|w|y|H|)){1,3}", fullmatch=True),
    st.tuples(st.sampled_from(["", "-", "+"]), NUMBERS, st.sampled_from(["h", "d", "w", "ns", "1s", ""])).map("".join),
)
SIZES = st.one_of(
    st.integers(min_value=-2 ** 70, max_value=2 ** 70), st.booleans(), st.text(max_size=12),
    st.tuples(st.sampled_from(["", " ", "-"]), NUMBERS, st.from_regex(r" ?[kKmMgGtTpPxX]?[iI]?[bB]? ?", fullmatch=True))
    .map("".join),
)
TIMES = st.one_of(
    DURATIONS,
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,12})?)?)?)?([zZ]|[+-][0-9]{2}:[0-9]{2})?",
                  fullmatch=True),
    NUMBERS,
)
# What a YAML value can be: filters and protect come from users' YAML as any of these.
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), GRAMMAR_TEXT, TIMES)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(GRAMMAR_TEXT, inner, max_size=3)), max_leaves=6)
IMAGE_NAMES = st.one_of(
    GRAMMAR_TEXT, st.from_regex(r"[a-z0-9.:/_-]{1,30}(:[\w.-]{0,5})?(@sha256:[0-9a-fA-F]{60,66})?", fullmatch=True))
FILTER_KEYS = st.one_of(st.sampled_from(sorted({k for keys in ALLOWED_KEYS.values() for k in keys})), GRAMMAR_TEXT)


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
