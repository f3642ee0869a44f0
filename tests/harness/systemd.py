"""systemd for tests on a machine whose PID 1 is not systemd: a stand-in `systemctl` for ansible.builtin.systemd_service,
a unit's service run as systemd would run it (its User=, Group= and ExecStart=, with NOTIFY_SOCKET and WATCHDOG_USEC),
the notification socket it talks to, and `systemd-analyze security --offline` for a unit file.

The stand-in keeps each unit's state (enabled, active) in a JSON file and records every call. It answers `show`,
`is-enabled`, `enable`, `disable`, `start`, `stop`, `restart` and `daemon-reload` as systemd 252 does, for the unit
files in the one directory it is given: a unit whose file is not there is `not-found`, and acting on it fails.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

STUB = r'''#!{python}
import json, os, sys
from pathlib import Path

home = Path({home!r})
units = Path({units!r})
state_file = home / "state.json"
with open(home / "calls.jsonl", "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\n")
state = json.loads(state_file.read_text()) if state_file.exists() else {{}}
args = [a for a in sys.argv[1:] if not a.startswith("-")]


def unit_name(name):
    return name if "." in name else name + ".service"


def save():
    state_file.write_text(json.dumps(state))


if not args:
    sys.exit(0)
command, names = args[0], [unit_name(n) for n in args[1:]]
if command == "daemon-reload":
    sys.exit(0)
for name in names:
    known = (units / name).is_file()
    unit = state.setdefault(name, {{"enabled": False, "active": False}})
    if command == "show":
        print(f"Id={{name}}")
        print(f"LoadState={{'loaded' if known else 'not-found'}}")
        print(f"ActiveState={{'active' if unit['active'] else 'inactive'}}")
        print(f"SubState={{'running' if unit['active'] else 'dead'}}")
        if known:
            print(f"UnitFileState={{'enabled' if unit['enabled'] else 'disabled'}}")
            print(f"FragmentPath={{units / name}}")
    elif command == "is-enabled":
        if not known:
            print(f"Failed to get unit file state for {{name}}: No such file or directory", file=sys.stderr)
            sys.exit(1)
        print("enabled" if unit["enabled"] else "disabled")
        sys.exit(0 if unit["enabled"] else 1)
    elif command == "list-unit-files":
        sys.exit(0 if known else 1)
    elif command in ("enable", "disable"):
        if not known:
            print(f"Failed to {{command}} unit: Unit file {{name}} does not exist.", file=sys.stderr)
            sys.exit(1)
        unit["enabled"] = command == "enable"
    elif command in ("start", "restart", "stop"):
        if not known and command != "stop":
            print(f"Failed to {{command}} {{name}}: Unit {{name}} not found.", file=sys.stderr)
            sys.exit(5)
        unit["active"] = command != "stop"
    else:
        print(f"stub systemctl: {{command}} is not modelled", file=sys.stderr)
        sys.exit(1)
save()
'''


class StubSystemctl:
    """A `systemctl` in HOME/bin for the unit files in UNITS; put env()["PATH"] first on the module's PATH."""

    def __init__(self, home: Path, units: Path):
        self.home = home
        (home / "bin").mkdir(parents=True, exist_ok=True)
        script = home / "bin" / "systemctl"
        script.write_text(STUB.format(python=sys.executable, home=str(home), units=str(units)))
        script.chmod(0o755)

    @property
    def path(self) -> str:
        return f"{self.home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"

    def calls(self) -> list:
        """Each call's arguments, in order (its options left out)."""
        try:
            lines = (self.home / "calls.jsonl").read_text().splitlines()
        except FileNotFoundError:
            return []
        return [[arg for arg in json.loads(line) if not arg.startswith("-")] for line in lines]

    def actions(self) -> list:
        """The calls that change something (what systemd was told to do)."""
        return [call for call in self.calls() if call and call[0] not in ("show", "is-enabled", "list-unit-files")]

    def forget_calls(self):
        (self.home / "calls.jsonl").unlink(missing_ok=True)

    def state(self, unit: str) -> dict:
        return json.loads((self.home / "state.json").read_text()).get(unit, {})


def unit_settings(text: str) -> dict:
    """A unit file's settings: {name: [value, ...]} over all its sections, in order."""
    settings = {}
    for line in text.splitlines():
        match = re.match(r"([A-Za-z]+)=(.*)$", line)
        if match:
            settings.setdefault(match.group(1), []).append(match.group(2))
    return settings


def seconds(value: str) -> float:
    """A systemd time span of the kinds our units use: 60, 60s, 2min."""
    match = re.fullmatch(r"(\d+)\s*(s|sec|min)?", value.strip())
    return float(match.group(1)) * (60 if match.group(2) == "min" else 1)


class NotifySocket:
    """The datagram socket systemd listens on for sd_notify messages (NOTIFY_SOCKET), here for the test to read; in
    DIRECTORY, which the service's user must reach."""

    def __init__(self, directory: Path):
        self.path = directory / "notify"
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(self.path))
        self.path.chmod(0o666)  # the service's user sends to it
        self.received = []

    def read(self, timeout: float) -> list:
        """What arrived within TIMEOUT seconds (every message so far)."""
        deadline = time.monotonic() + timeout
        self.socket.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                self.received.append(self.socket.recv(4096).decode())
            except socket.timeout:
                continue
        return self.received

    def wait_for(self, message: str, timeout: float = 20, after: int = 0) -> bool:
        """Whether MESSAGE (a line of a datagram) arrives, among the messages from index AFTER on, within TIMEOUT."""
        deadline = time.monotonic() + timeout
        self.socket.settimeout(0.1)
        while True:
            if any(message in datagram.splitlines() for datagram in self.received[after:]):
                return True
            if time.monotonic() >= deadline:
                return False
            try:
                self.received.append(self.socket.recv(4096).decode())
            except socket.timeout:
                pass

    def close(self):
        self.socket.close()
        self.path.unlink(missing_ok=True)


def run_service(unit_text: str, notify: NotifySocket | None, replace: dict | None = None, extra_args=(),
                watchdog_seconds: float | None = None) -> subprocess.Popen:
    """Start the unit's ExecStart= as systemd would: as its User= and Group= (with the user's other groups, as
    initgroups gives them), with NOTIFY_SOCKET and WATCHDOG_USEC (its WatchdogSec=, or WATCHDOG_SECONDS) set.
    REPLACE: {text: new text} in the command line (a placeholder engine for the test's); EXTRA_ARGS appended."""
    settings = unit_settings(unit_text)
    command = settings["ExecStart"][-1]
    for old, new in (replace or {}).items():
        command = command.replace(old, new)
    user = pwd.getpwnam(settings.get("User", ["root"])[-1])
    group = grp.getgrnam(settings["Group"][-1]).gr_gid if "Group" in settings else user.pw_gid
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    if notify is not None:
        env["NOTIFY_SOCKET"] = str(notify.path)
    watchdog = watchdog_seconds if watchdog_seconds is not None else \
        seconds(settings["WatchdogSec"][-1]) if "WatchdogSec" in settings else None
    if watchdog:
        env["WATCHDOG_USEC"] = str(int(watchdog * 1e6))
    return subprocess.Popen(command.split() + list(extra_args), user=user.pw_uid, group=group,
                            extra_groups=os.getgrouplist(user.pw_name, group), env=env, cwd="/",
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def security(unit_path: Path) -> tuple:
    """`systemd-analyze security --offline=true UNIT`: (the overall exposure, its rating) and the whole report."""
    report = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit_path)],
                            capture_output=True, text=True, check=False)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", report.stdout)
    assert match, report.stdout + report.stderr
    return (float(match.group(1)), match.group(2)), report.stdout
