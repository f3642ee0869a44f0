# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The Docker Engine API over HTTP with the standard library only: nothing to install on the host that runs it.

Endpoints: unix:///PATH; tcp://HOST:PORT (or http://), with TLS https:// (a CA to verify against, a client
certificate, the name to check); ssh://[USER@]HOST[:PORT], as the Docker CLI does it: the `ssh` client runs
`docker system dial-stdio` on the host and the HTTP goes through it.

No Ansible import: the modules' EngineClient (_connection.py) and the usage tracker's program both speak through it.
Connection problems are OSErrors (a timeout, a refusal, a TLS failure, a broken SSH session); an answer with an HTTP
error status is an APIError with the engine's status and message.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import tempfile
import threading
from urllib.parse import urlencode, urlsplit

SCHEMES = ("unix", "tcp", "http", "https", "ssh")
DEFAULT_TCP_PORT = 2375
DEFAULT_TLS_PORT = 2376
# How long an ssh process whose input has ended is given to close its session before it is terminated.
SSH_EXIT_SECONDS = 1.0


class APIError(Exception):
    """The engine answered with an error status: STATUS_CODE and the engine's EXPLANATION (its message)."""

    def __init__(self, request, status_code, explanation=None):
        super().__init__(f"{request}: {explanation}" if explanation else request)
        self.status_code = status_code
        self.explanation = explanation


class TLSSettings:
    """How to secure a tcp:// connection: VERIFY the engine's certificate (against CA_CERT, else the system's CAs,
    for the name HOSTNAME, else the endpoint's host), and present CLIENT_CERT with CLIENT_KEY when given."""

    def __init__(self, verify, ca_cert=None, client_cert=None, client_key=None, hostname=None):
        self.verify = verify
        self.ca_cert = ca_cert
        self.client_cert = client_cert
        self.client_key = client_key
        self.hostname = hostname

    def context(self):
        """An SSLContext; raises OSError (ssl.SSLError, FileNotFoundError) when a file cannot be used."""
        context = ssl.create_default_context(cafile=self.ca_cert) if self.verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


def split_endpoint(docker_host):
    """(scheme, address) of DOCKER_HOST: a socket path for unix, (host, port) for tcp/http/https, the URL for ssh.
    Raises ValueError naming what is wrong."""
    if "://" not in docker_host:
        raise ValueError(f"{docker_host!r} has no scheme")
    scheme = docker_host.split("://", 1)[0]
    if scheme not in SCHEMES:
        raise ValueError(f"{scheme}:// is not a Docker endpoint")
    url = urlsplit(docker_host)
    if scheme == "unix":
        if not url.path:
            raise ValueError(f"{docker_host!r} names no socket path")
        return scheme, url.path
    if scheme == "ssh":
        if not url.hostname:
            raise ValueError(f"{docker_host!r} names no host")
        return scheme, docker_host
    try:
        port = url.port
    except ValueError as exc:
        raise ValueError(f"{docker_host!r}: {exc}") from exc
    if not url.hostname:
        raise ValueError(f"{docker_host!r} names no host")
    return scheme, (url.hostname, port or (DEFAULT_TLS_PORT if scheme == "https" else DEFAULT_TCP_PORT))


def ssh_command(docker_host, connect_timeout):
    """The Docker CLI's own command line for an ssh:// endpoint (cli/connhelper): no TTY, the user and port as given,
    `docker system dial-stdio` on the host. BatchMode: a module has nobody to type a password or accept a host key."""
    url = urlsplit(docker_host)
    command = ["ssh", "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(int(connect_timeout), 1)}"]
    if url.username:
        command += ["-l", url.username]
    if url.port:
        command += ["-p", str(url.port)]
    return command + ["--", url.hostname, "docker", "system", "dial-stdio"]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class _TLSConnection(http.client.HTTPConnection):
    """HTTPS whose certificate is checked for SERVER_NAME (tls_hostname) when it differs from the host dialled."""

    default_port = DEFAULT_TLS_PORT

    def __init__(self, host, port, timeout, context, server_name):
        super().__init__(host, port, timeout=timeout)
        self.context = context
        self.server_name = server_name

    def connect(self):
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.server_name)


class _SSHConnection(http.client.HTTPConnection):
    """HTTP through `ssh HOST docker system dial-stdio`: one ssh process per connection, its stdin and stdout one end
    of a socket pair. What ssh says on stderr is kept for the message when the session breaks (http.client closes the
    connection itself on some errors, before we see them)."""

    def __init__(self, command, timeout):
        super().__init__("localhost", timeout=timeout)
        self.command = command
        self.process = None
        self.stderr = None
        self.said = ""

    def connect(self):
        ours, theirs = socket.socketpair()
        self.stderr = tempfile.TemporaryFile()
        try:
            # A process that lives as long as the connection: run_command waits for its end.
            self.process = subprocess.Popen(  # pylint: disable=ansible-bad-function
                self.command, stdin=theirs, stdout=theirs, stderr=self.stderr, close_fds=True, start_new_session=True)
        except OSError as exc:
            ours.close()
            raise OSError(f"cannot run {self.command[0]}: {exc}") from exc
        finally:
            theirs.close()
        ours.settimeout(self.timeout)
        self.sock = ours

    def _end_ssh(self):
        """Let the ssh process end (our end of its input is closed: it ends the session within a round trip), else
        end it; keep what it said on stderr, with its exit status when it ended by itself."""
        try:
            code = self.process.wait(timeout=SSH_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            code = None
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.seek(0)
        said = self.stderr.read().decode("utf-8", "replace").strip()
        self.said = "; ".join(part for part in (said, f"ssh exited with {code}" if code is not None else "") if part)
        self.stderr.close()
        self.process = self.stderr = None

    def close(self):
        super().close()  # ssh sees the end of its input and ends the session
        if self.process is not None:
            self._end_ssh()


def _explained(body):
    try:
        return json.loads(body).get("message")
    except (ValueError, AttributeError):  # not JSON, or not an object
        return body.decode("utf-8", "replace").strip()


def query_string(params):
    """PARAMS as the Engine API takes them: a list repeats its key; a mapping (filters) goes as JSON; None is left out;
    booleans as 1 and 0."""
    pairs = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, dict):
            pairs.append((key, json.dumps(value)))
        elif isinstance(value, (list, tuple)):
            pairs.extend((key, item) for item in value)
        elif isinstance(value, bool):
            pairs.append((key, int(value)))
        else:
            pairs.append((key, value))
    return urlencode(pairs)


def engine_filters(filters):
    """FILTERS ({name: value or values}) as the Engine API's filters object: every value a list of strings, booleans
    as true and false (as the Docker CLI and SDK send them)."""
    converted = {}
    for name, value in filters.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        converted[name] = [("true" if item else "false") if isinstance(item, bool) else str(item) for item in values]
    return converted


class Transport:
    """HTTP requests to one Docker endpoint. Connections are kept alive, one per thread, so concurrent reads each have
    their own; close() ends every one of them (and any ssh process)."""

    def __init__(self, docker_host, timeout, tls=None):
        self.docker_host = docker_host
        self.scheme, self.address = split_endpoint(docker_host)
        self.timeout = timeout
        self.tls = tls
        self.api_version = None  # paths are sent unversioned until set
        self._context = tls.context() if tls else None
        self._local = threading.local()
        self._connections = []
        self._connections_lock = threading.Lock()

    def _new_connection(self, timeout):
        if self.scheme == "unix":
            return _UnixConnection(self.address, timeout)
        if self.scheme == "ssh":
            return _SSHConnection(ssh_command(self.docker_host, timeout or 30), timeout)
        host, port = self.address
        if self._context is not None:
            return _TLSConnection(host, port, timeout, self._context, self.tls.hostname or host)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._new_connection(self.timeout)
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def url(self, path, params=None):
        query = query_string(params)
        prefix = f"/v{self.api_version}" if self.api_version else ""
        return prefix + path + (f"?{query}" if query else "")

    def request(self, method, path, params=None, body=None):
        """One call; the decoded JSON answer, or None when the answer has no body. PATH is unversioned, its parts
        already quoted (see quote_part); BODY, when given, is sent as JSON. Raises APIError for an error status and
        OSError when the call got no usable answer (the connection is then closed: the next call starts afresh)."""
        connection = self._connection()
        url = self.url(path, params)
        data = None if body is None else json.dumps(body).encode()
        try:
            response = self._send(connection, method, url, data)
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._broken(connection, exc) from exc
        if response.status >= 400:
            raise APIError(f"{response.status} {response.reason} for {method} {url}", response.status, _explained(answer))
        try:
            return json.loads(answer) if answer else None
        except ValueError as exc:
            raise ConnectionError(f"a malformed answer from the engine ({exc})") from exc

    def _send(self, connection, method, url, data):
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            connection.request(method, url, body=data, headers=headers)
            return connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            if method != "GET":
                raise  # a change is never sent twice
            # The daemon closed an idle keep-alive connection: a read is asked once more, on a new one.
            connection.close()
            connection.request(method, url, body=data, headers=headers)
            return connection.getresponse()

    def _broken(self, connection, exc):
        """The OSError for a call that got no usable answer; the connection is closed, its state being unknown."""
        connection.close()
        said = connection.said if isinstance(connection, _SSHConnection) else ""
        if said:
            return ConnectionError(f"{str(exc) or type(exc).__name__} (ssh: {said})")
        if isinstance(exc, OSError):
            return exc
        return ConnectionError(f"a malformed answer from the engine ({exc!r})")

    def stream(self, path, params=None, read_timeout=None):
        """GET PATH and yield each JSON object of a streamed answer (the event stream), on a connection of its own
        that waits at most READ_TIMEOUT seconds (default: the transport's timeout; None: forever) for the next
        line. Stops when the engine ends the stream; raises as request() does."""
        connection = self._new_connection(self.timeout)
        try:
            url = self.url(path, params)
            try:
                connection.request("GET", url)
                response = connection.getresponse()
                if response.status >= 400:
                    raise APIError(f"{response.status} {response.reason} for GET {url}", response.status,
                                   _explained(response.read()))
                connection.sock.settimeout(read_timeout)
                for line in response:
                    if line.strip():
                        yield json.loads(line)
            except (OSError, http.client.HTTPException) as exc:
                raise self._broken(connection, exc) from exc
            except ValueError as exc:
                raise ConnectionError(f"a malformed event from the engine ({exc})") from exc
        finally:
            connection.close()

    def close(self):
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()
