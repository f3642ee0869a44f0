"""A stub engine for driving the real job runner in unit tests: it answers the Engine API calls our modules make from
a model Snapshot (make_snapshot, or a recorded one), records every call, and can be told to refuse or not answer.

Layers come from a layer cache written before the run (what a host that ran the modules before has), so that the
runner's pricing asks the stub nothing per image.
"""

from __future__ import annotations

import contextlib
import io
import json
from unittest import mock

from ansible_collections.reclaim.docker.plugins.module_utils._connection import APIError
from ansible_collections.reclaim.docker.plugins.module_utils._layer_cache import LayerCache
from ansible_collections.reclaim.docker.plugins.module_utils._runner import run_job

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19: the unit tests on Python 3.9 (make unit-3.9) run 2.15
    @contextlib.contextmanager
    def patch_module_args(args=None):
        from ansible.module_utils import basic  # pylint: disable=import-outside-toplevel
        with mock.patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()):
            yield

ENGINE_ID = "STUB:ENGINE:0001"
DOCKER_HOST = "unix:///stub/docker.sock"
# Docker's root dir as the stub reports it: a directory every host has, for the filesystem usage the modules read.
ROOT_DIR = "/"


class StubEngine:
    """The EngineClient of a model SNAPSHOT. REFUSE: {reference or ID: (status, message)}, answered to a DELETE of it;
    SILENT: the references whose DELETE gets no answer (an OSError, as a timeout); ROOT_DIR: Docker's root dir as it
    reports it (a directory a test lays out, for the jobs that read it)."""

    base_url = DOCKER_HOST
    api_version = "1.51"
    engine_version = "28.5.2"
    timeout = 60
    is_local = True

    def __init__(self, snapshot, refuse=None, silent=(), root_dir=ROOT_DIR):
        self.snapshot = snapshot
        self.root_dir = root_dir
        self.uses_containerd_store = snapshot.containerd_store
        self.refuse = dict(refuse or {})
        self.silent = set(silent)
        self.calls = []
        self.references = {i.id: set(i.references) for i in snapshot.images.values()}

    def info(self):
        return {"ID": ENGINE_ID, "Driver": "overlayfs" if self.uses_containerd_store else "overlay2",
                "DockerRootDir": self.root_dir}

    def facts(self):
        return dict(id=ENGINE_ID, version=self.engine_version, api_version=self.api_version,
                    image_store="containerd" if self.uses_containerd_store else "overlay2",
                    docker_root_dir=self.root_dir)

    @staticmethod
    def supports(minimum_api):
        return True

    def system_df(self, types):
        self.calls.append(("GET", "/system/df"))
        snapshot = self.snapshot
        images = [dict(Id=i.id, Size=i.size, SharedSize=i.shared_size, Containers=len(snapshot.containers_of(i.id)))
                  for i in snapshot.images.values()]
        containers = [dict(Id=c.id, State=c.state, SizeRw=c.size_rw) for c in snapshot.containers.values()]
        return {"LayersSize": sum(snapshot.layer_sizes.values()), "Images": images, "Containers": containers,
                "Volumes": [], "BuildCache": []}

    def events(self, since, until, filters):
        self.calls.append(("GET", "/events"))
        return []

    def get_json(self, path, params=None):
        return self.request("GET", path, params)

    def get_json_many(self, paths, workers):
        return [self.request("GET", path) for path in paths]

    def prune_build_cache(self, filters=None, keep_storage=None, prune_all=None):
        self.calls.append(("POST", "/build/prune"))
        return {"CachesDeleted": [], "SpaceReclaimed": 0}

    def request(self, method, path, params=None):
        self.calls.append((method, path))
        if method == "GET":
            return self._get(path)
        kind, _sep, name = path.lstrip("/").partition("/")
        if name in self.silent:
            raise TimeoutError("timed out")
        if name in self.refuse:
            status, message = self.refuse[name]
            raise APIError(f"{status} for {method} {path}", status, message)
        if kind == "images":
            return self._delete_image(name, params or {})
        return None

    def _get(self, path):
        snapshot = self.snapshot
        if path == "/images/json":
            return [dict(Id=i.id, RepoTags=list(i.repo_tags), RepoDigests=list(i.repo_digests), ParentId=i.parent_id,
                         Created=int(i.created), Size=i.size, SharedSize=i.shared_size, Labels=dict(i.labels))
                    for i in snapshot.images.values()]
        if path == "/containers/json":
            return [dict(Id=c.id, Names=["/" + c.name], ImageID=c.image_id, State=c.state, SizeRw=c.size_rw,
                         Created=int(c.created), Labels=dict(c.labels)) for c in snapshot.containers.values()]
        if path == "/networks":
            return []
        if path.startswith("/images/") and path.endswith("/json"):
            image = snapshot.images.get(path[len("/images/"):-len("/json")])
            if image is None:
                raise APIError(f"404 for GET {path}", 404, "No such image")
            return {"Id": image.id, "RepoTags": list(image.repo_tags), "RepoDigests": list(image.repo_digests)}
        raise AssertionError(f"the stub engine does not answer GET {path}")

    def _delete_image(self, reference, params):
        image_id = reference if reference in self.references else next(
            i for i, refs in self.references.items() if reference in refs)
        refs = self.references[image_id]
        records = []
        if reference != image_id:
            refs.discard(reference)
            records.append({"Untagged": reference})
        if reference == image_id or not any("@" not in r for r in refs):
            records += [{"Untagged": r} for r in sorted(refs)] + [{"Deleted": image_id}]
            refs.clear()
        return records


def cached_layers(directory, snapshot):
    """A layer cache in DIRECTORY holding every image of SNAPSHOT, as a host that ran the modules before has one."""
    cache = LayerCache.for_engine(str(directory), ENGINE_ID)
    for image_id, chains in snapshot.layers.items():
        cache.put(image_id, list(chains), [snapshot.layer_sizes[c] for c in chains])
    cache.save(set(snapshot.layers))
    assert not cache.problems, cache.problems
    return str(directory)


def run(job_class, engine, args, host_dir, check=False, diff=False):
    """JOB_CLASS's task on ENGINE (a StubEngine) with ARGS, through the real runner: its result, as Ansible gets it.
    The host's files (layer cache, lock, usage ledger) go under HOST_DIR, the layer cache holding ENGINE's layers."""
    out = io.StringIO()
    options = job_class.argument_spec().argument_spec
    cache = host_dir / "cache"
    host_files = dict(layer_cache_dir=lambda: cached_layers(cache, engine.snapshot) if engine else str(cache),
                      lock_dir=lambda: str(host_dir / "locks"), usage_ledger_dir=lambda: str(host_dir / "ledger"))
    module_args = {"docker_host": DOCKER_HOST, **{k: make() for k, make in host_files.items() if k in options}, **args,
                   "_ansible_check_mode": check, "_ansible_diff": diff}
    with patch_module_args(module_args), contextlib.redirect_stdout(out):
        try:
            # No ENGINE: the runner's own connect (a test that patches it).
            run_job(job_class, connect_engine=(lambda params: engine) if engine else None)
        except SystemExit:
            pass
    return json.loads(out.getvalue())
