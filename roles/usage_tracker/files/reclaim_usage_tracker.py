# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""reclaim.docker's usage tracker: follows a Docker engine's container events into the usage ledger, so that every
use of an image counts, also of containers created and removed between two module runs (`docker run --rm`).

Installed by the role reclaim.docker.usage_tracker next to the collection's ledger code (the ansible_collections tree
beside this file) and run by systemd. Standard library only. Uses are written at most once a second, merged with what
module runs write (latest use wins); on SIGTERM or SIGINT the last ones are written and it exits 0. When the stream
ends (the daemon restarted), it connects again and asks for the events since the last one it saw.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The collection's own code, installed beside this file: one ledger format and one Engine API client for both.
from ansible_collections.reclaim.docker.plugins.module_utils._transport import (  # noqa: E402  pylint: disable=wrong-import-position
    APIError,
    Transport,
)
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import (  # noqa: E402  pylint: disable=wrong-import-position
    UsageLedger,
    event_uses,
)

FLUSH_SECONDS = 1.0
RECONNECT_SECONDS = 2.0
CALL_TIMEOUT = 30


class Stopped(Exception):
    """SIGTERM or SIGINT: raised in the main thread, so that a read waiting for the next event ends too."""


def get_json(transport, path):
    """GET PATH from the engine: its JSON, or None for a 404."""
    try:
        return transport.request("GET", path)
    except APIError as exc:
        if exc.status_code == 404:
            return None
        raise


class Tracker:
    def __init__(self, docker_host, ledger_dir):
        self.docker_host = docker_host
        self.transport = Transport(docker_host, CALL_TIMEOUT)
        info = get_json(self.transport, "/info")
        self.ledger = UsageLedger.for_engine(ledger_dir, info.get("ID") or docker_host)
        self.images_of = {}  # container ID -> image ID, learnt at create and start
        self.pending = {}
        self.events_until = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def image_of_container(self, container_id):
        if container_id not in self.images_of:
            found = get_json(self.transport, f"/containers/{quote(container_id, safe='')}/json")
            self.images_of[container_id] = found.get("Image") if found else None
        return self.images_of[container_id]

    def resolve(self, reference):
        found = get_json(self.transport, f"/images/{quote(reference, safe='/:@')}/json") if reference else None
        return found.get("Id") if found else None

    def handle(self, event):
        actor_id = (event.get("Actor") or {}).get("ID") or event.get("id")
        known = self.images_of.get if event.get("Action") in ("die", "destroy") else self.image_of_container
        uses = event_uses([event], known, self.resolve)
        if event.get("Action") == "destroy":
            self.images_of.pop(actor_id, None)
        with self.lock:
            for image_id, seen in uses.items():
                self.pending[image_id] = max(seen, self.pending.get(image_id, seen))
            self.events_until = int(event.get("time") or 0) or self.events_until

    def flush(self):
        with self.lock:
            pending, self.pending = self.pending, {}
            until = self.events_until
        if pending or until:
            self.ledger.record(pending, events_until=until, now=time.time())
            for problem in self.ledger.problems:
                print(problem, file=sys.stderr, flush=True)
            self.ledger.problems = []

    def flush_every_second(self):
        while not self.stopping.wait(FLUSH_SECONDS):
            self.flush()

    def follow(self):
        """Read the event stream until stopped; connect again when it ends."""
        since = self.ledger.events_until or int(time.time())
        while not self.stopping.is_set():
            try:
                for event in self.transport.stream("/events", {"since": int(since), "filters": {"type": ["container"]}},
                                                   read_timeout=None):
                    self.handle(event)
            except (OSError, APIError, ValueError) as exc:
                print(f"The event stream of {self.docker_host} ended: {exc}", file=sys.stderr, flush=True)
            since = self.events_until or since
            self.stopping.wait(RECONNECT_SECONDS)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
                        help="the engine, unix:///path or tcp://host:port (default: $DOCKER_HOST, else the local socket)")
    parser.add_argument("--ledger-dir", default=None,
                        help="the ledger's directory: the modules' usage_ledger_dir (default: theirs, for this user)")
    args = parser.parse_args(argv)
    stopping = threading.Event()

    def stop(*_signal):
        stopping.set()
        raise Stopped()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tracker = None
    try:
        while tracker is None:  # the engine may start after us (systemd ordering is not readiness)
            try:
                tracker = Tracker(args.docker_host, args.ledger_dir)
            except (OSError, APIError, ValueError) as exc:
                print(f"Cannot reach the engine at {args.docker_host} ({exc}); trying again", file=sys.stderr, flush=True)
                time.sleep(RECONNECT_SECONDS)
        tracker.stopping = stopping
        threading.Thread(target=tracker.flush_every_second, daemon=True).start()
        print(f"Following the container events of {args.docker_host} into {tracker.ledger.path}", flush=True)
        tracker.follow()
    except Stopped:
        pass
    if tracker is not None:
        tracker.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
