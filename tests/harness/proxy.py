"""A counting proxy: a unix socket between a client and the Docker daemon that forwards bytes both ways and counts
the HTTP requests the client sends, by endpoint. The benchmarks count with it; the fault tests give it ON_REQUEST,
which sees each request before the daemon does: it may stop the daemon, or hold the daemon's answer back.

Threads only, all of them daemons: the proxy ends with the bench's process whatever happens, and `close()` (or the
end of a `with` block) stops it earlier and removes its socket. Requests are counted by parsing the client's stream
(request line, headers, a Content-Length or chunked body); a connection upgraded for a hijacked stream (attach,
exec) is forwarded as it is from then on.
"""

from __future__ import annotations

import collections
import functools
import os
import re
import socket
import threading
import time

_VERSION = re.compile(r"^/v\d+\.\d+")
# Path segments that name one object: the counts are kept per endpoint, not per object.
_OBJECT = [
    (re.compile(r"^/(images)/(.+?)/(json|history|tag|push|get)$"), r"/\1/{ref}/\3"),
    (re.compile(r"^/(images)/(?!json$|load$|prune$|create$|search$|get$)(.+)$"), r"/\1/{ref}"),
    (re.compile(r"^/(containers|networks|volumes|exec|plugins)/(?!json$|create$|prune$)([^/]+)(/[^/]+)?$"),
     r"/\1/{id}\3"),
]
MAX_HEAD = 1 << 20


def endpoint(method: str, target: str) -> str:
    """METHOD and the path of TARGET without the API version, the query and object names: `GET /images/{ref}/json`."""
    path = _VERSION.sub("", target.split("?", 1)[0])
    for pattern, replacement in _OBJECT:
        if pattern.match(path):
            path = pattern.sub(replacement, path)
            break
    return f"{method} {path}"


class _RequestCounter:
    """Parses one connection's client-to-daemon bytes and calls COUNT(method, target) once per request."""

    def __init__(self, count):
        self.count = count
        self.buf = b""
        self.state = "head"     # head | body | chunk-size | chunk-data | trailer | raw
        self.remaining = 0

    def feed(self, data: bytes):
        try:
            self._feed(data)
        except ValueError:  # a length that is not a number: stop parsing, keep forwarding
            self.state, self.buf = "raw", b""

    def _feed(self, data: bytes):
        if self.state == "raw":
            return
        self.buf += data
        while self.buf and self.state != "raw":
            if self.state == "head":
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buf) > MAX_HEAD:
                        self.state = "raw"  # not HTTP as we know it: stop parsing, keep forwarding
                    return
                head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
                lines = head.split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) != 3:
                    self.state = "raw"
                    return
                self.count(parts[0], parts[1])
                headers = {}
                for line in lines[1:]:
                    name, _sep, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                if "upgrade" in headers or "upgrade" in headers.get("connection", "").lower():
                    self.state = "raw"
                elif "chunked" in headers.get("transfer-encoding", "").lower():
                    self.state = "chunk-size"
                elif int(headers.get("content-length") or 0):
                    self.state, self.remaining = "body", int(headers["content-length"])
            elif self.state in ("body", "chunk-data"):
                take = min(self.remaining, len(self.buf))
                self.buf, self.remaining = self.buf[take:], self.remaining - take
                if self.remaining:
                    return
                self.state = "head" if self.state == "body" else "chunk-size"
            elif self.state == "chunk-size":
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return
                line, self.buf = self.buf[:end], self.buf[end + 2:]
                if not line.strip():
                    continue  # the CRLF that ends a chunk's data
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.state = "trailer"
                else:
                    self.state, self.remaining = "chunk-data", size
            elif self.state == "trailer":
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return
                line, self.buf = self.buf[:end], self.buf[end + 2:]
                if not line:
                    self.state = "head"


class CountingProxy:
    """Listen on PATH and forward every connection to the daemon's unix socket UPSTREAM, counting requests."""

    def __init__(self, path, upstream, on_request=None):
        """ON_REQUEST(method, target), called before a request is forwarded, may return the seconds for which the
        daemon's answer to it is held back (a slow daemon)."""
        self.path, self.upstream = str(path), str(upstream)
        self.on_request = on_request
        self.lock = threading.Lock()
        self.requests = collections.Counter()
        # The client sockets of the connections whose last request was forwarded and not answered yet.
        self.answered = threading.Condition()
        self._unanswered = set()
        self._conns = set()
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(64)
        threading.Thread(target=self._accept, name="bench-proxy", daemon=True).start()

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def reset(self) -> collections.Counter:
        """The counts so far, and zero from now on."""
        with self.lock:
            counts, self.requests = self.requests, collections.Counter()
        return counts

    def wait_answered(self, timeout):
        """Wait until every request forwarded so far has had its answer (its first bytes passed on to the client), or
        for TIMEOUT seconds; whether they all have. A request held by ON_REQUEST is not forwarded yet."""
        with self.answered:
            return self.answered.wait_for(lambda: not self._unanswered, timeout)

    def _count(self, method, target, held, client):
        with self.lock:
            self.requests[endpoint(method, target)] += 1
        delay = self.on_request(method, target) if self.on_request else None
        if delay:
            held.append(time.monotonic() + delay)
        with self.answered:
            self._unanswered.add(client)

    def _answer_passed(self, client):
        with self.answered:
            self._unanswered.discard(client)
            self.answered.notify_all()

    def _accept(self):
        while True:
            try:
                client, _addr = self.listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self._conns.update((client, upstream))
            held = []  # until when the daemon's next answer on this connection is held back
            parser = _RequestCounter(functools.partial(self._count, held=held, client=client))
            threading.Thread(target=self._pipe, args=(client, upstream, parser.feed), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None, held), daemon=True).start()

    def _pipe(self, source, sink, observe, held=None):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if observe is not None:
                    observe(data)  # before forwarding: counted by the time the client has its answer
                while held:
                    time.sleep(max(held.pop(0) - time.monotonic(), 0))
                sink.sendall(data)
                if observe is None:
                    self._answer_passed(sink)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if observe is None:  # the daemon's side ended: the connection is over, no answer will come
                self._answer_passed(sink)
                for sock in (source, sink):
                    self._forget(sock)

    def _forget(self, sock):
        with self.lock:
            self._conns.discard(sock)
        for end in (lambda: sock.shutdown(socket.SHUT_RDWR), sock.close):  # shutdown wakes a blocked recv
            try:
                end()
            except OSError:
                pass

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every connection has ended: the daemon has answered (or dropped) every request forwarded to it,
        a frozen daemon's included once it resumes. Whether that happened within TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self._conns:
                    return True
            time.sleep(0.05)
        return False

    def close(self):
        try:
            self.listener.close()
        finally:
            with self.lock:
                conns, self._conns = list(self._conns), set()
            for sock in conns:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                except OSError:
                    pass
            if os.path.exists(self.path):
                os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
