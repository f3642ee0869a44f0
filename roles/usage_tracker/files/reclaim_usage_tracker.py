# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""reclaim.docker's usage tracker: follows a Docker engine's container and volume events into the usage ledger, so that
every use of an image or a volume counts, also of containers created and removed between two module runs
(`docker run --rm`).

Installed by the role reclaim.docker.usage_tracker next to the collection's ledger code (the ansible_collections tree
beside this file) and run by systemd (Type=notify: READY=1, WATCHDOG=1 from the main loop, STOPPING=1). Standard
library only. Uses are written at most once a second, merged with what module runs write (latest use wins).

When the event stream ends or stays quiet for --read-timeout seconds, it connects again, reads the engine's ID again
(the engine may have been replaced: its uses then go to that engine's ledger) and asks for the events since the last
one it saw; an engine that cannot be reached is tried again after 1 s, doubling to 60 s, and the outage is logged
once, when it starts and when it ends. Exit status: 0 after SIGTERM or SIGINT (the last uses written), 1 when the
ledger cannot be written or read (systemd restarts it; the message says why), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import socket
import sys
import threading
import time
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The collection's own code, installed beside this file: one ledger format and one Engine API client for both.
from ansible_collections.reclaim.docker.plugins.module_utils._transport import (  # noqa: E402  pylint: disable=wrong-import-position
    APIError,
    Transport,
    split_endpoint,
)
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import (  # noqa: E402  pylint: disable=wrong-import-position
    UsageLedger,
    event_uses,
    event_volume_uses,
)

SCHEMES = ("unix", "tcp", "http")
TICK_SECONDS = 1.0  # the main loop turns at least this often: uses written, watchdog told
CALL_TIMEOUT = 10
READ_TIMEOUT = 60.0
BACKOFF_FIRST, BACKOFF_LAST = 1.0, 60.0
EXIT_LEDGER = 1


def log(message):
    print(message, file=sys.stderr, flush=True)


class LedgerFailed(Exception):
    """The ledger cannot be written or read: the tracker exits non-zero rather than run without recording."""


class Notifier:
    """sd_notify(3) with the standard library: a datagram per message to $NOTIFY_SOCKET (nothing when it is unset, as
    when not run by systemd). WATCHDOG=1 only when systemd asks for it ($WATCHDOG_USEC, for this process), at most four
    times per interval."""

    def __init__(self, environ):
        address = environ.get("NOTIFY_SOCKET") or ""
        self.address = "\0" + address[1:] if address.startswith("@") else address  # '@': the abstract namespace
        usec, pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID")
        wanted = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self.watchdog_interval = int(usec) / 4e6 if wanted else None
        self.last_ping = None
        self.socket = None
        self.failed = False

    def send(self, message):
        if not self.address:
            return
        try:
            if self.socket is None:
                self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.socket.sendto(message.encode("utf-8"), self.address)
        except OSError as exc:
            if not self.failed:
                log(f"Cannot notify systemd at {self.address!r}: {exc}")
                self.failed = True

    def watchdog(self):
        now = time.monotonic()
        if self.watchdog_interval is not None and (self.last_ping is None or now - self.last_ping >= self.watchdog_interval):
            self.send("WATCHDOG=1")
            self.last_ping = now


class Tracker:
    """One engine's event stream into its ledger. The main thread (run) connects, handles the events a reader thread
    passes it, writes the uses and tells systemd it is alive; the reader thread only reads the stream."""

    def __init__(self, docker_host, ledger_dir, read_timeout, notifier):
        self.docker_host = docker_host
        self.ledger_dir = ledger_dir
        self.read_timeout = read_timeout
        self.notifier = notifier
        self.transport = Transport(docker_host, CALL_TIMEOUT)
        self.stopping = threading.Event()
        self.engine_id = None
        self.ledger = None
        self.images_of = {}  # container ID -> image ID, learnt at create and start
        # Container ID -> the volumes it mounts, learnt at create and start and from its volumes' mount events: all
        # that tells them at its destroy event (a `--rm` container may be gone before it can be inspected).
        self.volumes_of = {}
        self.pending = {}
        self.pending_volumes = {}
        self.events_until = None  # the time of the last event handled
        self.written_until = None
        self.since = None  # where the next stream starts
        self.items = queue.Queue()
        self.stream = 0  # the current stream's number: items of an older one are dropped
        self.connected = False
        self.next_connect = 0.0
        self.failures = 0
        self.outage_since = None
        self.ready = False

    def run(self):
        """Until stopped; raises LedgerFailed."""
        last_flush = time.monotonic()
        while not self.stopping.is_set():
            if not self.connected and time.monotonic() >= self.next_connect:
                self.connect()
            try:
                self.take(self.items.get(timeout=TICK_SECONDS))
            except queue.Empty:
                pass
            if time.monotonic() - last_flush >= TICK_SECONDS:
                self.flush()
                last_flush = time.monotonic()
            self.notifier.watchdog()
        self.notifier.send("STOPPING=1")
        self.flush()

    # Connecting

    def connect(self):
        try:
            info = self.transport.request("GET", "/info")
        except (OSError, APIError, ValueError) as exc:
            self.failed(exc)
            return
        if self.outage_since is not None:
            log(f"The engine at {self.docker_host} answers again, after {time.monotonic() - self.outage_since:.0f} s.")
            self.outage_since = None
        engine_id = info.get("ID") if isinstance(info, dict) else None
        engine_id = engine_id if isinstance(engine_id, str) and engine_id else self.docker_host
        if engine_id != self.engine_id:
            self.follow(engine_id)
        self.stream += 1
        threading.Thread(target=self.read, args=(self.stream, self.since), daemon=True).start()
        self.connected = True
        self.tell_ready()

    def follow(self, engine_id):
        """Write what the previous engine's ledger is owed, then take ENGINE_ID's (written at once: a ledger that
        cannot be written is found now, not at the first use)."""
        if self.ledger is not None:
            self.flush()
        ledger = UsageLedger.for_engine(self.ledger_dir, engine_id)
        written = ledger.record({}, now=time.time())
        self.report(ledger)
        if not written:
            raise LedgerFailed()
        if self.engine_id is None:
            log(f"Following the container events of {self.docker_host} (engine {engine_id}) into {ledger.path}.")
        else:
            log(f"The engine at {self.docker_host} is now engine {engine_id}, not {self.engine_id}: following it into "
                f"{ledger.path}.")
        self.engine_id, self.ledger, self.images_of, self.volumes_of = engine_id, ledger, {}, {}
        self.since = ledger.events_until or self.since or int(time.time())
        self.events_until = self.written_until = ledger.events_until
        self.notifier.send(f"STATUS=Following {self.docker_host} (engine {engine_id}) into {ledger.path}")

    def failed(self, reason):
        """A connection failed: log the outage once, try again later (1 s, doubling to 60 s)."""
        self.connected = False
        self.stream += 1
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            log(f"The engine at {self.docker_host} cannot be reached ({reason}); trying again after "
                f"{BACKOFF_FIRST:.0f} s, then doubling up to {BACKOFF_LAST:.0f} s.")
            self.notifier.send(f"STATUS=Waiting for the engine at {self.docker_host}: {reason}")
        self.next_connect = time.monotonic() + min(BACKOFF_FIRST * 2 ** self.failures, BACKOFF_LAST)
        self.failures += 1
        self.tell_ready()  # up and waiting: the first attempt has been made

    def tell_ready(self):
        if not self.ready:
            self.notifier.send("READY=1")
            self.ready = True

    # The stream

    def read(self, stream, since):
        """The reader thread: each event of the stream, then how it ended."""
        delivered, ended = 0, None
        try:
            for event in self.transport.stream("/events", {"since": int(since),
                                                           "filters": {"type": ["container", "volume"]}},
                                               read_timeout=self.read_timeout):
                self.items.put(("event", stream, event))
                delivered += 1
                if stream != self.stream:
                    return
        except (OSError, APIError, ValueError) as exc:
            ended = exc
        self.items.put(("end", stream, ended, delivered))

    def take(self, item):
        kind, stream = item[0], item[1]
        if stream != self.stream:
            return
        if kind == "event":
            try:
                self.handle(item[2])
            except (OSError, APIError, ValueError) as exc:
                self.failed(exc)  # the rest of this stream is dropped; the next one starts at this event again
            else:
                self.failures = 0
            return
        ended, delivered = item[2], item[3]
        self.connected = False
        if isinstance(ended, socket.timeout):
            self.failures = 0  # a quiet stream: open it again, silently
        elif ended is not None or not delivered:
            self.failed(ended or "the event stream ended")

    def handle(self, event):
        actor = event.get("Actor") or {}
        actor_id = actor.get("ID") or event.get("id")
        container = (actor.get("Attributes") or {}).get("container")
        if event.get("Type") == "volume" and container:
            self.volumes_of.setdefault(container, set()).add(actor_id)
        known = self.images_of.get if event.get("Action") in ("die", "destroy") else self.image_of_container
        uses = event_uses([event], known, self.resolve)
        volume_uses = event_volume_uses([event], lambda container_id: self.volumes_of.get(container_id, ()))
        if event.get("Type") == "container" and event.get("Action") == "destroy":
            self.images_of.pop(actor_id, None)
            self.volumes_of.pop(actor_id, None)
        for pending, found in ((self.pending, uses), (self.pending_volumes, volume_uses)):
            for key, seen in found.items():
                pending[key] = max(seen, pending.get(key, seen))
        self.events_until = int(event.get("time") or 0) or self.events_until
        self.since = self.events_until or self.since

    def get_json(self, path):
        """GET PATH from the engine: its JSON, or None for a 404."""
        try:
            return self.transport.request("GET", path)
        except APIError as exc:
            if exc.status_code == 404:
                return None
            raise

    def image_of_container(self, container_id):
        """Its image; inspected once, which also tells the volumes it mounts."""
        if container_id not in self.images_of:
            found = self.get_json(f"/containers/{quote(container_id, safe='')}/json")
            self.images_of[container_id] = found.get("Image") if found else None
            self.volumes_of.setdefault(container_id, set()).update(
                m["Name"] for m in (found or {}).get("Mounts") or () if m.get("Type") == "volume" and m.get("Name"))
        return self.images_of[container_id]

    def resolve(self, reference):
        found = self.get_json(f"/images/{quote(reference, safe='/:@')}/json") if reference else None
        return found.get("Id") if found else None

    # The ledger

    def flush(self):
        if self.ledger is None or (not self.pending and not self.pending_volumes
                                   and self.events_until == self.written_until):
            return
        pending, pending_volumes, self.pending, self.pending_volumes = self.pending, self.pending_volumes, {}, {}
        written = self.ledger.record(pending, events_until=self.events_until, now=time.time(),
                                     volume_uses=pending_volumes)
        self.report(self.ledger)
        if not written:
            raise LedgerFailed()
        self.written_until = self.events_until

    @staticmethod
    def report(ledger):
        for problem in ledger.problems:
            log(problem)
        ledger.problems = []


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
                        help="the engine, unix:///path or tcp://host:port (default: $DOCKER_HOST, else the local socket)")
    parser.add_argument("--ledger-dir", default=None,
                        help="the ledger's directory: the modules' usage_ledger_dir (default: theirs, for this user)")
    parser.add_argument("--read-timeout", type=float, default=READ_TIMEOUT,
                        help=f"seconds a quiet event stream is kept before it is opened again (default {READ_TIMEOUT:.0f})")
    args = parser.parse_args(argv)
    try:
        scheme = split_endpoint(args.docker_host)[0]
    except ValueError as exc:
        parser.error(f"--docker-host: {exc}")
    if scheme not in SCHEMES:
        parser.error(f"--docker-host: {scheme}:// is not followed; unix:// or tcp:// (plain HTTP) only")
    if args.read_timeout <= 0:
        parser.error("--read-timeout: a number of seconds above 0")
    tracker = Tracker(args.docker_host, args.ledger_dir, args.read_timeout, Notifier(os.environ))

    def stop(*_signal):
        tracker.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        tracker.run()
    except LedgerFailed:
        log(f"Stopped: the usage ledger in {tracker.ledger_dir or 'the default directory'} cannot be used (see above).")
        return EXIT_LEDGER
    return 0


if __name__ == "__main__":
    sys.exit(main())
