"""Fuzzing each module's options through its own main(), with no engine: every run either reaches the point where
it would contact the engine or fails naming one of the options it was given, never with another exception."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
from unittest import mock

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from unit.plugins.module_utils.strategies import DURATIONS, FILTER_KEYS, GRAMMAR_TEXT, IMAGE_NAMES, SIZES, VALUES
from unit.plugins.module_utils.stub_engine import patch_module_args

PLUGINS = "ansible_collections.reclaim.docker.plugins"
FUZZ = settings(max_examples=150, deadline=None)


class ReachedTheEngine(Exception):
    """Raised instead of connecting: the options passed validation."""


def run(module, args):
    """MODULE's main() on ARGS: None when it got as far as connecting, else its failure's message."""
    main = importlib.import_module(f"{PLUGINS}.modules.{module}").main
    out = io.StringIO()
    with patch_module_args(dict(args, docker_host="unix:///nonexistent.sock")), contextlib.redirect_stdout(out), \
            mock.patch(f"{PLUGINS}.module_utils._runner.connect", side_effect=ReachedTheEngine):
        try:
            main()
        except ReachedTheEngine:
            return None
        except SystemExit:
            pass
    result = json.loads(out.getvalue())
    assert result["failed"] is True and "exception" not in result, result
    return result["msg"]


def fails_by_name(module, args):
    # AnsibleModule logs its arguments to syslog first, and fails on a NUL in them without naming the option.
    assume("\\u0000" not in json.dumps(args))
    message = run(module, args)
    assert message is None or any(option in message for option in args), (args, message)


def text_or(strategy):
    """STRATEGY's values (of the option's type, often close to valid), or any YAML value."""
    return st.one_of(strategy, VALUES)


BOOL = st.sampled_from([True, False, True, False, "yes", "maybe", 2])
FILTERS = st.one_of(st.none(), st.dictionaries(FILTER_KEYS, VALUES, max_size=3))
PROTECT = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "references": st.lists(GRAMMAR_TEXT, max_size=2), "labels": st.lists(GRAMMAR_TEXT, max_size=2)}))
PROTECTION = {"protect": PROTECT, "min_age": text_or(DURATIONS)}
# lock_dir is left out: a valid one is made (before the engine is contacted).
LOCKING = {"lock_timeout": st.one_of(st.integers(-3, 3), VALUES)}


@FUZZ
@given(st.fixed_dictionaries({}, optional=dict(
    {kind: BOOL for kind in ("containers", "images", "networks", "volumes", "builder_cache", "builder_cache_all")},
    **{f"{kind}_filters": FILTERS for kind in ("containers", "images", "networks", "volumes", "builder_cache")},
    builder_cache_keep_storage=text_or(SIZES.map(str)), assume_deleted=st.lists(GRAMMAR_TEXT, max_size=2),
    **PROTECTION, **LOCKING)))
def test_prune(args):
    fails_by_name("prune", args)


@FUZZ
@given(st.fixed_dictionaries({}, optional=dict(
    keep_last=st.one_of(st.integers(-3, 5), VALUES), max_age=text_or(DURATIONS), dangling=BOOL,
    high_watermark=st.one_of(st.floats(-10, 110), VALUES), low_watermark=st.one_of(st.floats(-10, 110), VALUES),
    max_images_bytes=text_or(SIZES.map(str)), **PROTECTION, **LOCKING)))
def test_image_retention(args):
    fails_by_name("image_retention", args)


@FUZZ
@given(st.fixed_dictionaries({"name": st.lists(IMAGE_NAMES, max_size=3)}, optional=dict(
    platform=GRAMMAR_TEXT, tag=text_or(GRAMMAR_TEXT), force=BOOL, prune=BOOL, remove_stopped_containers=BOOL,
    debug=BOOL, **LOCKING)))
def test_image_remove(args):
    fails_by_name("image_remove", args)
