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

``start(..., tls=True)`` also puts the daemon on ``tcp://127.0.0.1:PORT`` behind ``--tlsverify``, with a CA, a server
and a client certificate made by openssl (and a second, unrelated CA for the wrong-CA case); the unix socket stays.
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
    tls_port: int | None = None  # the TLS listener's port, when started with tls=True

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

    @property
    def tls_host(self) -> str | None:
        return f"tcp://127.0.0.1:{self.tls_port}" if self.tls_port else None

    @property
    def tls_dir(self) -> Path:
        """The certificates (see make_certificates); client/ is laid out for DOCKER_CERT_PATH."""
        return self.state_dir / "tls"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def as_dict(self) -> dict:
        return {"name": self.name, "flavour": self.flavour, "docker_host": self.docker_host,
                "data_root": str(self.data_root), "pid": self.pid(),
                **({"tls_host": self.tls_host, "tls_dir": str(self.tls_dir)} if self.tls_port else {})}

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
    if engine.tls_port:
        tls = engine.tls_dir
        cmd += ["-H", engine.tls_host, "--tlsverify", "--tlscacert", str(tls / "ca.pem"),
                "--tlscert", str(tls / "server-cert.pem"), "--tlskey", str(tls / "server-key.pem")]
    if engine.flavour == "20.10":
        # Its ID comes from a trust key, /etc/docker/key.json unless told (in daemon.json only): one per engine, kept
        # in its state as 28.5 keeps its engine-id in the data root.
        config = engine.state_dir / "daemon.json"
        config.write_text(json.dumps({"deprecated-key-path": str(engine.state_dir / "key.json")}))
        cmd += ["--config-file", str(config)]
    if engine.flavour == "28.5-containerd":
        cmd += ["--feature", "containerd-snapshotter=true"]
    else:
        cmd += ["--storage-driver", "overlay2"]
    return cmd


def _openssl(*args, cwd):
    _run(["openssl", *args], cwd=cwd, env=dict(os.environ))


def make_certificates(directory: Path):
    """In DIRECTORY: ca.pem, server-cert.pem and server-key.pem for the daemon (SAN IP:127.0.0.1, DNS:localhost);
    client/{ca,cert,key}.pem for a client, as the docker CLI finds them in DOCKER_CERT_PATH; other-ca.pem, a CA
    that signed neither."""
    client = directory / "client"
    client.mkdir(parents=True, exist_ok=True)
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=reclaim test {ca}",
                 "-keyout", f"{ca}-key.pem", "-out", f"{ca}.pem", cwd=directory)
    for name, subject, extensions in (
            ("server", "/CN=localhost", ["subjectAltName=IP:127.0.0.1,DNS:localhost", "extendedKeyUsage=serverAuth"]),
            ("client", "/CN=reclaim test client", ["extendedKeyUsage=clientAuth"])):
        (directory / f"{name}.ext").write_text("".join(line + "\n" for line in extensions))
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", f"{name}-key.pem",
                 "-out", f"{name}.csr", cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                 "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}-cert.pem", cwd=directory)
    shutil.copy(directory / "ca.pem", client / "ca.pem")
    shutil.copy(directory / "client-cert.pem", client / "cert.pem")
    shutil.copy(directory / "client-key.pem", client / "key.pem")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(flavour: str, name: str, state_root: Path = STATE_ROOT, timeout: float = 60, tls: bool = False) -> Engine:
    """Start one private daemon called NAME and wait until it answers; with TLS, also on a TLS port (see
    make_certificates)."""
    install(flavour)
    engine = Engine(name=name, flavour=flavour, state_dir=Path(state_root) / name)
    meta = engine.state_dir / "engine.json"
    if engine.pid() and _alive(engine.pid()) and engine.ping():
        engine.tls_port = json.loads(meta.read_text()).get("tls_port")
        if bool(engine.tls_port) == tls:
            return engine
        stop(engine)
    engine.state_dir.mkdir(parents=True, exist_ok=True)
    if tls:
        if not (engine.tls_dir / "client" / "key.pem").exists():
            make_certificates(engine.tls_dir)
        engine.tls_port = _free_port()
    meta.write_text(json.dumps({"name": name, "flavour": flavour, "tls_port": engine.tls_port}))
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


def forget_id(engine: Engine):
    """Remove a stopped daemon's ID (20.10: its trust key; 28.5: data-root/engine-id), so that it starts again on the
    same images as another engine: a host whose engine was replaced."""
    for path in (engine.state_dir / "key.json", engine.data_root / "engine-id"):
        path.unlink(missing_ok=True)


def crash(engine: Engine, timeout: float = 30):
    """SIGKILL the daemon and its own containerd (its process group) at once, keeping its state, as an OOM kill or a
    power cut leaves a host: nothing of the daemon gets to clean up. start() brings it back on the same state."""
    pid = engine.pid()
    if not pid or not _alive(pid):
        raise EngineError(f"dockerd {engine.name} is not running")
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    engine.pid_file.unlink(missing_ok=True)
    # The killed containerd stays a zombie where PID 1 does not reap orphans (this sandbox), and 20.10's dockerd takes
    # a pid that kill(pid, 0) still finds for a running containerd and waits for it forever. A host's init reaps it.
    (engine.state_dir / "exec" / "containerd" / "containerd.pid").unlink(missing_ok=True)


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
        engines.append(Engine(name=info["name"], flavour=info["flavour"], state_dir=meta.parent,
                              tls_port=info.get("tls_port")))
    return engines


def stop_all(state_root: Path = STATE_ROOT):
    for engine in running(state_root):
        stop(engine)
