"""`make bench`: our modules against the Docker CLI and community.docker on a busy CI host's engine state, as ratios
of wall time, peak memory and Engine API requests.

The state is `scenario.ci_host(N)` (issue 14's shape): N images as 20 repositories of N/20 builds over one shared
base layer and one layer per repository, 30% dangling, 6% of N as containers (half running). Every contender runs as
its own process: the CLI as `docker ...` (the engine's own version), modules as `python MODULE.py ARGS.json` (how
Ansible runs them on the target, without the controller's start-up, the same for every module). Runs alternate
between the contenders of a task, in a rotating order. Each run talks to the daemon through a counting proxy (a unix
socket forwarding both ways, see harness/proxy.py) that gives its request count; GNU time gives its peak RSS; a run that
changes the engine starts from the same state, reloaded (`scenario.reload_images`) and checked equal.

Tasks:
  df      disk usage: disk_usage_info / `docker system df` / docker_host_info (disk_usage)
  audit   check-mode prune of containers and every unused image / docker_host_info (disk_usage, verbose_output) /
          `docker system df -v`, ours with a cold and a warm layer cache
  remove  20 unused tags: image_remove in one call / one `docker rmi` / 20 runs of docker_image_remove
  prune   real prune of every unused image: prune / `docker image prune -af` / docker_prune with the same options
  fleet   the audit and cleanup playbooks on 1, 10 and 20 engines / a one-task docker_host_info play / a ping play,
          as CPU per host and wall time; and the fleet report of 500 synthetic hosts (tests/bench/fleet.py)

    python -m bench [--images N ...] [--flavours F ...] [--tasks T ...] [--runs 5] [--cache cold warm]
                    [--destructive-max 1000] [--destructive-runs 3] [--fleet-sizes 1 10 20] [--fleet-runs 3]
                    [--ours CHECKOUT --label NAME] [--docs]
                    (PYTHONPATH=tests, as make sets it)

Without --images, 28.5 runs at 100, 1,000 and 5,000 images and the other flavours at 1,000; the tasks that change
the engine (remove, prune) run only at sizes up to --destructive-max, --destructive-runs times. --docs rewrites this label's block of
docs/benchmarks.md and its results in .build/bench/results-LABEL.*; other runs write .build/bench/last-LABEL.*. The
fleet task has a block of its own (fleet, or fleet-LABEL) and its own results (.build/bench/*-fleet-LABEL.*).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

from bench import report
from bench.fleet import FLEET_SIZES, FleetBench
from harness import engines, scenario
from harness.proxy import CountingProxy

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".collections"
COMMUNITY = COLLECTIONS / "ansible_collections" / "community"
TASKS = ("df", "audit", "remove", "prune", "fleet")
DESTRUCTIVE = ("remove", "prune")
DEFAULT_SIZES = {"28.5": [100, 1000, 5000]}
DEFAULT_OTHER_SIZES = [1000]
BUILD_WORKERS = 4


@dataclasses.dataclass
class Sample:
    wall: float
    rss_kib: int
    requests: dict


@dataclasses.dataclass
class Contender:
    label: str
    side: str                       # "ours" or "theirs"
    command: object                 # () -> argv, called before each run
    env: dict
    cache: str | None = None        # ours: "cold", "warm", "no cache"
    samples: list = dataclasses.field(default_factory=list)

    def result(self) -> dict:
        walls = [s.wall for s in self.samples]
        counts = [sum(s.requests.values()) for s in self.samples]
        return {"label": self.label, "side": self.side, "cache": self.cache,
                "wall": walls, "median": statistics.median(walls), "min": min(walls), "max": max(walls),
                "rss_kib": max(s.rss_kib for s in self.samples), "requests": counts,
                "endpoints": dict(self.samples[-1].requests)}


def measure(command, env):
    """Wall seconds (around the process) and peak RSS in KiB (GNU time) of COMMAND."""
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, env=env,
                            check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))[:300]} failed ({result.returncode}):\n"
                           f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return wall, int(result.stderr.strip().splitlines()[-1]), result.stdout


def module_failed(stdout):
    """The module's own verdict: its JSON result says failed."""
    try:
        result, _end = json.JSONDecoder().raw_decode(stdout[stdout.index("{"):])
    except ValueError:
        return "no JSON result"
    return result.get("msg", "failed") if result.get("failed") else None


def supports_layer_cache(module_path: Path) -> bool:
    """Whether the module takes layer_cache_dir: named in its DOCUMENTATION or in the doc fragment it extends."""
    tree = ast.parse(module_path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DOCUMENTATION" for t in node.targets):
            doc = node.value.value
            return "layer_cache_dir" in doc or "reclaim.docker._layer_cache" in doc
    return False


class Ours:
    """Where our modules come from: this checkout, or another one (--ours) in a collections tree of its own."""

    def __init__(self, checkout: Path | None, workdir: Path):
        if checkout is None:
            self.checkout, self.collections = ROOT, COLLECTIONS
        else:
            self.checkout = checkout.resolve()
            self.collections = workdir / "ours-collections"
            (self.collections / "ansible_collections" / "reclaim").mkdir(parents=True)
            (self.collections / "ansible_collections" / "reclaim" / "docker").symlink_to(self.checkout)
            (self.collections / "ansible_collections" / "community").symlink_to(COMMUNITY)

    def module(self, name) -> Path:
        return self.checkout / "plugins" / "modules" / f"{name}.py"

    def describe(self) -> str:
        return describe_checkout(self.checkout)


def describe_checkout(path: Path) -> str:
    def git(*args):
        # --no-optional-locks: read only, never refresh the index of a tree others are working in
        return subprocess.run(["git", "--no-optional-locks", "-C", str(path), *args], capture_output=True, text=True,
                              check=False).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "plugins", "roles", "playbooks")
    return f"{commit}{' with uncommitted changes to plugins/, roles/ or playbooks/' if dirty else ''}"


class Bench:
    """One engine of FLAVOUR with a ci_host of N_IMAGES, and the tasks run on it."""

    def __init__(self, flavour, n_images, args, ours: Ours, workdir: Path):
        self.flavour, self.n_images, self.args, self.ours = flavour, n_images, args, ours
        self.workdir = workdir / f"{flavour}-{n_images}"
        self.workdir.mkdir()
        name = f"bench-{flavour.replace('.', '').replace('-containerd', 'c')}"
        self.engine = engines.Engine(name, flavour, engines.STATE_ROOT / name)
        self.spec = scenario.ci_host(n_images)
        self.results = []
        self.notes = []
        self.proxy = None
        self.built = None
        self.state = None
        self._files = 0
        self._warm = {}
        self.build_seconds = 0.0
        self.engine_info = {}

    # ------------------------------------------------------------ engine and state

    def start(self):
        for engine in engines.running():
            if engine.name == self.engine.name:
                engines.stop(engine)  # left by an interrupted bench of ours
        self.engine = engines.start(self.flavour, self.engine.name)
        began = time.monotonic()
        self.built = scenario.build(self.engine.docker_host, self.spec, prefix="bench", workers=BUILD_WORKERS)
        self.build_seconds = time.monotonic() - began
        self.state = self.fingerprint()
        self.proxy = CountingProxy(self.workdir / "proxy.sock", self.engine.socket_path)
        api = scenario.client(self.engine.docker_host)
        version, info = api.version(), api.info()
        self.engine_info = {"version": version.get("Version"), "api": version.get("ApiVersion"),
                            "driver": info.get("Driver"),
                            "containerd_store": scenario.is_containerd_store(api)}
        print(f"== {self.flavour}: {self.n_images} images, {len(self.spec['containers'])} containers built in "
              f"{self.build_seconds:.0f} s", flush=True)

    def stop(self):
        if self.proxy is not None:
            self.proxy.close()
        engines.stop(self.engine)

    def fingerprint(self):
        api = scenario.client(self.engine.docker_host)
        return {"images": {i["Id"]: sorted(t for t in i.get("RepoTags") or [] if t != "<none>:<none>")
                           for i in api.images()},
                "containers": {c["Id"]: c["State"] for c in api.containers(all=True)}}

    def restore(self):
        """The built state again after a run that changed it: the missing images reloaded, then checked."""
        if self.fingerprint() == self.state:
            return
        scenario.reload_images(self.engine.docker_host, self.spec, self.built)
        if self.fingerprint() != self.state:
            raise RuntimeError(f"{self.flavour}: reloading the images did not give the built state back")

    # ------------------------------------------------------------ contenders

    def _args_file(self, owner, module, args, check):
        self._files += 1
        path = self.workdir / f"{self._files:05d}-{owner}-{module}.json"
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check)}))
        return str(path)

    def module_env(self, collections_dir):
        return dict(os.environ, PYTHONPATH=str(collections_dir), XDG_CACHE_HOME=str(self.workdir / "xdg-cache"),
                    ANSIBLE_NOCOLOR="1")

    def cli_env(self):
        config = self.workdir / "docker-config"
        config.mkdir(exist_ok=True)
        return dict(engines.engine_env(self.flavour), DOCKER_HOST=self.proxy.docker_host, DOCKER_CONFIG=str(config))

    def cli(self, label, *argv):
        return Contender(label, "theirs", lambda: ["docker", *argv], self.cli_env())

    def community(self, label, module, args, times=1):
        path = COMMUNITY / "docker" / "plugins" / "modules" / f"{module}.py"
        env = self.module_env(COLLECTIONS)
        args = dict(args, docker_host=self.proxy.docker_host)
        if isinstance(times, list):  # one run per item: a shell chain, as a playbook's loop would run them
            def command():
                return ["sh", "-c", " && ".join(f"{sys.executable} {path} "
                                                f"{self._args_file('community', module, dict(args, name=n), False)}"
                                                for n in times)]
        else:
            def command():
                return [sys.executable, str(path), self._args_file("community", module, args, False)]
        return Contender(label, "theirs", command, env)

    def ours_variants(self, module, args, check, destructive=False):
        """Our MODULE with a cold and a warm layer cache (or no cache, when the module has none)."""
        path = self.ours.module(module)
        env = self.module_env(self.ours.collections)
        args = dict(args, docker_host=self.proxy.docker_host)
        name = "ours" if self.args.label == "current" else f"ours ({self.args.label})"
        if not supports_layer_cache(path):
            return [Contender(f"{name}, no cache", "ours",
                              lambda: [sys.executable, str(path), self._args_file("ours", module, args, check)],
                              env, cache="no cache")]
        variants = []
        for cache in self.args.cache:
            def command(cache=cache):
                directory = Path(tempfile.mkdtemp(prefix=f"cache-{cache}-", dir=self.workdir))
                if cache == "warm":
                    warm = self.warm_cache(module, args)
                    if destructive:  # a real run drops the entries of what it removed: start each from the copy
                        shutil.rmtree(directory)
                        shutil.copytree(warm, directory, symlinks=True)
                    else:
                        shutil.rmtree(directory)
                        directory = warm
                return [sys.executable, str(path),
                        self._args_file("ours", module, dict(args, layer_cache=True, layer_cache_dir=str(directory)),
                                        check)]
            variants.append(Contender(f"{name}, {cache} cache", "ours", command, env, cache=cache))
        return variants

    def warm_cache(self, module, args):
        """A cache directory filled by one unmeasured check-mode run of MODULE with ARGS on the built state."""
        key = json.dumps([module, args], sort_keys=True)
        if key not in self._warm:
            directory = Path(tempfile.mkdtemp(prefix="cache-warm-", dir=self.workdir))
            directory.chmod(0o700)
            self.restore()
            _wall, _rss, out = measure([sys.executable, str(self.ours.module(module)), self._args_file(
                "ours", module, dict(args, layer_cache=True, layer_cache_dir=str(directory)), True)],
                self.module_env(self.ours.collections))
            failure = module_failed(out)
            if failure:
                raise RuntimeError(f"warming the layer cache with {module} failed: {failure}")
            self._warm[key] = directory
        return self._warm[key]

    # ------------------------------------------------------------ tasks

    def unused_tags(self, count):
        """The tags of the COUNT oldest builds no container uses, across repositories."""
        used = {c["image"] for c in self.spec["containers"]}  # ci_host names images, not tags
        tags = [self.built.images[i["name"]]["tags"][0] for i in self.spec["images"]
                if i["tags"] and i["name"] not in used]
        return tags[:count]

    def task_contenders(self, task):
        if task == "df":
            return [Contender(f"ours ({self.args.label})" if self.args.label != "current" else "ours", "ours",
                              (lambda: [sys.executable, str(self.ours.module("disk_usage_info")),
                                        self._args_file("ours", "disk_usage_info",
                                                        {"docker_host": self.proxy.docker_host}, True)]),
                              self.module_env(self.ours.collections)),
                    self.cli("docker system df", "system", "df"),
                    self.community("community.docker docker_host_info (disk_usage)", "docker_host_info",
                                   {"disk_usage": True})]
        if task == "audit":
            audit = {"images": True, "images_filters": {"dangling": False}, "containers": True}
            return self.ours_variants("prune", audit, check=True) + [
                self.community("community.docker docker_host_info (disk_usage, verbose_output)", "docker_host_info",
                               {"disk_usage": True, "verbose_output": True}),
                self.cli("docker system df -v", "system", "df", "-v")]
        if task == "remove":
            tags = self.unused_tags(20)
            return self.ours_variants("image_remove", {"name": tags}, check=False, destructive=True) + [
                self.cli("docker rmi (one call)", "rmi", *tags),
                self.community("community.docker docker_image_remove (x20)", "docker_image_remove", {}, times=tags)]
        if task == "prune":
            prune = {"images": True, "images_filters": {"dangling": False}, "containers": False}
            return self.ours_variants("prune", prune, check=False, destructive=True) + [
                self.cli("docker image prune -af", "image", "prune", "-a", "-f"),
                self.community("community.docker docker_prune", "docker_prune", prune)]
        raise ValueError(task)

    def run_once(self, task, contender, destructive) -> Sample:
        """One measured run; a failed one is noted and run again once (the modules may change under the bench)."""
        for attempt in (1, 2):
            if destructive:
                self.restore()
            command = contender.command()  # before the count: warming a cache is not the run's
            self.proxy.reset()
            try:
                wall, rss, out = measure(command, contender.env)
                # a module's failure is in its JSON (a chain of modules stops at a failure with its exit code)
                failure = module_failed(out) if command[0] == sys.executable else None
            except RuntimeError as exc:
                failure = str(exc)
            requests = self.proxy.reset()
            if not failure:
                return Sample(wall, rss, requests)
            self.notes.append(f"{task}: {contender.label} failed (attempt {attempt}): {failure[:500]}")
            print(f"   {contender.label} failed (attempt {attempt}): {failure[:2000]}", flush=True)
        raise RuntimeError(f"{task}: {contender.label} failed twice")

    def run_task(self, task):
        destructive = task in DESTRUCTIVE
        contenders = self.task_contenders(task)
        outcome = {}  # destructive tasks: the images each contender left, which must be the same for all
        began = time.monotonic()
        for run in range(self.args.destructive_runs if destructive else self.args.runs):
            shift = run % len(contenders)
            for contender in contenders[shift:] + contenders[:shift]:
                contender.samples.append(self.run_once(task, contender, destructive))
                if destructive:
                    outcome.setdefault(contender.label, set(self.fingerprint()["images"]))
        result = {"flavour": self.flavour, "images": self.n_images, "task": task,
                  "contenders": [c.result() for c in contenders]}
        self.results.append(result)
        print(report.task_lines(result, time.monotonic() - began), flush=True)
        if destructive:
            kept = {label: len(images) for label, images in outcome.items()}
            if len({frozenset(images) for images in outcome.values()}) > 1:
                self.notes.append(f"{task}: the contenders did not leave the same images: {kept}")
                print(f"   the contenders did not leave the same images: {kept}", flush=True)
            else:
                print(f"   every contender left the same {next(iter(kept.values()))} images", flush=True)

    def run(self):
        self.start()
        try:
            # The fleet task runs engines of its own (FleetBench), once, not per engine state.
            for task in [t for t in self.args.tasks if t != "fleet"]:
                if task in DESTRUCTIVE and self.n_images > self.args.destructive_max:
                    continue
                try:
                    self.run_task(task)
                except RuntimeError as exc:  # a contender failed twice: the other tasks still run
                    self.notes.append(f"{task}: not measured: {exc}")
                    print(f"-- {self.flavour} {self.n_images} images, {task}: not measured: {exc}", flush=True)
        finally:
            self.stop()
        return {"flavour": self.flavour, "images": self.n_images, "engine": self.engine_info,
                "build_seconds": self.build_seconds, "shape": shape(self.spec), "results": self.results,
                "notes": self.notes}


def shape(spec):
    images = spec["images"]
    containers = spec["containers"]
    return {"images": len(images), "dangling": sum(1 for i in images if not i["tags"]),
            "repositories": len(spec["layers"]), "containers": len(containers),
            "running": sum(1 for c in containers if c["state"] == "running")}


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines()
                   if line.startswith("MemTotal"))) // 1024 // 1024
    manifest = COMMUNITY / "docker" / "MANIFEST.json"
    community = json.loads(manifest.read_text())["collection_info"]["version"] if manifest.exists() else "?"
    try:
        from ansible.release import __version__ as ansible_core  # noqa: PLC0415 (only for its version)
    except ImportError:
        ansible_core = "?"
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": mem, "kernel": platform.release(),
            "python": platform.python_version(), "docker_sdk": docker.__version__, "ansible_core": ansible_core,
            "community_docker": community}


def plan(args):
    """[(flavour, images)] in the order they run."""
    pairs = []
    for flavour in args.flavours:
        sizes = args.images or DEFAULT_SIZES.get(flavour, DEFAULT_OTHER_SIZES)
        pairs += [(flavour, n) for n in sizes]
    return pairs


def fleet_label(label: str) -> str:
    return "fleet" if label == "current" else f"fleet-{label}"


def render(args):
    for name, make_block in ((args.label, report.block), (fleet_label(args.label), report.fleet_block)):
        path = ROOT / ".build" / "bench" / f"results-{name}.json"
        if not path.exists():
            continue
        saved = json.loads(path.read_text())
        block = make_block(saved["meta"], saved["runs"])
        print(block)
        if args.docs:
            report.write_docs(ROOT / "docs" / "benchmarks.md", name, block)
            print(f"docs/benchmarks.md: block {name} rewritten")
    return 0


def record(args, out: Path, label: str, meta: dict, runs, make_block):
    """Save RUNS and their block (LABEL's results when --docs writes the docs, else last-LABEL); print the block."""
    # Only a run that writes the docs replaces the results they were written from (which --render reads).
    name = f"results-{label}" if args.docs else f"last-{label}"
    (out / f"{name}.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    block = make_block(meta, runs)
    (out / f"{name}.md").write_text(block)
    print("\n" + block)
    if args.docs:
        report.write_docs(ROOT / "docs" / "benchmarks.md", label, block)
        print(f"docs/benchmarks.md: block {label} rewritten")
    print(f"written to {out / name}.md and .json")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--images", type=int, nargs="+", help="sizes for every flavour (default: 28.5 at 100 1000 "
                        "5000, the others at 1000)")
    parser.add_argument("--flavours", nargs="+", choices=engines.FLAVOURS, default=["28.5", "28.5-containerd"])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--runs", type=int, default=5, help="measured runs per contender (median, min-max)")
    parser.add_argument("--cache", nargs="+", choices=("cold", "warm"), default=["cold", "warm"],
                        help="our layer cache variants, where our module has the cache")
    parser.add_argument("--destructive-max", type=int, default=1000,
                        help="run remove and prune only up to this many images (each run reloads what it removed)")
    parser.add_argument("--destructive-runs", type=int, default=3,
                        help="measured runs per contender of remove and prune (each one reloads the images the "
                        "last removed: about 35 s for 940 images on the containerd store)")
    parser.add_argument("--fleet-sizes", type=int, nargs="+", default=list(FLEET_SIZES),
                        help="the fleet task's numbers of engines (default: 1 10 20)")
    parser.add_argument("--fleet-runs", type=int, default=3, help="measured runs per contender of the fleet task")
    parser.add_argument("--ours", type=Path, help="another checkout of reclaim.docker to measure as ours")
    parser.add_argument("--label", help="a name for this run's results (default: current, or the --ours "
                        "directory's name)")
    parser.add_argument("--docs", action="store_true", help="rewrite this label's block of docs/benchmarks.md")
    parser.add_argument("--render", action="store_true", help="measure nothing: write the blocks again from the "
                        "results the label's blocks were last written from (.build/bench/results-LABEL.json and "
                        "results-fleet-LABEL.json), after a change to report.py")
    args = parser.parse_args(argv)
    args.label = args.label or (args.ours.name if args.ours else "current")
    if args.render:
        return render(args)
    if engines.STATE_ROOT == Path("/tmp/reclaim-engines"):
        print(f"engines under {engines.STATE_ROOT} (set RECLAIM_ENGINE_STATE to keep them apart from others')")
    began, started = time.monotonic(), datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    runs, fleet = [], None
    out = ROOT / ".build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        ours = Ours(args.ours, Path(tmp))
        ours_at_start = ours.describe()
        if [t for t in args.tasks if t != "fleet"]:
            for flavour, n_images in plan(args):
                runs.append(Bench(flavour, n_images, args, ours, Path(tmp)).run())
                (out / f"partial-{args.label}.json").write_text(json.dumps(runs, indent=1))  # kept if a later one fails
            (out / f"partial-{args.label}.json").unlink()
        if "fleet" in args.tasks:
            fleet_began = time.monotonic()
            fleet = FleetBench(args, ours, Path(tmp)).run()
            fleet["seconds"] = time.monotonic() - fleet_began
        ours_description = ours.describe()
        if ours_description != ours_at_start:  # others work in the same tree
            ours_description = f"{ours_at_start} at the start, {ours_description} at the end"
    meta = {"label": args.label, "started": started.strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": time.monotonic() - began, "runs": args.runs, "machine": machine(), "ours": ours_description,
            "ours_path": str(args.ours.resolve()) if args.ours else None, "argv": argv or sys.argv[1:],
            "load": [load_before, os.getloadavg()], "destructive_max": args.destructive_max,
            "destructive_runs": args.destructive_runs, "fleet_runs": args.fleet_runs}
    if runs:
        record(args, out, args.label, meta, runs, report.block)
    if fleet:
        record(args, out, fleet_label(args.label), meta, fleet, report.fleet_block)
    print(f"{meta['seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
