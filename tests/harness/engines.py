"""Install and run private Docker engines for tests, benchmarks and the demo.

Three flavours, all from Debian's packages:

* ``20.10``: Debian stable's ``docker.io`` (API 1.41, overlay2).
* ``28.5``: Debian sid's ``docker.io`` and ``containerd`` unpacked into a private
  prefix (API 1.51, overlay2).  Stable's ``runc`` is kept: sid's needs a newer glibc.
* ``28.5-containerd``: the same binaries with the containerd image store, the
  default of Docker 29.

Every daemon gets its own data root, exec root and socket under one state
directory, so several run at once and make a fleet on one machine.  Only
daemons started here are stopped, by the pid they wrote.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

FLAVOURS = ("20.10", "28.5", "28.5-containerd")

# Outside the work tree: survives a fresh clone on the same machine, never committed.
PREFIX_28 = Path(os.environ.get("RECLAIM_ENGINE_PREFIX", "/var/cache/reclaim/docker-28.5"))
# Unix socket paths are limited to 108 bytes: keep the state root short.
STATE_ROOT = Path(os.environ.get("RECLAIM_ENGINE_STATE", "/tmp/reclaim-engines"))

SID_PACKAGES = ("docker.io", "containerd", "docker-buildx")
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


class EngineError(RuntimeError):
    pass


def _run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, env=kwargs.pop("env", APT_ENV), check=False, **kwargs)
    if result.returncode != 0:
        raise EngineError(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def _apt_install(*packages):
    missing = [p for p in packages if subprocess.run(["dpkg", "-s", p], capture_output=True, check=False).returncode != 0]
    if not missing:
        return
    lists = Path("/var/lib/apt/lists")
    if not any(lists.glob("*_Packages*")):
        _run(["apt-get", "update", "-qq"])
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing])


def _install_sid_prefix(prefix: Path):
    """Unpack sid's docker.io, containerd and buildx into PREFIX without touching dpkg's state."""
    work = prefix.parent / (prefix.name + ".apt")
    (work / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (work / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    sources = work / "sid.list"
    sources.write_text("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main\n")
    opts = [
        f"-oDir::Etc::SourceList={sources}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={work / 'lists'}",
        f"-oDir::Cache={work / 'cache'}",
    ]
    _run(["apt-get", *opts, "update", "-qq"])
    debs = work / "debs"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir()
    _run(["apt-get", *opts, "download", *SID_PACKAGES], cwd=debs)
    staging = prefix.parent / (prefix.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg", "-x", str(deb), str(staging)])
    shutil.rmtree(prefix, ignore_errors=True)
    staging.rename(prefix)


def install(flavour: str):
    """Make FLAVOUR's binaries available; a no-op when they already are."""
    if flavour not in FLAVOURS:
        raise EngineError(f"unknown flavour {flavour!r}; choose one of {', '.join(FLAVOURS)}")
    # Stable's docker.io brings containerd and runc; busybox-static gives images a shell.
    _apt_install("docker.io", "runc", "busybox-static", "iproute2")
    if flavour != "20.10" and not (PREFIX_28 / "usr" / "sbin" / "dockerd").exists():
        PREFIX_28.parent.mkdir(parents=True, exist_ok=True)
        _install_sid_prefix(PREFIX_28)


def engine_env(flavour: str) -> dict:
    env = dict(os.environ)
    if flavour != "20.10":
        env["PATH"] = f"{PREFIX_28}/usr/bin:{PREFIX_28}/usr/sbin:{PREFIX_28}/usr/libexec/docker/cli-plugins:{env['PATH']}"
    else:
        env["PATH"] = f"/usr/sbin:/usr/bin:{env['PATH']}"
    return env


def cli_plugins_dir(flavour: str) -> Path | None:
    """Where buildx lives for FLAVOUR (sid's plugin also drives the 20.10 daemon's BuildKit)."""
    path = PREFIX_28 / "usr" / "libexec" / "docker" / "cli-plugins"
    return path if path.exists() else None


@dataclasses.dataclass
class Engine:
    name: str
    flavour: str
    state_dir: Path

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "pid"

    @property
    def data_root(self) -> Path:
        return self.state_dir / "root"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def as_dict(self) -> dict:
        return {"name": self.name, "flavour": self.flavour, "docker_host": self.docker_host,
                "data_root": str(self.data_root), "pid": self.pid()}

    def ping(self) -> bool:
        try:
            return api_get(self.socket_path, "/_ping", timeout=2) == b"OK"
        except OSError:
            return False


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def api_request(socket_path, method, path, timeout=10) -> bytes:
    conn = _UnixHTTPConnection(socket_path, timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.read()
    finally:
        conn.close()


def api_get(socket_path, path, timeout=10) -> bytes:
    return api_request(socket_path, "GET", path, timeout)


def _daemon_command(engine: Engine) -> list:
    d = engine.state_dir
    cmd = [
        "dockerd",
        "--data-root", str(d / "root"),
        "--exec-root", str(d / "exec"),
        "-H", engine.docker_host,
        "--pidfile", str(engine.pid_file),
        "--bridge=none", "--iptables=false", "--ip-masq=false",
    ]
    if engine.flavour == "28.5-containerd":
        cmd += ["--feature", "containerd-snapshotter=true"]
    else:
        cmd += ["--storage-driver", "overlay2"]
    return cmd


def start(flavour: str, name: str, state_root: Path = STATE_ROOT, timeout: float = 60) -> Engine:
    """Start one private daemon called NAME and wait until it answers."""
    install(flavour)
    engine = Engine(name=name, flavour=flavour, state_dir=Path(state_root) / name)
    if engine.pid() and _alive(engine.pid()) and engine.ping():
        return engine
    engine.state_dir.mkdir(parents=True, exist_ok=True)
    (engine.state_dir / "engine.json").write_text(json.dumps({"name": name, "flavour": flavour}))
    log = open(engine.state_dir / "dockerd.log", "ab")
    process = subprocess.Popen(_daemon_command(engine), stdout=log, stderr=log, env=engine_env(flavour),
                               start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineError(f"dockerd {name} ({flavour}) exited with {process.returncode}:\n{_tail(engine)}")
        if engine.ping():
            return engine
        time.sleep(0.2)
    stop(engine)
    raise EngineError(f"dockerd {name} ({flavour}) did not answer within {timeout}s:\n{_tail(engine)}")


def _tail(engine: Engine, lines=30) -> str:
    try:
        return "\n".join((engine.state_dir / "dockerd.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our child: an unreaped daemon would look alive until the timeout.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _remove_networks(engine: Engine):
    """Delete the engine's own networks: a stopped daemon leaves their bridges on the host, and every
    bridge takes one of the host's few predefined address pools."""
    try:
        networks = json.loads(api_get(engine.socket_path, "/networks"))
    except (OSError, ValueError):
        return
    for network in networks:
        if network.get("Name") not in ("bridge", "host", "none"):
            api_request(engine.socket_path, "DELETE", f"/networks/{network['Id']}")


def stop(engine: Engine, remove_state: bool = True, timeout: float = 30):
    """Stop the daemon by the pid it wrote, then unmount and delete its state."""
    pid = engine.pid()
    if pid and _alive(pid):
        _remove_networks(engine)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    if remove_state:
        _unmount_below(engine.state_dir)
        shutil.rmtree(engine.state_dir, ignore_errors=True)


def kill_daemon_only(engine: Engine):
    """Stop a daemon but keep its state: a host whose engine is down."""
    stop(engine, remove_state=False)


def _unmount_below(path: Path):
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        targets = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def running(state_root: Path = STATE_ROOT) -> list:
    engines = []
    for meta in sorted(Path(state_root).glob("*/engine.json")):
        info = json.loads(meta.read_text())
        engines.append(Engine(name=info["name"], flavour=info["flavour"], state_dir=meta.parent))
    return engines


def stop_all(state_root: Path = STATE_ROOT):
    for engine in running(state_root):
        stop(engine)
