"""Records every task result of a playbook run as JSON, for the integration tests to assert on."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: record_results
type: aggregate
short_description: write each task result to the JSON file named by RECLAIM_RECORD_FILE
description: Test support for reclaim.docker's integration tests.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._results = []

    def _record(self, result, status):
        # As a registered variable shows it: ansible-core 2.21 keeps `failed` out of the callback's copy.
        recorded = dict(result._result, failed=status == "failed")
        self._results.append({
            "host": result._host.get_name(),
            "task": result._task.get_name(),
            "status": status,
            "result": recorded,
        })

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["RECLAIM_RECORD_FILE"], "w", encoding="utf-8") as handle:
            json.dump(self._results, handle, default=str)
