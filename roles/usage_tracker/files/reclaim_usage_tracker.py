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
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
from urllib.parse import quote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ansible_collections.reclaim.docker.plugins.module_utils._usage_ledger import (  # noqa: E402  pylint: disable=wrong-import-position
    UsageLedger,
    event_uses,
)

FLUSH_SECONDS = 1.0
RECONNECT_SECONDS = 2.0


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path, timeout=None):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def connection(docker_host, timeout=None):
    """An HTTP connection to DOCKER_HOST: unix:///path or tcp://host:port (plain HTTP; no TLS)."""
    url = urlsplit(docker_host)
    if url.scheme == "unix":
        return UnixHTTPConnection(url.path, timeout=timeout)
    if url.scheme in ("tcp", "http"):
        return http.client.HTTPConnection(url.hostname, url.port or 2375, timeout=timeout)
    raise SystemExit(f"--docker-host: unix:///path or tcp://host:port, got {docker_host!r}")


def get_json(docker_host, path):
    """GET PATH from the engine: its JSON, or None for a 404."""
    conn = connection(docker_host, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status == 404:
        return None
    if response.status != 200:
        raise OSError(f"GET {path}: HTTP {response.status} {body[:200]!r}")
    return json.loads(body)


class Tracker:
    def __init__(self, docker_host, ledger_dir):
        self.docker_host = docker_host
        info = get_json(docker_host, "/info")
        self.ledger = UsageLedger.for_engine(ledger_dir, info.get("ID") or docker_host)
        self.images_of = {}  # container ID -> image ID, learnt at create and start
        self.pending = {}
        self.events_until = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.stream = None

    def image_of_container(self, container_id):
        if container_id not in self.images_of:
            found = get_json(self.docker_host, f"/containers/{quote(container_id, safe='')}/json")
            self.images_of[container_id] = found.get("Image") if found else None
        return self.images_of[container_id]

    def resolve(self, reference):
        found = get_json(self.docker_host, f"/images/{quote(reference, safe='/:@')}/json") if reference else None
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
            query = f"since={int(since)}&filters={quote(json.dumps({'type': ['container']}))}"
            try:
                self.stream = connection(self.docker_host)
                self.stream.request("GET", f"/events?{query}")
                response = self.stream.getresponse()
                for line in response:
                    if line.strip():
                        self.handle(json.loads(line))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if not self.stopping.is_set():
                    print(f"The event stream of {self.docker_host} ended: {exc}", file=sys.stderr, flush=True)
            since = self.events_until or since
            self.stopping.wait(RECONNECT_SECONDS)

    def stop(self, *_signal):
        self.stopping.set()
        stream = self.stream
        if stream is not None and stream.sock is not None:
            stream.sock.shutdown(socket.SHUT_RDWR)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
                        help="the engine, unix:///path or tcp://host:port (default: $DOCKER_HOST, else the local socket)")
    parser.add_argument("--ledger-dir", default=None,
                        help="the ledger's directory: the modules' usage_ledger_dir (default: theirs, for this user)")
    args = parser.parse_args(argv)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_signal: stopping.set())
    signal.signal(signal.SIGINT, lambda *_signal: stopping.set())
    while True:  # the engine may start after us (systemd ordering is not readiness)
        try:
            tracker = Tracker(args.docker_host, args.ledger_dir)
            break
        except (OSError, http.client.HTTPException, ValueError) as exc:
            print(f"Cannot reach the engine at {args.docker_host} ({exc}); trying again", file=sys.stderr, flush=True)
            if stopping.wait(RECONNECT_SECONDS):
                return 0
    tracker.stopping = stopping
    signal.signal(signal.SIGTERM, tracker.stop)
    signal.signal(signal.SIGINT, tracker.stop)
    flusher = threading.Thread(target=tracker.flush_every_second, daemon=True)
    flusher.start()
    print(f"Following the container events of {args.docker_host} into {tracker.ledger.path}", flush=True)
    tracker.follow()
    tracker.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
