"""A fleet of Docker hosts reached over SSH, as operators reach theirs: one sshd per host on the loopback, each in
front of its own private engine, a login user and a stock interpreter.

Users (created once on this machine, reused):

* ``reclaim-admin`` logs in and becomes root with sudo (no password), as most fleets are run;
* ``reclaim-member`` logs in and is in the ``docker`` group, the engine socket's group (dockerd's default
  ``--group``), so it needs no become.

Interpreters, as stock hosts have them: Debian's ``/usr/bin/python3`` (nothing installed for it but Debian's own
packages) and a bare pyenv 3.9 (nothing but pip and setuptools), both without the Docker SDK.

Each sshd takes keys only, from a file of the fleet's (``AuthorizedKeysFile``), and sets ``DOCKER_HOST`` for its
sessions to its engine's socket, so ``ssh://`` endpoints (``docker system dial-stdio``) reach that engine. Only sshd
processes started here are stopped, by the pid they wrote.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from . import engines

ADMIN = "reclaim-admin"
MEMBER = "reclaim-member"
SOCKET_GROUP = "docker"
SUDOERS = Path("/etc/sudoers.d/reclaim-test")
SYSTEM_PYTHON = "/usr/bin/python3"
SSHD = "/usr/sbin/sshd"


def pyenv_python39() -> str:
    """pyenv's Python 3.9 (its root is /root/.pyenv here; only root can reach it, so hosts using it become root)."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found = sorted(glob.glob(f"{root}/versions/3.9.*/bin/python3.9"))
    if not found:
        raise engines.EngineError(f"no pyenv Python 3.9 under {root}/versions")
    return found[-1]


def install():
    """openssh-server and sudo, from Debian (as .ci/run gets everything else)."""
    engines._apt_install("openssh-server", "sudo")  # pylint: disable=protected-access


def _run(*cmd):
    return engines._run(list(cmd), env=dict(os.environ))  # pylint: disable=protected-access


def _user_exists(name) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def prepare_users():
    """The two login users; idempotent. Their password is '*': no password works, but the account is not locked
    (sshd without PAM refuses a locked one, even for keys)."""
    subprocess.run(["groupadd", "-f", SOCKET_GROUP], check=True)
    for user, groups in ((ADMIN, []), (MEMBER, [SOCKET_GROUP])):
        if not _user_exists(user):
            _run("useradd", "--create-home", "--shell", "/bin/bash", *(["--groups", ",".join(groups)] if groups else []),
                 user)
        _run("usermod", "--password", "*", user)
    SUDOERS.write_text(f"{ADMIN} ALL=(ALL) NOPASSWD: ALL\n")
    SUDOERS.chmod(0o440)


@dataclasses.dataclass
class SSHHost:
    name: str
    port: int
    user: str
    become: bool
    interpreter: str
    engine: engines.Engine
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "sshd.pid"

    @property
    def ssh_url(self) -> str:
        """The host's engine as an ssh:// docker_host."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    def inventory_vars(self, key: Path) -> dict:
        """How Ansible reaches the host, as an operator's inventory says it."""
        return {"ansible_host": "127.0.0.1", "ansible_port": self.port, "ansible_user": self.user,
                "ansible_connection": "ssh", "ansible_ssh_private_key_file": str(key),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                "ansible_python_interpreter": self.interpreter, "ansible_become": self.become}


@dataclasses.dataclass
class Fleet:
    state_dir: Path
    hosts: dict

    @property
    def key(self) -> Path:
        return self.state_dir / "id_ed25519"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _sshd_config(host: SSHHost, fleet_dir: Path) -> str:
    return "\n".join([
        f"Port {host.port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {fleet_dir / 'host_ed25519'}",
        f"PidFile {host.pid_file}",
        f"AuthorizedKeysFile {fleet_dir / 'authorized_keys'}",
        # The fleet's files live under /tmp, which is world-writable: StrictModes would refuse them.
        "StrictModes no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        f"AllowUsers {ADMIN} {MEMBER}",
        "Subsystem sftp /usr/lib/openssh/sftp-server",
        f"SetEnv DOCKER_HOST={host.engine.docker_host}",
        "LogLevel VERBOSE",
        "",
    ])


def _alive(pid) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def start(specs, state_root: Path = engines.STATE_ROOT, name: str = "sshfleet") -> Fleet:
    """SPECS: [(host name, engine flavour, user, interpreter)]; become is used by ADMIN. Each host gets its own engine
    and sshd; every sshd takes the fleet's one key."""
    install()
    prepare_users()
    fleet_dir = Path(state_root) / name
    fleet_dir.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    fleet = Fleet(fleet_dir, {})
    if not fleet.key.exists():
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "reclaim test fleet", "-f", str(fleet.key))
    if not (fleet_dir / "host_ed25519").exists():
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(fleet_dir / "host_ed25519"))
    shutil.copy(f"{fleet.key}.pub", fleet_dir / "authorized_keys")
    for host_name, flavour, user, interpreter in specs:
        engine = engines.start(flavour, host_name, state_root=state_root)
        host = SSHHost(host_name, _free_port(), user, user == ADMIN, interpreter, engine, fleet_dir / host_name)
        host.state_dir.mkdir(exist_ok=True)
        config = host.state_dir / "sshd_config"
        config.write_text(_sshd_config(host, fleet_dir))
        log = host.state_dir / "sshd.log"
        subprocess.run([SSHD, "-f", str(config), "-E", str(log)], check=True)
        _wait_for_port(host)
        fleet.hosts[host_name] = host
    return fleet


def _wait_for_port(host: SSHHost, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", host.port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise engines.EngineError(f"sshd for {host.name} did not listen on {host.port}: "
                              f"{(host.state_dir / 'sshd.log').read_text(errors='replace')[-2000:]}")


def stop(fleet: Fleet):
    """Stop the fleet's sshd processes by the pids they wrote, then their engines."""
    for host in fleet.hosts.values():
        try:
            pid = int(host.pid_file.read_text().strip())
        except (OSError, ValueError):
            pid = None
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
        engines.stop(host.engine)
    shutil.rmtree(fleet.state_dir, ignore_errors=True)


def client_config(fleet: Fleet, user: str):
    """USER's own ssh client set up for the fleet (the fleet's key, host keys taken as they come), as an operator sets
    up a bastion, so that the docker CLI or a module there reaches another host's engine at ssh://."""
    home = Path(pwd.getpwnam(user).pw_dir)
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(fleet.key, ssh_dir / "id_ed25519")
    (ssh_dir / "config").write_text("Host 127.0.0.1 localhost\n  StrictHostKeyChecking no\n"
                                    "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
    for path in (ssh_dir, ssh_dir / "id_ed25519", ssh_dir / "config"):
        shutil.chown(path, user, user)
    (ssh_dir / "id_ed25519").chmod(0o600)


def ssh(fleet: Fleet, host: SSHHost, *command, become: bool = False) -> subprocess.CompletedProcess:
    """Run COMMAND on HOST over its sshd as its login user (with BECOME, through sudo, as root)."""
    command = ["sudo", "-n", *command] if become else list(command)
    return subprocess.run(
        ["ssh", "-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-i", str(fleet.key), "-p", str(host.port), "-l", host.user, "127.0.0.1", "--",
         shlex.join(command)], capture_output=True, text=True, check=False)
