"""An argument spec with its constraints as one object: a merge keeps every group's options and constraints, and the
AnsibleModule it creates enforces them all."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from stub_engine import patch_module_args

from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec


def spec_a():
    return ArgumentSpec(dict(a=dict(type="str"), b=dict(type="str")), required_together=[("a", "b")],
                        required_if=[("mode", "strict", ("a",))])


def spec_c():
    return ArgumentSpec(dict(c=dict(type="str"), d=dict(type="str"), mode=dict(type="str", default="loose")),
                        mutually_exclusive=[("c", "d")], required_together=[("c", "mode")])


def test_a_merge_keeps_the_options_and_the_constraints_of_every_group_in_order():
    first, second = spec_a(), spec_c()
    merged = first.merge(second, ArgumentSpec(dict(e=dict(type="int")), mutually_exclusive=[("a", "e")]))
    assert merged is first
    assert list(merged.argument_spec) == ["a", "b", "c", "d", "mode", "e"]
    assert merged.required_together == [("a", "b"), ("c", "mode")]
    assert merged.mutually_exclusive == [("c", "d"), ("a", "e")]
    assert merged.required_if == [("mode", "strict", ("a",))]
    # The group merged in is left as it was: a builder's spec is merged into several jobs' specs.
    assert second.required_together == [("c", "mode")] and set(second.argument_spec) == {"c", "d", "mode"}


def test_a_spec_does_not_share_the_lists_it_was_given():
    together = [("a", "b")]
    options = dict(a=dict(type="str"))
    spec = ArgumentSpec(options, required_together=together)
    spec.merge(spec_c())
    assert together == [("a", "b")] and list(options) == ["a"]


def module_outcome(spec, args, check_mode=False, supports_check_mode=True):
    """(module, None) when AnsibleModule accepts ARGS, else (None, its exit result)."""
    out = io.StringIO()
    with patch_module_args(dict(args, _ansible_check_mode=check_mode)), contextlib.redirect_stdout(out):
        try:
            return spec.create_ansible_module(supports_check_mode=supports_check_mode), None
        except SystemExit:
            return None, json.loads(out.getvalue())


@pytest.mark.parametrize("args, message", [
    ({"a": "1"}, "parameters are required together: a, b"),
    ({"c": "1", "d": "2", "mode": "x"}, "parameters are mutually exclusive: c|d"),
    ({"mode": "strict", "c": "1"}, "mode is strict but all of the following are missing: a"),
])
def test_the_module_enforces_the_constraints_of_every_merged_group(args, message):
    _module, result = module_outcome(spec_a().merge(spec_c()), args)
    assert result["failed"] is True and message in result["msg"], result["msg"]


def test_the_module_takes_what_the_constraints_allow_with_the_merged_defaults():
    module, _result = module_outcome(spec_a().merge(spec_c()), {"a": "1", "b": "2", "c": "3"}, check_mode=True)
    assert module.params == dict(a="1", b="2", c="3", d=None, mode="loose") and module.check_mode is True


def test_a_module_without_check_mode_support_skips_a_check_run():
    _module, result = module_outcome(spec_a(), {}, check_mode=True, supports_check_mode=False)
    assert result["skipped"] is True and "check mode" in result["msg"], result
