# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The collection's one parser for durations, points in time and sizes. Pure."""

from __future__ import annotations

import datetime
import re

# Go's time.ParseDuration units, plus days and weeks (which Go lacks and operators write).
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w))+$")
DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w)")
UNIX_TIME = re.compile(r"^\d+(\.\d+)?$")
# As Docker's units.RAMInBytes and Ansible's human_to_bytes: every unit is a power of 1024.
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:I?B)?\s*$", re.IGNORECASE)
SIZE_FACTORS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4, "P": 1024 ** 5}
# Docker's sizes and Unix times are int64, Go's durations int64 nanoseconds (about 292 years): a value past them is
# refused there (BuildKit gets `until` as a duration), and here.
INT64_MAX = 2 ** 63 - 1
MAX_DURATION = INT64_MAX / 1e9
# The times Docker's `until` takes (timetypes.GetTimestamp): a date, then an hour, minutes, seconds and a fraction as
# far as given, with a zone (Z, +hh:mm) or without (local time). Engine times are its RFC 3339 case.
TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?)?([zZ]|[+-]\d{2}:\d{2})?")


class ValueProblem(ValueError):
    """A bad option value; the message names the option and says what is accepted."""


def parse_duration(value, option, allow_negative=False):
    """Seconds in a Go duration (24h, 1h30m, 720h) or days and weeks (30d, 2w)."""
    text = str(value).strip()
    if text == "0":
        return 0.0
    if not DURATION.match(text):
        raise ValueProblem(f"{option}: {value!r} is not a duration; write it as Go does (24h, 1h30m, 720h) or in days "
                           "and weeks (30d, 2w).")
    seconds = sum(float(number) * DURATION_UNITS[unit] for number, unit in DURATION_PART.findall(text))
    if seconds > MAX_DURATION:
        raise ValueProblem(f"{option}: {value!r} is longer than a Go duration can be (about 292 years).")
    if text.startswith("-"):
        if not allow_negative:
            raise ValueProblem(f"{option}: {value!r} is negative.")
        seconds = -seconds
    return seconds


def parse_until(value, option, now):
    """The point in time (Unix seconds) an `until` filter names, as Docker reads it: a duration before NOW,
    a Unix timestamp, an RFC 3339 time, or a date; a time without a zone is local time, as in Docker."""
    text = str(value).strip()
    if DURATION.match(text):
        return now - parse_duration(text, option, allow_negative=True)
    if UNIX_TIME.match(text):
        if float(text) > INT64_MAX:
            raise ValueProblem(f"{option}: {value!r} is past the Unix times Docker takes (64-bit seconds).")
        return float(text)
    moment = _timestamp(text)
    if moment is None:
        raise ValueProblem(f"{option}: {value!r} is neither a duration (24h, 30d) nor a time (2024-01-31, "
                           "2024-01-31T12:00:00Z, a Unix timestamp).")
    return moment


def parse_size(value, option):
    """Bytes in an int or a number with a unit: 500MB, 10GiB, 1.5G (units are powers of 1024, as in Docker)."""
    if isinstance(value, bool):
        raise ValueProblem(f"{option}: {value!r} is not a size.")
    if isinstance(value, int):
        if value < 0:
            raise ValueProblem(f"{option}: {value} is negative.")
        size = value
    else:
        match = SIZE.match(str(value))
        if not match:
            raise ValueProblem(f"{option}: {value!r} is not a size; write bytes (1073741824) or a number with a unit "
                               "(500MB, 10GiB, 1.5G).")
        size = float(match.group(1)) * SIZE_FACTORS[match.group(2).upper()]
    if size > INT64_MAX:
        raise ValueProblem(f"{option}: {value!r} is more than Docker's sizes hold (8 EiB).")
    return int(size)


def parse_time(value):
    """Unix seconds of an engine timestamp (RFC 3339 with nanoseconds, or Unix seconds); None when unknown, which
    callers treat as new: an unknown time never makes an object look old."""
    if isinstance(value, (int, float)):
        return float(value)
    if not value or value.startswith("0001-01-01"):
        return None
    return _timestamp(value)


def _timestamp(text):
    """Unix seconds of TEXT in a TIMESTAMP form, or None. Read here, not by fromisoformat, so that every target
    Python takes the same forms: 3.9's takes only 3 or 6 fraction digits (Go writes 1 to 9), 3.11's takes forms
    Docker does not (2024-W05, 20240131)."""
    match = TIMESTAMP.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        if zone is None:
            tzinfo = None
        elif zone in "zZ":
            tzinfo = datetime.timezone.utc
        else:
            offset = datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            tzinfo = datetime.timezone(-offset if zone[0] == "-" else offset)
        return datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                                 int((fraction or "")[:6].ljust(6, "0")), tzinfo=tzinfo).timestamp()
    except (ValueError, OverflowError, OSError):  # no such date or zone, or out of the platform's range
        return None


def go_duration(seconds):
    """SECONDS in the form Go's ParseDuration takes (what BuildKit's filters accept)."""
    return f"{int(seconds)}s"


def iso_time(seconds):
    """SECONDS (Unix time) as the results write a time, in UTC to the second (2026-12-06T04:03:00Z); None stays None."""
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
