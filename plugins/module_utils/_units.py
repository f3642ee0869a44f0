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
        return float(text)
    try:
        moment = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValueProblem(f"{option}: {value!r} is neither a duration (24h, 30d) nor a time (2024-01-31, "
                           "2024-01-31T12:00:00Z, a Unix timestamp).") from None
    return moment.timestamp()


def parse_size(value, option):
    """Bytes in an int or a number with a unit: 500MB, 10GiB, 1.5G (units are powers of 1024, as in Docker)."""
    if isinstance(value, bool):
        raise ValueProblem(f"{option}: {value!r} is not a size.")
    if isinstance(value, int):
        if value < 0:
            raise ValueProblem(f"{option}: {value} is negative.")
        return value
    match = SIZE.match(str(value))
    if not match:
        raise ValueProblem(f"{option}: {value!r} is not a size; write bytes (1073741824) or a number with a unit "
                           "(500MB, 10GiB, 1.5G).")
    return int(float(match.group(1)) * SIZE_FACTORS[match.group(2).upper()])


def parse_time(value):
    """Unix seconds of an engine timestamp (RFC 3339 with nanoseconds, or Unix seconds); None when unknown, which
    callers treat as new: an unknown time never makes an object look old."""
    if isinstance(value, (int, float)):
        return float(value)
    if not value or value.startswith("0001-01-01"):
        return None
    text = value.replace("Z", "+00:00")
    # Go writes 1 to 9 fraction digits; Python before 3.11 takes exactly 3 or 6: make it 6.
    text = re.sub(r"\.(\d+)", lambda match: "." + match.group(1)[:6].ljust(6, "0"), text)
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def go_duration(seconds):
    """SECONDS in the form Go's ParseDuration takes (what BuildKit's filters accept)."""
    return f"{int(seconds)}s"
