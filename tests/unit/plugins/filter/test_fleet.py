"""The fleet report's aggregation, ordering and totals (reclaim.docker.fleet_summary, fleet_view, fleet_artifacts and
binary_size), as plain functions and through their filter plugins."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.reclaim.docker.plugins.filter.binary_size import FilterModule as SizeFilters
from ansible_collections.reclaim.docker.plugins.filter.fleet_artifacts import FilterModule as ArtifactFilters
from ansible_collections.reclaim.docker.plugins.filter.fleet_summary import FilterModule as SummaryFilters
from ansible_collections.reclaim.docker.plugins.filter.fleet_view import FilterModule as ViewFilters
from ansible_collections.reclaim.docker.plugins.plugin_utils._fleet import (
    CHART_TOP,
    FLEET_LOGS,
    fleet_artifacts,
    fleet_summary,
    fleet_view,
)

SETTINGS = settings(max_examples=200, deadline=None, derandomize=bool(os.environ.get("CI")))
fleet_summary_filter = SummaryFilters().filters()["fleet_summary"]
fleet_view_filter = ViewFilters().filters()["fleet_view"]
fleet_artifacts_filter = ArtifactFilters().filters()["fleet_artifacts"]
binary_size = SizeFilters().filters()["binary_size"]
NOW = "2026-12-06T00:00:00Z"


class HostVars(dict):
    """hostvars as a filter sees it: a mapping of hosts to their variables."""


def walk(leaked=0, logs=(), exact=True):
    """A prune's root_dir: LEAKED bytes leaked, LOGS the sizes of its container logs."""
    return {"path": "/var/lib/docker", "bytes": 10**9, "unexplained_bytes": 0, "exact": exact,
            "categories": {"images": 10**8, "leaked": leaked, "container_logs": sum(logs)},
            "container_logs": [{"container": f"{i:064x}", "name": f"c{i}", "driver": "json-file",
                                "path": f"/var/lib/docker/containers/{i}/{i}-json.log", "bytes": size}
                               for i, size in enumerate(logs)]}


def result(status="ok", freed=0, mode="cleanup", before=0, approval=None, **extra):
    return dict({"mode": mode, "status": status, "profile": "standard", "reclaimed_bytes": freed,
                 "removed": {"images": ["sha256:x"] * (1 if freed else 0), "containers": []},
                 "usage_before": {"images_bytes": before, "filesystem": None},
                 "usage_after": {"images_bytes": before - freed, "filesystem": None},
                 "approval": approval, "error": None if status == "ok" else "boom"}, **extra)


def test_the_report_reads_every_host_and_adds_up():
    hostvars = HostVars(web1={"cleanup_result": result(freed=1536)}, db2={"cleanup_result": result("failed")},
                        idle3={"cleanup_result": result()}, ghost={"other": 1})
    report = fleet_summary_filter(["web1", "db2", "idle3", "ghost", "web1", "not-in-inventory"], hostvars=hostvars,
                                  generated_at=NOW)
    assert report["schema"] == "reclaim.docker/fleet-report/v1" and report["mode"] == "cleanup"
    assert report["generated_at"] == NOW
    assert list(report["hosts"]) == ["web1", "db2", "idle3", "ghost", "not-in-inventory"]
    assert report["totals"] == {"hosts": 5, "ok": 2, "failed": 1, "unreachable": 2, "reclaimed_bytes": 1536,
                                "root_dir_hosts": 0, "leaked_bytes": None, "container_logs_bytes": None}
    assert "mode" not in report["hosts"]["web1"]
    assert report["hosts"]["db2"]["error"] == "boom" and report["hosts"]["ghost"]["error"] == "unreachable: no result"
    assert json.loads(json.dumps(report)) == report


@pytest.mark.parametrize("modes, check_mode, expected", [
    (["audit", "cleanup"], False, "cleanup"), (["audit", None], False, "audit"), ([None], True, "audit"),
    ([None], False, "cleanup"), ([], True, "audit"),
])
def test_the_report_mode(modes, check_mode, expected):
    results = [(f"h{i}", result(mode=mode) if mode else None) for i, mode in enumerate(modes)]
    assert fleet_summary(results, NOW, check_mode)["mode"] == expected


def test_the_view_orders_the_table_problems_first_then_by_bytes_and_keeps_the_hosts_order_elsewhere():
    results = [("a", result(freed=10)), ("b", result("failed")), ("c", None), ("d", result(freed=30)),
               ("e", result(freed=10)), ("f", result("failed", freed=5))]
    report = fleet_summary(results, NOW)
    view = fleet_view_filter(report, hosts=["a", "b", "c", "d", "e", "f", "a"])
    assert [r["name"] for r in view["rows"]] == ["a", "b", "c", "d", "e", "f"]
    assert [r["name"] for r in view["table"]] == ["f", "b", "c", "d", "a", "e"]  # ties keep the hosts' order
    assert view["failed"] == ["b", "f"] and view["unreachable"] == ["c"]
    assert [r["name"] for r in view["freed"]["top"]] == ["d", "a", "e", "f", "b", "c"]
    assert view["freed"]["rest"] == 0 and view["freed"]["scale"] == 30 and view["chart_n"] == 6
    row = view["rows"][0]
    assert (row["removed_count"], row["removed_text"], row["images"], row["containers"]) == (1, "1 image", 1, 0)
    assert (row["freed_text"], row["disk_before"], row["status"], row["error"]) == ("10 B", "n/a", "ok", None)


def test_the_rows_say_the_disk_as_the_html_shows_it():
    fs = {"path": "/d", "total": 107374182400, "used": 1, "free": 1, "used_percent": 50.0}
    entry = result(freed=1610612736, before=4294967296)
    entry["usage_before"]["filesystem"] = fs
    row = fleet_view(fleet_summary([("a", entry)], NOW), ["a"])["rows"][0]
    assert (row["disk_before"], row["disk_after"]) == ("50.0% of 100.00 GiB", "n/a")
    assert (row["freed_text"], row["before_text"], row["after_text"]) == ("1.50 GiB", "4.00 GiB", "2.50 GiB")


def test_the_charts_draw_the_largest_hosts_and_sum_the_others():
    results = [(f"h{i:02d}", result(freed=i, before=100 + i)) for i in range(30)]
    view = fleet_view(fleet_summary(results, NOW), [name for name, _r in results])
    assert view["chart_n"] == CHART_TOP
    assert [r["name"] for r in view["freed"]["top"]] == [f"h{i:02d}" for i in range(29, 9, -1)]
    assert view["freed"]["rest"] == 10 and view["freed"]["rest_bytes"] == sum(range(10))
    assert view["usage"]["rest_before"] == sum(100 + i for i in range(10))
    assert view["usage"]["rest_after"] == sum(100 for _i in range(10)) and view["usage"]["scale"] == 129
    # 21 hosts still get a bar each: an "other hosts" bar for one host would only hide it.
    assert fleet_view(fleet_summary(results[:21], NOW), [n for n, _r in results[:21]])["chart_n"] == 21


def test_hosts_with_an_approved_plan():
    counts = {k: {"count": 1, "bytes": 1} for k in ("approved", "applied", "not_approved", "skipped")}
    report = fleet_summary([("a", result()), ("b", result(approval=counts))], NOW)
    assert [r["name"] for r in fleet_view(report, ["a", "b"])["approved"]] == ["b"]


@pytest.mark.parametrize("job_id, key", [(None, "reclaim_fleet_totals_local"), (42, "reclaim_fleet_totals_42"),
                                         ("a-b", "reclaim_fleet_totals_a_b"), ("", "reclaim_fleet_totals_local")])
def test_the_artifacts_keep_one_totals_key_per_slice(job_id, key):
    plan = {"engine_id": "E", "objects": []}
    report = fleet_summary([("a", result(mode="audit", plan=plan)), ("b", None)], NOW)
    artifacts = fleet_artifacts_filter(report, hosts=["a", "b"], report_dir="/r", job_id=job_id)
    assert artifacts == {"reclaim_audit_plans": {"a": plan}, "reclaim_fleet_mode": "audit",
                         "reclaim_fleet_report_dir": "/r",
                         "reclaim_fleet_hosts": {"a": {"status": "ok", "reclaimed_bytes": 0},
                                                 "b": {"status": "unreachable", "reclaimed_bytes": 0}},
                         key: report["totals"]}
    cleanup = fleet_summary([("a", result())], NOW)
    assert "reclaim_audit_plans" not in fleet_artifacts_filter(cleanup, hosts=["a"], report_dir="/r")


def test_the_root_dir_adds_leaked_and_log_bytes_per_host_and_in_the_totals():
    report = fleet_summary([("a", result(root_dir=walk(leaked=500, logs=(300, 100)))), ("b", result()),
                            ("c", result(root_dir=walk(leaked=7, logs=(1_000,), exact=False))), ("d", None),
                            ("e", result("failed"))], NOW)
    assert report["totals"]["root_dir_hosts"] == 2
    assert (report["totals"]["leaked_bytes"], report["totals"]["container_logs_bytes"]) == (507, 1_400)
    assert report["hosts"]["a"]["root_dir"]["categories"]["leaked"] == 500 and report["hosts"]["b"]["root_dir"] is None
    view = fleet_view_filter(report, hosts=["a", "b", "c", "d", "e"])
    rows = {r["name"]: r for r in view["rows"]}
    assert (rows["a"]["leaked"], rows["a"]["logs"], rows["a"]["leaked_text"], rows["a"]["logs_text"]) == \
        (500, 400, "500 B", "400 B")
    assert (rows["b"]["leaked"], rows["b"]["logs_text"]) == (None, "-")
    assert rows["c"]["leaked_text"] == "7 B (inexact)"
    assert view["root_dir"] is True
    assert [(log["host"], log["name"], log["bytes_text"]) for log in view["logs"]] == [
        ("c", "c0", "1000 B"), ("a", "c0", "300 B"), ("a", "c1", "100 B")]
    artifacts = fleet_artifacts(report, ["a", "b"], "/r")["reclaim_fleet_hosts"]
    assert artifacts == {"a": {"status": "ok", "reclaimed_bytes": 0, "leaked_bytes": 500, "container_logs_bytes": 400},
                         "b": {"status": "ok", "reclaimed_bytes": 0}}
    assert fleet_view(fleet_summary([("a", result())], NOW), ["a"])["root_dir"] is False


def test_the_fleet_lists_its_largest_logs():
    results = [(f"h{i}", result(root_dir=walk(logs=(i * 10, i)))) for i in range(20)]
    logs = fleet_view(fleet_summary(results, NOW), [n for n, _r in results])["logs"]
    assert len(logs) == FLEET_LOGS and logs[0]["host"] == "h19" and logs[0]["bytes"] == 190
    assert [log["bytes"] for log in logs] == sorted((log["bytes"] for log in logs), reverse=True)


def test_the_metrics_have_bytes_only_where_a_host_has_them():
    report = fleet_summary([("a", result(freed=10, root_dir=walk(leaked=5, logs=(3,)))), ("b", result("failed")),
                            ("c", None), ("d", result(freed=0))], "2026-12-06T00:00:01Z")
    metrics = fleet_view(report, ["a", "b", "c", "d"])["metrics"]
    assert metrics["timestamp"] == 1796515201  # date -d 2026-12-06T00:00:01Z +%s
    assert [(s["host"], s["status"]) for s in metrics["status"] if s["value"]] == \
        [("a", "ok"), ("b", "failed"), ("c", "unreachable"), ("d", "ok")]
    assert len(metrics["status"]) == 12
    assert metrics["status"][0]["labels"] == 'host="a",mode="cleanup",status="ok"'
    assert [(s["labels"], s["value"]) for s in metrics["reclaimed"]] == [
        ('host="a",mode="cleanup"', 10), ('host="d",mode="cleanup"', 0)]
    assert [(s["host"], s["value"]) for s in metrics["leaked"]] == [("a", 5)]
    assert [(s["host"], s["value"]) for s in metrics["logs"]] == [("a", 3)]
    assert [(s["labels"], s["value"]) for s in metrics["hosts"]] == [
        ('mode="cleanup",status="ok"', 2), ('mode="cleanup",status="failed"', 1),
        ('mode="cleanup",status="unreachable"', 1)]
    assert metrics["mode"] == 'mode="cleanup"'

    assert metrics["fleet"] == {"reclaimed": 10, "leaked": 5, "logs": 3}
    unwalked = fleet_view(fleet_summary([("a", result())], "not a time"), ["a"])["metrics"]
    assert unwalked["fleet"] == {"reclaimed": 0, "leaked": None, "logs": None} and unwalked["timestamp"] is None


def test_label_values_are_escaped_as_the_text_format_says():
    name = 'evil"host\\with\nnewline'
    metrics = fleet_view(fleet_summary([(name, result())], NOW), [name])["metrics"]
    assert metrics["reclaimed"][0]["labels"] == 'host="evil\\"host\\\\with\\nnewline",mode="cleanup"'


def test_the_artifacts_say_where_the_report_was_delivered():
    report = fleet_summary([("a", result())], NOW)
    artifacts = fleet_artifacts_filter(report, hosts=["a"], report_dir="/r", copied_to="https://r.example/x/")
    assert artifacts["reclaim_fleet_report_copied_to"] == "https://r.example/x/"
    assert "reclaim_fleet_report_copied_to" not in fleet_artifacts_filter(report, hosts=["a"], report_dir="/r")


@pytest.mark.parametrize("value, text", [
    (0, "0 B"), (512, "512 B"), (1023, "1023 B"), (1024, "1.00 KiB"), (1536, "1.50 KiB"), (8906643, "8.49 MiB"),
    (1610612736, "1.50 GiB"), (2 ** 40, "1.00 TiB"), (-2048, "-2.00 KiB"), (None, "0 B"), ("4096", "4.00 KiB"),
])
def test_binary_size(value, text):
    assert binary_size(value) == text


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["ok", "failed", None]), st.integers(0, 10**12),
                          st.none() | st.tuples(st.integers(0, 10**12), st.lists(st.integers(0, 10**10), max_size=8))),
                max_size=40))
def test_totals_and_orders_hold_for_any_fleet(hosts):
    results = [(f"h{i}", None if status is None else
                result(status, freed=freed, root_dir=walk(*walked) if walked and status == "ok" else None))
               for i, (status, freed, walked) in enumerate(hosts)]
    report = fleet_summary(results, NOW)
    totals = report["totals"]
    assert totals["hosts"] == totals["ok"] + totals["failed"] + totals["unreachable"] == len(report["hosts"])
    assert totals["reclaimed_bytes"] == sum(h["reclaimed_bytes"] for h in report["hosts"].values())
    view = fleet_view(report, [name for name, _r in results])
    rank = {"failed": 0, "unreachable": 1, "ok": 2}
    keys = [(rank[r["status"]], -r["freed"]) for r in view["table"]]
    assert keys == sorted(keys) and sorted(r["name"] for r in view["table"]) == sorted(report["hosts"])
    assert len(view["freed"]["top"]) + view["freed"]["rest"] == len(results)
    assert sum(r["freed"] for r in view["freed"]["top"]) + view["freed"]["rest_bytes"] == totals["reclaimed_bytes"]
    assert set(view["failed"]) | set(view["unreachable"]) == {n for n, h in report["hosts"].items() if h["status"] != "ok"}
    # The metrics: each host once per status, one of them 1; bytes only for a host that has them; the fleet's
    # series are the sums of the hosts'.
    metrics = view["metrics"]
    assert len(metrics["status"]) == 3 * len(results)
    assert {s["host"]: s["status"] for s in metrics["status"] if s["value"] == 1} == \
        {n: h["status"] for n, h in report["hosts"].items()}
    assert {s["host"] for s in metrics["reclaimed"]} == {n for n, h in report["hosts"].items() if h["status"] == "ok"}
    walked = {n for n, h in report["hosts"].items() if h["root_dir"] is not None}
    assert {s["host"] for s in metrics["leaked"]} == {s["host"] for s in metrics["logs"]} == walked
    assert metrics["fleet"]["reclaimed"] == sum(s["value"] for s in metrics["reclaimed"])
    if walked:
        assert metrics["fleet"]["leaked"] == sum(s["value"] for s in metrics["leaked"]) == totals["leaked_bytes"]
        assert metrics["fleet"]["logs"] == sum(s["value"] for s in metrics["logs"]) == totals["container_logs_bytes"]
    else:
        assert metrics["fleet"]["leaked"] is None and totals["container_logs_bytes"] is None
    assert totals["root_dir_hosts"] == len(walked)
    assert [log["bytes"] for log in view["logs"]] == sorted(
        (b for h in report["hosts"].values() if h["root_dir"] for b in
         (log["bytes"] for log in h["root_dir"]["largest_container_logs"])), reverse=True)[:FLEET_LOGS]
