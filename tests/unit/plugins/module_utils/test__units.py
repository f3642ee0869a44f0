"""The collection's parsers for durations, times and sizes: what they take, and what they refuse by name."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.reclaim.docker.plugins.module_utils._units import (
    ValueProblem,
    go_duration,
    iso_time,
    parse_duration,
    parse_size,
    parse_time,
    parse_until,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize("text, seconds", [
    ("24h", 86400), ("1h30m", 5400), ("720h", 2592000), ("30d", 2592000), ("2w", 1209600), ("90s", 90),
    ("1.5h", 5400), ("500ms", 0.5), ("0", 0), ("1d12h", 129600),
])
def test_durations(text, seconds):
    assert parse_duration(text, "max_age") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["30days", "1 h", "h", "", "ten", "1y", "24"])
def test_bad_durations_name_the_option(text):
    with pytest.raises(ValueProblem, match=r"^max_age: .* is not a duration"):
        parse_duration(text, "max_age")


@pytest.mark.parametrize("text", ["2562048h", "9" * 400 + "h", "-2562048h"])
def test_durations_longer_than_go_takes_are_refused(text):
    with pytest.raises(ValueProblem, match=r"^min_age: .* is longer than a Go duration can be"):
        parse_duration(text, "min_age", allow_negative=True)


def test_negative_durations_only_where_docker_takes_them():
    with pytest.raises(ValueProblem, match="min_age: '-1h' is negative"):
        parse_duration("-1h", "min_age")
    assert parse_until("-1h", "until", NOW) == NOW + 3600


@pytest.mark.parametrize("text, expected", [
    ("24h", NOW - 86400),
    ("1577836800", 1577836800.0),
    ("1577836800.5", 1577836800.5),
    ("2020-01-01T00:00:00Z", 1577836800.0),
    ("2020-01-01T00:00:00+01:00", 1577833200.0),
    # Docker's shorter forms, read alike on every target Python.
    ("2020-01-01T00Z", 1577836800.0),
    ("2020-01-01T00:30-01:00", 1577842200.0),
    ("2020-01-01T00:00:00.5z", 1577836800.5),
])
def test_until(text, expected):
    assert parse_until(text, "images_filters.until", NOW) == expected


def test_until_date_without_zone_is_local_time_as_in_docker():
    assert parse_until("2020-01-01", "until", NOW) == datetime.datetime(2020, 1, 1).timestamp()


@pytest.mark.parametrize("text", ["abc", "30days", "2020-13-01", "yesterday", "2020-W01", "20200101T00", "2020-01-01 00:00",
                                  "2020-01-01T00:00+24:00", "9" * 20, "9" * 400])
def test_bad_until(text):
    with pytest.raises(ValueProblem, match=r"^images_filters.until: "):
        parse_until(text, "images_filters.until", NOW)


@pytest.mark.parametrize("value, size", [
    (1024, 1024), ("1024", 1024), ("500MB", 500 * 1024 ** 2), ("10GiB", 10 * 1024 ** 3), ("1.5G", int(1.5 * 1024 ** 3)),
    ("1k", 1024), ("2 TB", 2 * 1024 ** 4), ("7B", 7), ("0", 0),
])
def test_sizes(value, size):
    assert parse_size(value, "max_images_bytes") == size


@pytest.mark.parametrize("value", ["ten gigs", "1.5.5G", "-1", -1, "5X", True, "", 2 ** 63, "8EiB", "9" * 400])
def test_bad_sizes_name_the_option(value):
    with pytest.raises(ValueProblem, match=r"^max_images_bytes: "):
        parse_size(value, "max_images_bytes")


@pytest.mark.parametrize("text, expected", [
    ("2020-01-01T00:00:00.123456789Z", 1577836800.123456),
    ("2020-01-01T00:00:00Z", 1577836800.0),
    # Go drops trailing zeros: any count of fraction digits, read the same on every Python (3.9 took only 3 or 6).
    ("2020-01-01T00:00:00.1Z", 1577836800.1),
    ("2020-01-01T00:00:00.12345+01:00", 1577833200.12345),
    ("2020-01-01T00:00:00.1234567Z", 1577836800.123456),
    # Unknown: None, which the planners treat as new.
    ("0001-01-01T00:00:00Z", None),
    ("", None),
    ("yesterday", None),
    (1577836800, 1577836800.0),
])
def test_engine_times(text, expected):
    assert parse_time(text) == (None if expected is None else pytest.approx(expected))


def test_go_duration_round_trips():
    assert parse_duration(go_duration(3600.7), "x") == 3600


def test_iso_time_writes_utc_to_the_second_and_reads_back():
    assert iso_time(None) is None
    assert iso_time(1_800_000_000.9) == "2027-01-15T08:00:00Z"
    assert parse_time(iso_time(1_800_000_000)) == 1_800_000_000
