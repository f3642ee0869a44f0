"""The bench's tables, and its blocks of docs/benchmarks.md (the rest of that file is written by hand)."""

from __future__ import annotations

import re
from pathlib import Path

TASK_NAMES = {
    "df": "disk usage",
    "audit": "audit (check-mode prune)",
    "remove": "remove 20 tags",
    "prune": "prune unused images (real)",
}
HAND_WRITTEN = "## Reading it"


def seconds(value: float) -> str:
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def count(values: list) -> str:
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}–{high}"


def endpoints(counts: dict, top: int = 3) -> str:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    text = ", ".join(f"`{name}` ×{n}" for name, n in ranked[:top])
    rest = sum(n for _name, n in ranked[top:])
    return text + (f", {rest} other{'s' if rest > 1 else ''}" if rest else "")


def task_lines(result: dict, elapsed: float) -> str:
    lines = [f"-- {result['flavour']} {result['images']} images, {TASK_NAMES[result['task']]} ({elapsed:.0f} s)"]
    for c in result["contenders"]:
        lines.append(f"   {c['label']:<66} {seconds(c['median']):>7} s ({seconds(c['min'])}–{seconds(c['max'])})"
                     f" {c['rss_kib'] / 1024:5.0f} MiB {count(c['requests']):>7} requests")
    return "\n".join(lines)


def ratio_rows(runs):
    for run in runs:
        for result in run["results"]:
            ours = [c for c in result["contenders"] if c["side"] == "ours"]
            theirs = [c for c in result["contenders"] if c["side"] == "theirs"]
            for mine in ours:
                for other in theirs:
                    yield run, result, mine, other


def block(meta: dict, runs: list) -> str:
    m = meta["machine"]
    label = meta["label"]
    title = "## Results" if label == "current" else f"## Results: {label}"
    engines_seen = {}
    for run in runs:
        e = run["engine"]
        engines_seen[run["flavour"]] = (f"{run['flavour']}: Docker {e.get('version')}, API {e.get('api')}, "
                                        f"{'containerd image store' if e.get('containerd_store') else e.get('driver')}")
    sizes = ", ".join(
        f"{r['shape']['images']:,} images ({r['shape']['dangling']:,} dangling, {r['shape']['containers']} "
        f"containers of which {r['shape']['running']} running; built in {r['build_seconds']:.0f} s on {r['flavour']})"
        for r in runs)
    ours = meta["ours"] + (f" at `{meta['ours_path']}`" if meta.get("ours_path") else "")
    lines = [
        f"<!-- bench:begin {label} (written by `make bench`: tests/bench; edit the template there, not here) -->",
        title, "",
        f"`{' '.join(['python -m bench', *meta['argv']])}`, started {meta['started']}, took {meta['seconds'] / 60:.0f} min on {m['cpus']} CPUs ({m['cpu']}), "
        f"{m['memory_gib']} GiB, kernel {m['kernel']} (load average {meta['load'][0][0]:.1f} at the start, "
        f"{meta['load'][1][0]:.1f} at the end; other work ran on the machine too). Ours: {ours}. Python "
        f"{m['python']}, Docker SDK {m['docker_sdk']}, ansible-core {m['ansible_core']}, community.docker "
        f"{m['community_docker']}. Engines: {'; '.join(engines_seen.values())}.",
        "",
        f"State: `scenario.ci_host(N)`, 20 repositories of N/20 builds each over one shared base layer and one layer "
        f"per repository (the builds of a repository differ by their config only): {sizes}.",
        "",
        method(meta, runs),
        "",
        "### Ratios (ours / theirs)",
        "",
        "| engine | images | task | ours | against | time | peak RSS | requests (ours / theirs) |",
        "|---|--:|---|---|---|--:|--:|--:|",
    ]
    for run, result, mine, other in ratio_rows(runs):
        lines.append(
            f"| {run['flavour']} | {run['images']:,} | {TASK_NAMES[result['task']]} | {mine['label']} | {other['label']} "
            f"| **{mine['median'] / other['median']:.2f}** | {mine['rss_kib'] / other['rss_kib']:.2f} "
            f"| {count(mine['requests'])} / {count(other['requests'])} |")
    lines += ["", "### Every contender", "",
              "| engine | images | task | contender | time (s): median (min–max) | peak RSS (MiB) | requests per run |",
              "|---|--:|---|---|--:|--:|--:|"]
    for run in runs:
        for result in run["results"]:
            for c in result["contenders"]:
                lines.append(f"| {run['flavour']} | {run['images']:,} | {TASK_NAMES[result['task']]} | {c['label']} "
                             f"| {seconds(c['median'])} ({seconds(c['min'])}–{seconds(c['max'])}) "
                             f"| {c['rss_kib'] / 1024:.0f} | {count(c['requests'])} |")
    lines += growth(runs)
    notes = [f"- {run['flavour']}, {run['images']:,} images: {note}" for run in runs for note in run["notes"]]
    if notes:
        lines += ["", "### Notes", "", *notes]
    lines.append(f"<!-- bench:end {label} -->")
    return "\n".join(lines) + "\n"


def method(meta: dict, runs: list) -> str:
    """How the numbers were taken, saying only what applies to these RUNS."""
    tasks = {result["task"] for run in runs for result in run["results"]}
    caches = {c["cache"] for run in runs for result in run["results"] for c in result["contenders"]}
    destructive = tasks & {"remove", "prune"}
    runs_text = f"the median of {meta['runs']} runs"
    if destructive and meta.get("destructive_runs", meta["runs"]) != meta["runs"]:
        runs_text += (f" ({meta['destructive_runs']} for the tasks that remove images, since each of their runs starts "
                      f"by reloading what the last one removed)")
    text = (f"Each number is per run of one process: {runs_text} with the min–max, runs alternating between the "
            f"contenders of a task in a rotating order; peak RSS by GNU time (the largest of the runs); Engine API "
            f"requests counted by a proxy on a unix socket between the process and the daemon (every run goes "
            f"through it).")
    if caches & {"cold", "warm"}:
        copies = " (for runs that remove images, a copy of it for each run)" if destructive else ""
        text += (" A cold cache is an empty `layer_cache_dir` for every run, a warm one the directory after one "
                 f"unmeasured check-mode run on the same state{copies}.")
    if "no cache" in caches:
        text += " \"No cache\": the module has no `layer_cache_dir` option."
    if destructive:
        text += (" Runs that remove images start from the built state (what the last run removed is reloaded and "
                 "the engine's images and containers checked equal to the built ones), and every contender of a "
                 "task must leave the same images.")
    if destructive and meta.get("destructive_max") and any(run["images"] > meta["destructive_max"] for run in runs):
        text += f" Tasks that remove images run only up to {meta['destructive_max']:,} images."
    return text + " Ratios are ours / theirs: below 1 is faster, smaller or fewer."


def growth(runs) -> list:
    """Requests per run against the number of images, per flavour, task and contender, with the endpoints."""
    table = {}
    sizes = {}
    for run in runs:
        sizes.setdefault(run["flavour"], []).append(run["images"])
        for result in run["results"]:
            for c in result["contenders"]:
                table.setdefault((run["flavour"], result["task"], c["label"]), {})[run["images"]] = c
    all_sizes = sorted({n for ns in sizes.values() for n in ns})
    lines = ["", "### Engine API requests per run, by number of images", "",
             "| engine | task | contender | " + " | ".join(f"{n:,}" for n in all_sizes)
             + " | endpoints at the largest size |",
             "|---|---|---|" + "--:|" * len(all_sizes) + "---|"]
    for (flavour, task, label), by_size in table.items():
        cells = [count(by_size[n]["requests"]) if n in by_size else "" for n in all_sizes]
        largest = by_size[max(by_size)]
        lines.append(f"| {flavour} | {TASK_NAMES[task]} | {label} | " + " | ".join(cells)
                     + f" | {endpoints(largest['endpoints'])} |")
    return lines


def write_docs(path: Path, label: str, text: str):
    """Replace LABEL's generated block in PATH, or add it before the hand-written part."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n\n" + HAND_WRITTEN + "\n"
    pattern = re.compile(rf"<!-- bench:begin {re.escape(label)}[ (].*?<!-- bench:end {re.escape(label)} -->\n",
                         re.S)
    if pattern.search(doc):
        doc = pattern.sub(lambda _m: text, doc, count=1)
    elif HAND_WRITTEN in doc:
        at = doc.index(HAND_WRITTEN)
        doc = doc[:at] + text + "\n" + doc[at:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc)


# The goals of issue 18, per host and on the controller (benchmarks, not timed tests).
FLEET_GOALS = {"audit playbook": 1.0, "cleanup playbook": 1.5}
REPORT_GOAL_CPU = 5.0


def fleet_block(meta: dict, fleet: dict) -> str:
    """The fleet task's block: CPU per host and wall time of the playbooks against the anchors, as ratios."""
    m = meta["machine"]
    label = "fleet" if meta["label"] == "current" else f"fleet-{meta['label']}"
    title = "## Fleet" if meta["label"] == "current" else f"## Fleet: {meta['label']}"
    ours = meta["ours"] + (f" at `{meta['ours_path']}`" if meta.get("ours_path") else "")
    e = fleet["engine"]
    lines = [
        f"<!-- bench:begin {label} (written by `make bench`: tests/bench; edit the template there, not here) -->",
        title, "",
        f"`{' '.join(['python -m bench', *meta['argv']])}`, started {meta['started']}, the fleet task took "
        f"{fleet['seconds'] / 60:.0f} min on {m['cpus']} CPUs ({m['cpu']}), kernel {m['kernel']} (load average "
        f"{meta['load'][0][0]:.1f} at the start, {meta['load'][1][0]:.1f} at the end; other work ran on the machine "
        f"too). Ours: {ours}. Python {m['python']}, ansible-core {m['ansible_core']}, community.docker "
        f"{m['community_docker']}. Engines: Docker {e.get('version')}, {e.get('driver')}, each seeded with "
        f"{fleet['images']} images ({fleet['dangling']} dangling) and {fleet['containers']} containers.",
        "",
        f"Each number is the median of {meta['fleet_runs']} runs of one `ansible-playbook` (forks = hosts, "
        "`ansible_connection: local`), runs alternating between the contenders in a rotating order. CPU is user + "
        "system time of `ansible-playbook` and every process under it (the controller's workers and the modules), "
        "read when it is reaped, divided by the hosts; the audit and cleanup include their report play. A cleanup "
        "run starts from the seeded state (what the last one removed is loaded again first, not measured). Ratios "
        "are ours / theirs: below 1 is cheaper or faster.",
        "",
        "| hosts | ours | CPU-s per host | wall (s) | CPU against docker_host_info | CPU against ping "
        "| wall against docker_host_info | goal (CPU against docker_host_info) |",
        "|--:|---|--:|--:|--:|--:|--:|---|",
    ]
    for result in fleet["results"]:
        anchors = {c["label"]: c for c in result["contenders"] if c["side"] == "theirs"}
        host_info = next(c for label_, c in anchors.items() if "docker_host_info" in label_)
        ping = next(c for label_, c in anchors.items() if "ping" in label_)
        for c in (c for c in result["contenders"] if c["side"] == "ours"):
            ratio = c["cpu_median"] / host_info["cpu_median"]
            goal = next((g for name, g in FLEET_GOALS.items() if name in c["label"]), None)
            verdict = "" if goal is None else (f"at most {goal:.1f}: met" if ratio <= goal
                                               else f"at most {goal:.1f}: {ratio - goal:.2f} above")
            lines.append(f"| {result['hosts']} | {c['label']} | {c['cpu_median']:.3f} "
                         f"({min(c['cpu_per_host']):.3f}–{max(c['cpu_per_host']):.3f}) | {c['wall_median']:.1f} "
                         f"| **{ratio:.2f}** | {c['cpu_median'] / ping['cpu_median']:.2f} "
                         f"| {c['wall_median'] / host_info['wall_median']:.2f} | {verdict} |")
    lines += ["", "The anchors:", "",
              "| hosts | play | CPU-s per host | wall (s) |", "|--:|---|--:|--:|"]
    for result in fleet["results"]:
        for c in (c for c in result["contenders"] if c["side"] == "theirs"):
            lines.append(f"| {result['hosts']} | {c['label']} | {c['cpu_median']:.3f} "
                         f"({min(c['cpu_per_host']):.3f}–{max(c['cpu_per_host']):.3f}) | {c['wall_median']:.1f} |")
    r = fleet.get("report")
    if r:
        verdict = "met" if r["cpu_median"] <= REPORT_GOAL_CPU else f"{r['cpu_median'] - REPORT_GOAL_CPU:.1f} CPU-s above"
        lines += ["", f"The fleet report alone (`reclaim.docker.fleet_report`, tests/integration/fleet_report_fixture/"
                  f"report_only.yml) on {r['hosts']} synthetic host results: {r['cpu_median']:.2f} CPU-s "
                  f"({min(r['cpu']):.2f}–{max(r['cpu']):.2f}), {r['wall_median']:.1f} s wall; the goal, at most "
                  f"{REPORT_GOAL_CPU:.0f} CPU-s: {verdict}."]
    notes = [f"- {note}" for note in fleet.get("notes", [])]
    if notes:
        lines += ["", "### Notes", "", *notes]
    lines.append(f"<!-- bench:end {label} -->")
    return "\n".join(lines) + "\n"
