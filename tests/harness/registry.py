"""A private image registry on the loopback: images that come from a registry, with the RepoDigests only a push or a
pull gives on overlay2 (a loaded image has none there).

Debian's ``docker-registry`` (distribution 2.8), started here with its own configuration, storage and a free port on
127.0.0.1, under the engines' state root.  The engines reach it over plain HTTP: Docker takes 127.0.0.0/8 as an
insecure registry by default, the containerd store too.  Only a registry started here is stopped, by the pid it got.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import engines

PACKAGE = "docker-registry"
BINARY = "/usr/bin/docker-registry"
_PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


class RegistryError(RuntimeError):
    pass


@dataclasses.dataclass
class Registry:
    state_dir: Path
    port: int

    @property
    def host(self) -> str:
        """The registry's part of a reference: 127.0.0.1:PORT."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "pid"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False


def _config(state_dir: Path, port: int) -> str:
    return json.dumps({  # YAML is a superset of JSON
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(state_dir / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    })


def install():
    engines._apt_install(PACKAGE)  # pylint: disable=protected-access


def start(name: str = "registry", state_root: Path = engines.STATE_ROOT, timeout: float = 30) -> Registry:
    """Start the registry NAME (or find it running) and wait until it answers."""
    install()
    state_dir = Path(state_root) / name
    meta = state_dir / "registry.json"
    if meta.exists():
        registry = Registry(state_dir, json.loads(meta.read_text())["port"])
        if registry.pid() and engines._alive(registry.pid()) and registry.ping():  # pylint: disable=protected-access
            return registry
        stop(registry)
    state_dir.mkdir(parents=True, exist_ok=True)
    registry = Registry(state_dir, engines._free_port())  # pylint: disable=protected-access
    meta.write_text(json.dumps({"name": name, "port": registry.port}))
    (state_dir / "config.yml").write_text(_config(state_dir, registry.port))
    log = open(state_dir / "registry.log", "ab")
    process = subprocess.Popen([BINARY, "serve", str(state_dir / "config.yml")], stdout=log, stderr=log,
                               start_new_session=True)
    registry.pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RegistryError(f"{BINARY} exited with {process.returncode}: see {state_dir / 'registry.log'}")
        if registry.ping():
            return registry
        time.sleep(0.2)
    stop(registry)
    raise RegistryError(f"{BINARY} did not answer on {registry.host} within {timeout}s")


def stop(registry: Registry):
    """Stop the registry by the pid it got, then delete its state."""
    pid = registry.pid()
    if pid and engines._alive(pid):  # pylint: disable=protected-access
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while engines._alive(pid) and time.monotonic() < deadline:  # pylint: disable=protected-access
            time.sleep(0.1)
        if engines._alive(pid):  # pylint: disable=protected-access
            os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(registry.state_dir, ignore_errors=True)


def stop_all(state_root: Path = engines.STATE_ROOT):
    for meta in sorted(Path(state_root).glob("*/registry.json")):
        stop(Registry(meta.parent, json.loads(meta.read_text())["port"]))


def push(api, source: str, reference: str) -> str:
    """Tag SOURCE (a reference or an image ID) as REFERENCE (REGISTRY/REPO:TAG) and push it; the pushed manifest's
    digest (the engines say it in the push's progress)."""
    repository, tag = reference.rsplit(":", 1)
    api.tag(source, repository, tag)
    progress = [json.loads(line) for line in api.push(repository, tag=tag, stream=False).splitlines() if line.strip()]
    errors = [p["error"] for p in progress if "error" in p]
    digests = [m.group(1) for p in progress for m in [_PUSHED_DIGEST.search(p.get("status") or "")] if m]
    if errors or not digests:
        raise RegistryError(f"push of {reference} failed: {errors or progress}")
    return digests[-1]


def pull(api, reference: str) -> str:
    """Pull REFERENCE (REGISTRY/REPO:TAG or REGISTRY/REPO@DIGEST); the ID of the image it names."""
    if "@" in reference:
        repository, tag = reference.split("@", 1)
    else:
        repository, tag = reference.rsplit(":", 1)
    progress = [json.loads(line) for line in api.pull(repository, tag=tag).splitlines() if line.strip()]
    errors = [p["error"] for p in progress if "error" in p]
    if errors:
        raise RegistryError(f"pull of {reference} failed: {errors}")
    return api.inspect_image(reference)["Id"]


def pulled(api, source: str, references: list) -> str:
    """SOURCE (a reference or an image ID) as an image pulled from the registry under each of REFERENCES
    (REGISTRY/REPO:TAG), and only so: pushed under each, every local reference of it removed, then pulled. Returns
    its ID (on the containerd store, the digest of the pushed manifest)."""
    image_id = api.inspect_image(source)["Id"]
    for reference in references:
        push(api, image_id, reference)
    api.remove_image(image_id, force=True)
    return [pull(api, reference) for reference in references][-1]
