# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin utility is PRIVATE to the collection: it can change at any time.

"""The controller's arithmetic for the cleanup and fleet_report roles, behind their filter plugins: the steps' module
arguments, the host's `cleanup_result` (its one definition) and the fleet report (reclaim.docker/fleet-report/v1).
Plain functions of plain data, no I/O."""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping

from ansible_collections.reclaim.docker.plugins.module_utils._disk_usage import predicted_usage

# What each profile prunes (reclaim.docker.prune options), and whether its retention step runs.
PROFILES = {
    "conservative": dict(containers=False, containers_filters={}, images_filters={"dangling": True}, networks=False,
                         builder_cache_all=False, builder_cache_filters={"until": "168h"}, retention=True),
    # Stopped for over a day, by when each stopped (a container that never ran counts from its creation); Docker's
    # own `until` would compare the creation time instead.
    "standard": dict(containers=True, containers_filters={"stopped_for": "24h"}, images_filters={"dangling": True},
                     networks=True, builder_cache_all=False, builder_cache_filters={}, retention=True),
    "aggressive": dict(containers=True, containers_filters={}, images_filters={"dangling": False}, networks=True,
                       builder_cache_all=True, builder_cache_filters={}, retention=False),
}
STEPS = ("retention", "prune")
MODES = ("audit", "cleanup")
STATUS_RANK = {"failed": 0, "unreachable": 1, "ok": 2}
SCHEMA = "reclaim.docker/fleet-report/v1"
# The HTML charts draw the largest hosts one bar each and sum the others into one bar.
CHART_TOP = 20
# A host's result names its largest container logs; the report files list the fleet's largest.
HOST_LOGS = 5
FLEET_LOGS = 20
GENERATED_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class CleanupProblem(ValueError):
    """A setting of the cleanup role that cannot mean what was typed; the message names it."""


def _mapping(value) -> dict:
    return dict(value) if isinstance(value, Mapping) else {}


def _list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def plain(value):
    """VALUE as plain JSON data: dicts, lists, str, int, float, bool and None of their base types. What a filter returns
    here is built from Ansible's variables, whose strings and numbers (ansible-core 2.19 and later) carry tags (where
    each came from, whether it may be templated) that every later task would carry along and check again: a fleet
    report of 500 hosts took twice the CPU to write with them."""
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _unique(items) -> list:
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


# ---------------------------------------------------------------- the cleanup role's steps

def approvals(approved_plan) -> dict:
    """Each step's `approved` and `approved_engine_id` module arguments from one host's approved plan ({} for none:
    everything the steps select may go). An object without a step is approved for both steps; a plan without an
    engine ID leaves approved_engine_id out."""
    plan = _mapping(approved_plan)
    if not plan:
        return {step: {} for step in STEPS}
    objects = _list(plan.get("objects"))
    engine = {"approved_engine_id": plan["engine_id"]} if plan.get("engine_id") else {}
    return {step: dict(approved=[o for o in objects if "step" not in o]
                       + [o for o in objects if "step" in o and o["step"] == step], **engine)
            for step in STEPS}


def cleanup_steps(profile, retention=None, protect=None, min_age="1h", prune_volumes=False,
                  prune_named_volumes=False, approved_plan=None) -> dict:
    """The cleanup role's settings as module arguments: {retention: image_retention's (null when the step does not
    run), prune: prune's, approved_plan: the plan as given ({} for none)}.
    Refuses named volumes without volumes."""
    if profile not in PROFILES:
        raise CleanupProblem(f"cleanup_profile: {profile!r} is not one of {', '.join(PROFILES)}.")
    if prune_named_volumes and not prune_volumes:
        raise CleanupProblem("cleanup_prune_named_volumes needs cleanup_prune_volumes; volumes are never pruned by "
                             "default.")
    settings = PROFILES[profile]
    plan = _mapping(approved_plan)
    approval = approvals(plan)
    protect = _mapping(protect)
    protected = {"references": _list(protect.get("references")), "labels": _list(protect.get("labels"))}
    retention = _mapping(retention)
    retention_args = None
    if retention and settings["retention"]:
        # The policy's own protect adds to cleanup_protect; the prune takes the dangling images.
        own = _mapping(retention.get("protect"))
        retention_args = dict(retention, dangling=False, min_age=min_age, protect={
            "references": _unique(protected["references"] + _list(own.get("references"))),
            "labels": _unique(protected["labels"] + _list(own.get("labels")))}, **approval["retention"])
    prune_args = dict(
        containers=settings["containers"], containers_filters=settings["containers_filters"],
        images=True, images_filters=settings["images_filters"], networks=settings["networks"],
        builder_cache=True, builder_cache_all=settings["builder_cache_all"],
        builder_cache_filters=settings["builder_cache_filters"],
        volumes=bool(prune_volumes), protect=protected, min_age=min_age, usage=True,
        **approval["prune"])
    if prune_named_volumes:
        prune_args["volumes_filters"] = {"all": True}
    return plain({"retention": retention_args, "prune": prune_args, "approved_plan": plan})


# ---------------------------------------------------------------- one host's cleanup_result

NO_USAGE = {"images_bytes": 0, "filesystem": None}


def _approval(parts: dict, plan, skipped: list, not_approved: list):
    """With an approved plan: how much of it was approved, applied (planned and not skipped by the engine; the bytes
    are what took effect), not approved (what the run would have removed besides) and skipped (approved, kept now).
    Without one, the approval a result already has (the report normalises a result again), else null."""
    approved_plan = parts.get("approved_plan")
    if not isinstance(approved_plan, Mapping) or not approved_plan:
        return parts["approval"] if isinstance(parts.get("approval"), Mapping) else None

    def counted(items):
        return {"count": len(items), "bytes": sum(_int(i.get("bytes")) for i in items)}

    approved_items = _list(approved_plan.get("objects"))
    skipped_ids = {s.get("id") for s in skipped if isinstance(s, Mapping)}
    applied = [o for o in _list((plan or {}).get("objects")) if o.get("id") not in skipped_ids]
    kept = [o for o in approved_items if "id" in o and o["id"] in skipped_ids]
    return {"approved": counted(approved_items),
            "applied": {"count": len(applied), "bytes": _int(parts.get("reclaimed_bytes"))},
            "not_approved": counted(not_approved),
            "skipped": counted(kept)}


def _container_log(log) -> dict:
    return {"container": log.get("container"), "name": log.get("name"), "driver": log.get("driver"),
            "path": log.get("path"), "bytes": _int(log.get("bytes"))}


def root_dir_summary(root_dir):
    """What a result keeps of the walk of Docker's root dir (disk_usage_info's root_dir): its path,
    bytes, categories (leaked and container_logs among them), unexplained bytes, the HOST_LOGS largest container logs
    (largest_container_logs) and whether it is exact; null without a walk. A summary gives itself back."""
    if not isinstance(root_dir, Mapping):
        return None
    logs = root_dir["largest_container_logs"] if "largest_container_logs" in root_dir \
        else root_dir.get("container_logs")
    logs = sorted((_container_log(log) for log in _list(logs) if isinstance(log, Mapping)), key=lambda log: -log["bytes"])
    return {"path": root_dir.get("path"), "bytes": _int(root_dir.get("bytes")),
            "categories": {str(name): _int(value) for name, value in _mapping(root_dir.get("categories")).items()},
            "unexplained_bytes": _int(root_dir.get("unexplained_bytes")), "largest_container_logs": logs[:HOST_LOGS],
            "exact": bool(root_dir.get("exact")), "inexact_reason": root_dir.get("inexact_reason") or None}


def normalise(parts) -> dict:
    """The one definition of `cleanup_result` (README.md): every key, its type and its default, from PARTS, a
    mapping with any of its keys (a missing or null one takes its default), or None for a host that set none (it
    could not be reached). Only strings, numbers, booleans, null, lists and dicts."""
    reported = isinstance(parts, Mapping)
    p = dict(parts) if reported else {}
    removed = _mapping(p.get("removed"))
    if not reported:
        status, error = "unreachable", "unreachable: no result"
    else:
        status = "ok" if p.get("status") == "ok" else "failed"
        error = p.get("error") or None
        if status == "failed" and not error:
            error = "failed: no error message"
    delta = p.get("filesystem_delta_bytes")
    skipped = _list(p.get("skipped"))
    not_approved = _list(p.get("not_approved"))
    plan = p["plan"] if isinstance(p.get("plan"), Mapping) else None
    return plain({
        "mode": p["mode"] if p.get("mode") in MODES else None,
        "status": status,
        "profile": p.get("profile"),
        "reclaimed_bytes": _int(p.get("reclaimed_bytes")),
        "removed": {
            "containers": _list(removed.get("containers")),
            "images": _list(removed.get("images")),
            "untagged": _list(removed.get("untagged")),
            "networks": _list(removed.get("networks")),
            "volumes": _list(removed.get("volumes")),
            "build_cache_records": _int(removed.get("build_cache_records")),
        },
        "usage_before": p.get("usage_before") or dict(NO_USAGE),
        "usage_after": p.get("usage_after") or dict(NO_USAGE),
        # ansible-core 2.17 templates a null as text: an empty value is no delta, not 0 bytes.
        "filesystem_delta_bytes": None if delta in (None, "") else _int(delta),
        "skipped": skipped,
        "engine_id": p.get("engine_id"),
        "plan": plan,
        "not_approved": not_approved,
        "approval": _approval(p, plan, skipped, not_approved),
        "root_dir": root_dir_summary(p.get("root_dir")),
        "error": error,
    })


def _ran(result) -> dict:
    """A registered step result that ran to its end; {} for a step skipped, failed or never run."""
    result = _mapping(result)
    return {} if result.get("skipped") or result.get("failed") or result.get("unreachable") else result


def _tagged(objects, step) -> list:
    return [dict(o, step=step) for o in _list(objects)]


def cleanup_result(steps, profile=None, approved_plan=None, failed=None, mode=None) -> dict:
    """One host's `cleanup_result` from STEPS, the registered results of its steps ({root_dir, retention, prune};
    root_dir is disk_usage_info's, run with root_dir: true before the other steps act).

    A run that finished: the prune's result says whether it was an audit (check mode) and holds the usage it read;
    an audit predicts the usage after from the usage before and the bytes both steps would free (the prune alone
    never saw the retention step's bytes), a cleanup reads it after its last step.
    A run that failed (FAILED: the failed task's result, MODE: audit or cleanup): the usage read before the
    failure, from whichever step read it, and the error."""
    steps = _mapping(steps)
    retention, prune = _ran(steps.get("retention")), _ran(steps.get("prune"))
    if failed is not None:
        failure = _mapping(failed)
        usage = retention.get("usage_before") or _mapping(steps.get("retention")).get("usage_before") \
            or failure.get("usage_before")
        return normalise({"mode": mode, "status": "failed", "profile": profile, "usage_before": usage,
                          "usage_after": usage, "approved_plan": approved_plan, "error": failure.get("msg")})
    audit = bool(prune.get("check_mode"))
    reclaimed = _int(retention.get("reclaimed_bytes")) + _int(prune.get("reclaimed_bytes"))
    image_bytes = _int(retention.get("reclaimed_bytes")) + _int(prune.get("images_space_reclaimed"))
    usage_before = retention.get("usage_before") or prune.get("usage_before")
    if audit:
        usage_after = predicted_usage(usage_before, image_bytes, reclaimed) if usage_before else None
    else:
        usage_after = prune.get("usage_after")
    fs_before = (usage_before or {}).get("filesystem")
    fs_after = (usage_after or {}).get("filesystem")
    engine_id = _mapping(prune.get("plan")).get("engine_id")
    return normalise({
        "mode": "audit" if audit else "cleanup",
        "status": "ok",
        "profile": profile,
        "reclaimed_bytes": reclaimed,
        "removed": {
            "containers": prune.get("containers"),
            "images": _list(retention.get("deleted")) + _list(prune.get("images")),
            "untagged": _list(retention.get("untagged")) + _list(prune.get("untagged")),
            "networks": prune.get("networks"),
            "volumes": prune.get("volumes"),
            "build_cache_records": _mapping(prune.get("builder_cache_prediction")).get("records") if audit
            else len(_list(prune.get("builder_cache_caches_deleted"))),
        },
        "usage_before": usage_before,
        "usage_after": usage_after,
        "filesystem_delta_bytes": None if audit or not fs_before or not fs_after
        else _int(fs_before.get("used")) - _int(fs_after.get("used")),
        "skipped": _list(retention.get("skipped_items")) + _list(prune.get("skipped_items")),
        "engine_id": engine_id,
        "plan": {"engine_id": engine_id,
                 "objects": _tagged(_mapping(retention.get("plan")).get("objects"), "retention")
                 + _tagged(_mapping(prune.get("plan")).get("objects"), "prune")},
        "not_approved": _tagged(retention.get("not_approved"), "retention") + _tagged(prune.get("not_approved"), "prune"),
        "approved_plan": approved_plan,
        "root_dir": _ran(steps.get("root_dir")).get("root_dir"),
    })


# ---------------------------------------------------------------- the fleet report

def fleet_summary(results, generated_at, check_mode=False) -> dict:
    """The fleet report (schema reclaim.docker/fleet-report/v1) from RESULTS, [(host, its cleanup_result or None)] in
    the order to report them (a host listed twice counts once). Each host's entry is its result normalised, less
    `mode`, which the report holds once: cleanup if any host ran a cleanup, else audit if any host ran an audit or
    CHECK_MODE, else cleanup."""
    hosts, modes = {}, set()
    for host, result in results:
        if host in hosts:
            continue
        entry = normalise(result)
        mode = entry.pop("mode")
        if mode:
            modes.add(mode)
        hosts[host] = entry
    if "cleanup" in modes:
        mode = "cleanup"
    elif "audit" in modes or check_mode:
        mode = "audit"
    else:
        mode = "cleanup"
    statuses = [h["status"] for h in hosts.values()]
    walked = [h["root_dir"] for h in hosts.values() if h["root_dir"] is not None]
    return plain({
        "schema": SCHEMA,
        "mode": mode,
        "generated_at": generated_at,
        "totals": {"hosts": len(hosts), "ok": statuses.count("ok"), "failed": statuses.count("failed"),
                   "unreachable": statuses.count("unreachable"),
                   "reclaimed_bytes": sum(h["reclaimed_bytes"] for h in hosts.values()),
                   # Only hosts whose root dir was walked count; none walked is no figure, not 0.
                   "root_dir_hosts": len(walked),
                   "leaked_bytes": _category_sum(walked, "leaked"),
                   "container_logs_bytes": _category_sum(walked, "container_logs")},
        "hosts": hosts,
    })


def _category_sum(walked, category):
    return sum(root_dir["categories"].get(category, 0) for root_dir in walked) if walked else None


def _disk_text(usage) -> str:
    """The filesystem under Docker's root dir, as the HTML report shows it: "75.0% of 50.00 GiB", or n/a."""
    filesystem = _mapping(usage).get("filesystem")
    if not isinstance(filesystem, Mapping):
        return "n/a"
    percent = filesystem.get("used_percent")
    return f"{'?' if percent is None else percent}% of {binary_size(filesystem.get('total'))}"


def _removed_text(removed) -> tuple:
    parts = []
    for kind in ("images", "containers", "volumes", "networks"):
        n = len(removed[kind])
        if n:
            parts.append(f"{n} {kind if n != 1 else kind[:-1]}")
    count = sum(len(removed[kind]) for kind in ("images", "containers", "volumes", "networks"))
    return count, ", ".join(parts)


def _root_dir_row(root_dir) -> dict:
    """A row's leaked and container log bytes (null, shown "-", for a host whose root dir was not walked); leaked
    bytes are marked when the walk could not read everything (then nothing is called leaked)."""
    if root_dir is None:
        return {"leaked": None, "logs": None, "leaked_text": "-", "logs_text": "-"}
    leaked = root_dir["categories"].get("leaked", 0)
    logs = root_dir["categories"].get("container_logs", 0)
    return {"leaked": leaked, "logs": logs, "logs_text": binary_size(logs),
            "leaked_text": binary_size(leaked) + ("" if root_dir["exact"] else " (inexact)")}


def _largest_logs(entries, names) -> list:
    """The fleet's FLEET_LOGS largest container logs, each with its host; ties keep the hosts' order."""
    logs = [dict(log, host=name, bytes_text=binary_size(log["bytes"]))
            for name in names if entries[name]["root_dir"] is not None
            for log in entries[name]["root_dir"]["largest_container_logs"]]
    return sorted(logs, key=lambda log: -log["bytes"])[:FLEET_LOGS]


def _epoch(generated_at):
    """GENERATED_AT (GENERATED_AT_FORMAT, UTC) in seconds since the epoch; null when it is not in that format."""
    try:
        return calendar.timegm(time.strptime(str(generated_at), GENERATED_AT_FORMAT))
    except ValueError:
        return None


def _labels(**labels) -> str:
    """A series' labels in the text format (name="value", ...), their values escaped (backslash, quote, newline)."""
    escaped = (str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for value in labels.values())
    return ",".join(f'{name}="{value}"' for name, value in zip(labels, escaped))


def _metrics(report, rows) -> dict:
    """The Prometheus series, by metric, each {labels (as the text format writes them, the run's mode among them),
    value}: each host's status (1 for its own, 0 for the others), its bytes only where it has them (reclaimed: a run
    that finished; leaked and logs: a walked root dir), the fleet's host counts and byte totals (leaked and logs null
    unless some host was walked), and when the report was made."""
    totals, mode = report["totals"], report["mode"]

    def series(key, selected):
        return [{"host": r["name"], "labels": _labels(host=r["name"], mode=mode), "value": r[key]} for r in selected]

    statuses = ("ok", "failed", "unreachable")
    reclaimed = series("freed", [r for r in rows if r["status"] == "ok"])
    return {"mode": _labels(mode=mode),
            "timestamp": _epoch(report["generated_at"]),
            "status": [{"host": r["name"], "status": status, "value": int(r["status"] == status),
                        "labels": _labels(host=r["name"], mode=mode, status=status)}
                       for r in rows for status in statuses],
            "reclaimed": reclaimed,
            "leaked": series("leaked", [r for r in rows if r["leaked"] is not None]),
            "logs": series("logs", [r for r in rows if r["logs"] is not None]),
            "hosts": [{"status": status, "value": totals[status], "labels": _labels(mode=mode, status=status)}
                      for status in statuses],
            # The fleet's bytes are its hosts' series added up: a failed host's bytes count nowhere.
            "fleet": {"reclaimed": sum(s["value"] for s in reclaimed), "leaked": totals["leaked_bytes"],
                      "logs": totals["container_logs_bytes"]}}


def fleet_view(report, hosts) -> dict:
    """What the report's files show, in the order they show it, from REPORT (fleet_summary) for HOSTS:
    - rows: every host in HOSTS' order (Markdown, job output), each with what the tables show of it, sizes as people
      read them (the templates only place them);
    - table: failed hosts, then unreachable ones, then the rest, each by space freed, largest first (HTML);
    - freed and usage: the charts, the CHART_TOP largest hosts one bar each and the others summed (HTML);
    - approved: the rows of hosts with an approved plan, in HOSTS' order;
    - failed and unreachable: the names of the hosts with that status, in HOSTS' order;
    - root_dir: whether any host's root dir was walked (the files then show leaked and log bytes), and logs: the
      fleet's largest container logs;
    - metrics: the Prometheus series (_metrics)."""
    entries = report["hosts"]
    names = _unique(hosts)
    rows = []
    for name in names:
        h = entries[name]
        count, text = _removed_text(h["removed"])
        freed = h["reclaimed_bytes"]
        before = _int(_mapping(h["usage_before"]).get("images_bytes"))
        after = _int(_mapping(h["usage_after"]).get("images_bytes"))
        rows.append({"name": name, "status": h["status"], "profile": h["profile"], "error": h["error"],
                     "approved": bool(h["approval"]), "freed": freed, "before": before, "after": after,
                     "freed_text": binary_size(freed), "before_text": binary_size(before),
                     "after_text": binary_size(after), "images": len(h["removed"]["images"]),
                     "containers": len(h["removed"]["containers"]), "removed_count": count, "removed_text": text,
                     "disk_before": _disk_text(h["usage_before"]), "disk_after": _disk_text(h["usage_after"]),
                     **_root_dir_row(h.get("root_dir"))})
    by_freed = sorted(rows, key=lambda r: -r["freed"])  # stable: ties keep the hosts' order
    table = sorted(by_freed, key=lambda r: STATUS_RANK[r["status"]])
    # Every host up to CHART_TOP + 1 of them has its own bar (an "other hosts" bar for one host would only hide it).
    shown = len(rows) if len(rows) <= CHART_TOP + 1 else CHART_TOP
    by_before = sorted(rows, key=lambda r: -r["before"])
    freed_top, freed_rest = by_freed[:shown], by_freed[shown:]
    usage_top, usage_rest = by_before[:shown], by_before[shown:]
    return plain({
        "rows": rows,
        "table": table,
        "approved": [r for r in rows if r["approved"]],
        "failed": [r["name"] for r in rows if r["status"] == "failed"],
        "unreachable": [r["name"] for r in rows if r["status"] == "unreachable"],
        "chart_n": shown,
        "freed": {"top": freed_top, "rest": len(freed_rest), "rest_bytes": sum(r["freed"] for r in freed_rest),
                  # Scaled to the largest host (at least 1 byte).
                  "scale": max([1] + [r["freed"] for r in freed_top])},
        "usage": {"top": usage_top, "rest": len(usage_rest), "rest_before": sum(r["before"] for r in usage_rest),
                  "rest_after": sum(r["after"] for r in usage_rest),
                  "scale": max([1] + [r["before"] for r in usage_top] + [r["after"] for r in usage_top])},
        "root_dir": any(r["leaked"] is not None for r in rows),
        "logs": _largest_logs(entries, names),
        "metrics": _metrics(report, rows),
    })


def fleet_artifacts(report, hosts, report_dir, job_id=None, copied_to=None) -> dict:
    """The AWX artifacts (set_stats data) of REPORT for HOSTS: each host's status and bytes keyed by host, so the maps
    of a sliced job's slices merge; the totals under reclaim_fleet_totals_<JOB_ID or local>, one key per slice; an
    audit's plans, for a later cleanup's reclaim_approved_plan; where the report was delivered (COPIED_TO), if it was."""
    entries = report["hosts"]
    names = _unique(hosts)
    slice_key = re.sub(r"[^A-Za-z0-9_]", "_", str(job_id if job_id not in (None, "") else "local"))
    artifacts = {}
    if report["mode"] == "audit":
        artifacts["reclaim_audit_plans"] = {n: entries[n]["plan"] for n in names if entries[n]["plan"] is not None}
    artifacts.update({
        "reclaim_fleet_mode": report["mode"],
        "reclaim_fleet_report_dir": report_dir,
        "reclaim_fleet_hosts": {n: _host_artifact(entries[n]) for n in names},
        f"reclaim_fleet_totals_{slice_key}": report["totals"],
    })
    if copied_to:
        artifacts["reclaim_fleet_report_copied_to"] = copied_to
    return plain(artifacts)


def _host_artifact(entry) -> dict:
    """A host's status and bytes; leaked and container log bytes only for a host whose root dir was walked."""
    artifact = {"status": entry["status"], "reclaimed_bytes": entry["reclaimed_bytes"]}
    if entry["root_dir"] is not None:
        artifact.update(leaked_bytes=entry["root_dir"]["categories"].get("leaked", 0),
                        container_logs_bytes=entry["root_dir"]["categories"].get("container_logs", 0))
    return artifact


def binary_size(value) -> str:
    """Bytes as people read them, in powers of 1024 named as such: 512 -> "512 B", 8906643 -> "8.49 MiB",
    1610612736 -> "1.50 GiB" (ansible.builtin.human_readable's numbers, with binary unit names)."""
    n = _int(value)
    size, unit = float(abs(n)), "B"
    for larger in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if size < 1024.0:
            break
        size, unit = size / 1024.0, larger
    return f"{n} B" if unit == "B" else f"{'-' if n < 0 else ''}{size:.2f} {unit}"
