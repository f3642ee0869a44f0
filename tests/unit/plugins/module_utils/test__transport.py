"""The standard-library transport: every endpoint kind against a fake engine that answers as the Engine API does.

Real engines (unix, TLS, ssh://) are in the integration tests; here the cases a real engine cannot be made to give on
demand: an answer that never comes, a garbled one, an idle connection the daemon closed, an ssh that fails.
"""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import stat
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.reclaim.docker.plugins.module_utils import _transport as transport


class _FakeEngine(http.server.BaseHTTPRequestHandler):
    """Answers as the Engine API does: JSON, an empty 204, an error with a JSON message, a stream of events."""

    protocol_version = "HTTP/1.1"
    calls = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).calls.append((self.command, self.path, body))
        routes = {
            ("GET", "/version"): (200, {"ApiVersion": "1.45", "Version": "26.1.0"}),
            ("GET", "/v1.41/images/sha256:aa/json"): (200, {"Id": "sha256:aa"}),
            ("GET", "/v1.41/images/gone/json"): (404, {"message": "No such image: gone"}),
            ("DELETE", "/v1.41/images/lab/a:1?force=0&noprune=1"): (200, [{"Untagged": "lab/a:1"}]),
            ("DELETE", "/v1.41/images/lab/b:1?force=0&noprune=1"): (409, {"message": "conflict: image is in use"}),
            ("DELETE", "/v1.41/containers/c1?v=0&force=0"): (204, None),
            ("POST", "/v1.41/echo"): (200, {"echo": json.loads(body or b"null")}),
        }
        if self.path.startswith("/v1.41/events"):
            self._events()
            return
        if self.path.startswith("/v1.41/images/slow"):
            time.sleep(1)  # past the client's timeout
        if self.path.startswith("/v1.41/images/garbled"):
            self.wfile.write(b"not HTTP at all\r\n\r\n")
            self.close_connection = True
            return
        if self.path.startswith("/v1.41/info-then-hang-up"):
            self.close_connection = True  # answers, then closes: the next call finds an idle connection closed
            self.path = "/v1.41/images/sha256:aa/json"
        status, payload = routes.get((self.command, self.path), (500, {"message": f"unexpected {self.path}"}))
        data = json.dumps(payload).encode() if payload is not None else b""
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)
        except BrokenPipeError:
            pass  # the client gave up waiting (the slow route)

    def _events(self):
        """Two events as the engine streams them (chunked, one JSON object a line), then the end of the stream; with
        `wait` in the query, nothing for 2 s first."""
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if "wait" in self.path:
            time.sleep(2)
        for event in ({"Type": "container", "Action": "start", "time": 1}, {"Type": "container", "Action": "die", "time": 2}):
            line = json.dumps(event).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_DELETE = do_POST = _answer

    def log_message(self, *args):
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _address = super().get_request()
        return request, ("local", 0)


def _serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# Stands in for ssh: checks the Docker CLI's command line, then relays stdin and stdout to the fake engine's socket
# (what `docker system dial-stdio` does on the far host); FAKE_SSH_FAIL makes it fail as ssh does, on stderr.
FAKE_SSH = r'''#!{python}
import os, socket, sys, threading
args = sys.argv[1:]
with open(os.environ["FAKE_SSH_ARGS"], "a") as log:
    log.write(" ".join(args) + "\n")
if os.environ.get("FAKE_SSH_FAIL"):
    sys.stderr.write(os.environ["FAKE_SSH_FAIL"] + "\n")
    sys.exit(255)
assert args[-3:] == ["docker", "system", "dial-stdio"], args
engine = socket.socket(socket.AF_UNIX)
engine.connect(os.environ["FAKE_ENGINE_SOCKET"])
def upstream():
    while True:
        data = os.read(0, 65536)
        if not data:
            engine.shutdown(socket.SHUT_WR)
            return
        engine.sendall(data)
threading.Thread(target=upstream, daemon=True).start()
while True:
    data = engine.recv(65536)
    if not data:
        break
    os.write(1, data)
'''


@pytest.fixture
def unix_engine(tmp_path):
    path = str(tmp_path / "docker.sock")
    server = _serve(_UnixHTTPServer(path, _FakeEngine))
    yield path
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake_ssh(tmp_path, unix_engine, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ssh"
    script.write_text(FAKE_SSH.replace("{python}", sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ENGINE_SOCKET", unix_engine)
    monkeypatch.setenv("FAKE_SSH_ARGS", str(tmp_path / "ssh-args"))
    return tmp_path / "ssh-args"


@pytest.fixture(params=["unix", "tcp", "ssh"])
def engine(request, tmp_path, unix_engine):
    """A transport speaking API 1.41 to the fake engine, on each kind of endpoint."""
    server = None
    if request.param == "unix":
        docker_host = f"unix://{unix_engine}"
    elif request.param == "tcp":
        server = _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeEngine))
        docker_host = f"tcp://127.0.0.1:{server.server_address[1]}"
    else:
        request.getfixturevalue("fake_ssh")
        docker_host = "ssh://deploy@docker1.example.com:2222"
    engine_transport = transport.Transport(docker_host, 5)
    engine_transport.api_version = "1.41"
    yield engine_transport
    engine_transport.close()
    if server is not None:
        server.shutdown()
        server.server_close()


def test_request_gives_the_same_answers_on_every_endpoint(engine):
    assert engine.request("GET", "/images/sha256:aa/json") == {"Id": "sha256:aa"}
    assert engine.request("DELETE", "/images/lab/a:1", {"force": 0, "noprune": 1}) == [{"Untagged": "lab/a:1"}]
    assert engine.request("DELETE", "/containers/c1", {"v": 0, "force": 0}) is None
    assert engine.request("POST", "/echo", body={"a": [1]}) == {"echo": {"a": [1]}}
    with pytest.raises(transport.APIError) as conflict:
        engine.request("DELETE", "/images/lab/b:1", {"force": 0, "noprune": 1})
    assert conflict.value.status_code == 409 and conflict.value.explanation == "conflict: image is in use"
    assert str(conflict.value).endswith(": conflict: image is in use")


def test_concurrent_calls_each_have_their_own_connection(engine):
    answers = []

    def read():
        answers.extend(engine.request("GET", path) if "aa" in path else _status(engine, path)
                       for path in ["/images/sha256:aa/json", "/images/gone/json"] * 3)

    threads = [threading.Thread(target=read) for _thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers.count({"Id": "sha256:aa"}) == 12 and answers.count(404) == 12


def _status(engine, path):
    try:
        engine.request("GET", path)
    except transport.APIError as exc:
        return exc.status_code
    return 200


def test_a_call_without_an_answer_is_an_oserror_and_the_next_call_starts_afresh(engine):
    """A timeout or a garbled answer mid-call leaves no half-read connection behind for the next call."""
    engine.timeout = 0.3
    engine.close()  # the next connections take the new timeout
    with pytest.raises(OSError):
        engine.request("DELETE", "/images/slow", {"force": 0, "noprune": 1})
    with pytest.raises(OSError):
        engine.request("GET", "/images/garbled/json")
    assert engine.request("GET", "/images/sha256:aa/json") == {"Id": "sha256:aa"}


def test_a_read_is_asked_again_when_the_engine_closed_the_idle_connection(engine):
    assert engine.request("GET", "/info-then-hang-up") == {"Id": "sha256:aa"}
    assert engine.request("GET", "/images/sha256:aa/json") == {"Id": "sha256:aa"}


def test_a_change_is_never_sent_twice(unix_engine):
    _FakeEngine.calls = []
    engine = transport.Transport(f"unix://{unix_engine}", 5)
    engine.api_version = "1.41"
    engine.request("GET", "/info-then-hang-up")
    with pytest.raises(OSError):
        engine.request("DELETE", "/images/lab/a:1", {"force": 0, "noprune": 1})
    # The idle connection was closed under it: the DELETE fails rather than go out again on a new connection.
    assert [c[0] for c in _FakeEngine.calls] == ["GET"]
    engine.close()


def test_versions_and_the_unversioned_version_call(unix_engine):
    engine = transport.Transport(f"unix://{unix_engine}", 5)
    assert engine.request("GET", "/version") == {"ApiVersion": "1.45", "Version": "26.1.0"}
    engine.api_version = "1.41"
    assert engine.url("/images/json", {"all": 1}) == "/v1.41/images/json?all=1"
    engine.close()


def test_a_stream_yields_each_event_and_ends_with_the_stream(engine):
    events = list(engine.stream("/events", {"since": 0, "until": 2, "filters": {"type": ["container"]}}))
    assert [e["Action"] for e in events] == ["start", "die"]


def test_a_stream_that_stays_silent_past_its_read_timeout_is_an_oserror(unix_engine):
    engine = transport.Transport(f"unix://{unix_engine}", 5)
    engine.api_version = "1.41"
    with pytest.raises(OSError):
        list(engine.stream("/events", {"wait": 1}, read_timeout=0.3))
    assert len(list(engine.stream("/events", {"wait": 1}, read_timeout=5))) == 2


@pytest.mark.parametrize("params, query", [
    ({"all": 1, "shared-size": True}, "all=1&shared-size=1"),
    ({"type": ["image", "build-cache"]}, "type=image&type=build-cache"),
    ({"filters": {"type": ["container"]}, "until": None}, "filters=%7B%22type%22%3A+%5B%22container%22%5D%7D"),
    ({"force": False}, "force=0"),
])
def test_query_strings_as_the_engine_takes_them(params, query):
    assert transport.query_string(params) == query


def test_filters_become_lists_of_strings_as_the_cli_sends_them():
    assert transport.engine_filters({"until": "24h", "dangling": True, "label": ["a=1", "b"]}) == {
        "until": ["24h"], "dangling": ["true"], "label": ["a=1", "b"]}


@pytest.mark.parametrize("docker_host, expected", [
    ("unix:///var/run/docker.sock", ("unix", "/var/run/docker.sock")),
    ("tcp://192.0.2.10:2376", ("tcp", ("192.0.2.10", 2376))),
    ("tcp://docker1.example.com", ("tcp", ("docker1.example.com", 2375))),
    ("https://docker1.example.com", ("https", ("docker1.example.com", 2376))),
    ("ssh://deploy@docker1.example.com:2222", ("ssh", "ssh://deploy@docker1.example.com:2222")),
])
def test_endpoints(docker_host, expected):
    assert transport.split_endpoint(docker_host) == expected


@pytest.mark.parametrize("docker_host, problem", [
    ("unix://", "names no socket path"), ("tcp://:2376", "names no host"), ("tcp://h:port", "Port could not be cast"),
    ("ssh://", "names no host"), ("npipe:////./pipe/docker_engine", "is not a Docker endpoint"),
])
def test_bad_endpoints_say_what_is_wrong(docker_host, problem):
    with pytest.raises(ValueError, match=problem):
        transport.split_endpoint(docker_host)


def test_ssh_runs_dial_stdio_as_the_docker_cli_does():
    assert transport.ssh_command("ssh://deploy@docker1.example.com:2222", 60) == [
        "ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=60", "-l", "deploy", "-p", "2222", "--",
        "docker1.example.com", "docker", "system", "dial-stdio"]
    assert transport.ssh_command("ssh://docker1.example.com", 0.5) == [
        "ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=1", "--", "docker1.example.com", "docker", "system",
        "dial-stdio"]


def test_an_ssh_failure_carries_what_ssh_said(fake_ssh, monkeypatch):
    monkeypatch.setenv("FAKE_SSH_FAIL", "deploy@docker1.example.com: Permission denied (publickey).")
    engine = transport.Transport("ssh://deploy@docker1.example.com:2222", 5)
    with pytest.raises(OSError) as failure:
        engine.request("GET", "/version")
    assert "(ssh: deploy@docker1.example.com: Permission denied (publickey).)" in str(failure.value).replace("; ssh exited with 255", "")
    assert fake_ssh.read_text().splitlines()[0].endswith("-p 2222 -- docker1.example.com docker system dial-stdio")
    engine.close()


def test_closing_ends_every_ssh_process(fake_ssh):
    engine = transport.Transport("ssh://deploy@docker1.example.com:2222", 5)
    engine.api_version = "1.41"
    engine.request("GET", "/images/sha256:aa/json")
    processes = [c.process for c in engine._connections]  # pylint: disable=protected-access
    assert processes and all(p.poll() is None for p in processes)
    engine.close()
    assert all(p.poll() is not None for p in processes)


def test_every_module_utility_imports_without_site_packages(tmp_path):
    """As on a stock host's Python: an interpreter started without site packages (no docker, no requests), with only
    ansible-core's package and the collection on its path, as AnsiballZ gives them to a module."""
    import ansible  # pylint: disable=import-outside-toplevel

    utils = os.path.dirname(os.path.abspath(transport.__file__))
    collections = utils.split("/ansible_collections/")[0]
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "ansible").symlink_to(os.path.dirname(os.path.abspath(ansible.__file__)))
    names = sorted(n[:-3] for n in os.listdir(utils) if n.startswith("_") and n.endswith(".py") and n != "__init__.py")
    code = "import importlib\n" + "".join(
        f"importlib.import_module('ansible_collections.reclaim.docker.plugins.module_utils.{n}')\n" for n in names)
    env = {"PYTHONPATH": os.pathsep.join([collections, str(tmp_path / "core")]), "PATH": os.environ["PATH"]}
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "_transport" in names and "_connection" in names
