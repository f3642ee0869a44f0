"""`make bench`: our modules against the Docker CLI and community.docker, as ratios of wall time and peak memory.

Every contender runs as its own process on the same engine state (a `realistic_mix` of N images, rebuilt before
each destructive run): the CLI as `docker ...`, modules directly as `python MODULE.py ARGS.json` (how Ansible runs
them on the target, without the controller's start-up, which is the same for every module). GNU time gives the
wall time and peak RSS. Ratios are ours / theirs: below 1 is faster or smaller.

    python -m bench [--images N] [--flavours 28.5 ...]   (PYTHONPATH=tests, as make sets it)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import engines, scenario

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".collections" / "ansible_collections"
MODULES = {
    "ours": COLLECTIONS / "reclaim" / "docker" / "plugins" / "modules",
    "community": COLLECTIONS / "community" / "docker" / "plugins" / "modules",
}
RUNS = 3


def measure(command, env):
    """Wall seconds and peak RSS (KiB) of COMMAND, by GNU time."""
    result = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True, env=env,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    wall, rss = result.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss), result.stdout


def module_command(workdir, owner, module, args, check=False):
    path = Path(workdir) / f"{owner}-{module}-{len(os.listdir(workdir))}.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check)}))
    return [sys.executable, str(MODULES[owner] / f"{module}.py"), str(path)]


def module_output(stdout):
    return json.loads(stdout[stdout.index("{"):])


class Bench:
    def __init__(self, engine, n_images, workdir):
        self.engine = engine
        self.n_images = n_images
        self.workdir = workdir
        self.env = dict(os.environ, DOCKER_HOST=engine.docker_host, PYTHONPATH=str(COLLECTIONS.parent))
        self.rows = []

    def fresh(self):
        """The same state before every run that changes it."""
        for name in [e.name for e in engines.running() if e.name == self.engine.name]:
            engines.stop(engines.Engine(name, self.engine.flavour, self.engine.state_dir))
        self.engine = engines.start(self.engine.flavour, self.engine.name)
        scenario.build(self.engine.docker_host, scenario.realistic_mix(seed=7, n_images=self.n_images), prefix="bench")

    def repeat(self, command, fresh):
        samples = []
        for _run in range(RUNS):
            if fresh:
                self.fresh()
            samples.append(measure(command, self.env))
        return statistics.median(s[0] for s in samples), max(s[1] for s in samples), samples[-1][2]

    def compare(self, task, ours, theirs, fresh=False):
        mine = self.repeat(ours, fresh)
        for label, command in theirs.items():
            other = self.repeat(command, fresh)
            self.rows.append((self.engine.flavour, task, label, mine[0], other[0], mine[1], other[1]))
        return mine[2]

    def run(self):
        self.fresh()
        host = {"docker_host": self.engine.docker_host}
        self.compare("disk usage", module_command(self.workdir, "ours", "disk_usage_info", host), {
            "docker system df": ["docker", "system", "df"],
            "community.docker.docker_host_info": module_command(self.workdir, "community", "docker_host_info",
                                                                dict(host, disk_usage=True)),
        })
        # What `docker system prune -a` does: containers, every unused image, networks, all build cache.
        prune = dict(host, containers=True, images=True, images_filters={"dangling": False}, networks=True,
                     builder_cache=True, builder_cache_all=True)
        self.compare("prune -a (real)", module_command(self.workdir, "ours", "prune", prune), {
            "docker system prune -a -f": ["docker", "system", "prune", "-a", "-f"],
            "community.docker.docker_prune": module_command(self.workdir, "community", "docker_prune", prune),
        }, fresh=True)
        # Only ours can predict: its check mode against the real prunes above.
        self.compare("prune -a (check mode)", module_command(self.workdir, "ours", "prune", prune, check=True), {
            "docker system prune -a -f": ["docker", "system", "prune", "-a", "-f"],
        }, fresh=True)
        self.fresh()
        tags = self.unused_tags(20)
        self.compare("remove 20 tags", module_command(self.workdir, "ours", "image_remove", dict(host, name=tags)), {
            "docker rmi": ["docker", "rmi", *tags],
            # community.docker removes one image per task: 20 module runs, added up.
            "community.docker.docker_image_remove (x20)": [
                "sh", "-c", " && ".join(" ".join(module_command(self.workdir, "community", "docker_image_remove",
                                                                dict(host, name=tag))) for tag in tags)],
        }, fresh=True)

    def unused_tags(self, count):
        client = scenario.client(self.engine.docker_host)
        used = {c["ImageID"] for c in client.containers(all=True)}
        tags = [t for i in client.images() if i["Id"] not in used for t in (i.get("RepoTags") or [])
                if re.match(r"^bench/", t)]
        return sorted(tags)[:count]


def table(rows):
    lines = ["| engine | task | against | time ours (s) | time theirs (s) | time ratio | peak RSS ours (MiB) | "
             "peak RSS theirs (MiB) | memory ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for flavour, task, label, ours_s, theirs_s, ours_kb, theirs_kb in rows:
        lines.append(f"| {flavour} | {task} | {label} | {ours_s:.2f} | {theirs_s:.2f} | {ours_s / theirs_s:.2f} | "
                     f"{ours_kb / 1024:.0f} | {theirs_kb / 1024:.0f} | {ours_kb / theirs_kb:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--flavours", nargs="*", choices=engines.FLAVOURS, default=list(engines.FLAVOURS))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for flavour in args.flavours:
            bench = Bench(engines.Engine(f"bench-{flavour.replace('.', '')}", flavour,
                                         engines.STATE_ROOT / f"bench-{flavour.replace('.', '')}"),
                          args.images, workdir)
            try:
                bench.run()
            finally:
                engines.stop(bench.engine)
            rows += bench.rows
            print(table(bench.rows), flush=True)
    out = ROOT / ".build" / "bench" / "results.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"{args.images} images per engine, median of {RUNS} runs\n\n{table(rows)}\n")
    print(f"\n{table(rows)}\n\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
