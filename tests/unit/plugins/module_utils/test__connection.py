"""The connection options: env fallbacks, TLS combinations, bad values, messages."""

from __future__ import annotations

import http.server
import importlib
import json
import socket
import ssl
import threading

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.reclaim.docker.plugins.module_utils import _connection as conn

ENV_VARS = ("DOCKER_HOST", "DOCKER_TLS_HOSTNAME", "DOCKER_API_VERSION", "DOCKER_TIMEOUT", "DOCKER_TLS",
            "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def validated(params):
    result = ArgumentSpecValidator(conn.connection_argument_spec().argument_spec).validate(params)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def settings(params, environ=None):
    return conn.connection_settings(validated(params), environ or {})


def test_defaults_match_community_docker():
    params = validated({})
    assert params["docker_host"] == "unix:///var/run/docker.sock"
    assert params["api_version"] == "auto"
    assert params["timeout"] == 60
    assert params["tls"] is False and params["validate_certs"] is False


def test_env_fallbacks(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://192.0.2.10:2376")
    monkeypatch.setenv("DOCKER_API_VERSION", "1.43")
    monkeypatch.setenv("DOCKER_TIMEOUT", "7")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_TLS_HOSTNAME", "docker.example.com")
    params = validated({})
    assert params["docker_host"] == "tcp://192.0.2.10:2376"
    assert params["api_version"] == "1.43"
    assert params["timeout"] == 7
    assert params["validate_certs"] is True
    assert params["tls_hostname"] == "docker.example.com"


def test_task_value_beats_env(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://192.0.2.10:2376")
    assert validated({"docker_host": "unix:///run/other.sock"})["docker_host"] == "unix:///run/other.sock"


@pytest.mark.parametrize("alias, option", [
    ("docker_url", "docker_host"), ("docker_api_version", "api_version"), ("tls_verify", "validate_certs"),
    ("ca_cert", "ca_path"), ("tls_ca_cert", "ca_path"), ("cacert_path", "ca_path"),
    ("tls_client_cert", "client_cert"), ("cert_path", "client_cert"),
    ("tls_client_key", "client_key"), ("key_path", "client_key"),
])
def test_aliases(alias, option):
    value = True if option == "validate_certs" else "/x"
    assert validated({alias: value})[option] == value


def test_plain_socket():
    result = settings({})
    assert result["base_url"] == "unix:///var/run/docker.sock"
    assert result["tls"] is None


def test_bare_path_is_a_unix_socket():
    assert settings({"docker_host": "/run/docker.sock"})["base_url"] == "unix:///run/docker.sock"


def test_tls_without_verification_switches_to_https():
    result = settings({"docker_host": "tcp://192.0.2.10:2376", "tls": True})
    assert result["base_url"] == "https://192.0.2.10:2376"
    assert result["tls"] == {"verify": False, "ca_cert": None, "client_cert": None}


@pytest.fixture
def cert_dir(tmp_path):
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    return tmp_path


def test_verify_takes_files_from_docker_cert_path(cert_dir):
    result = settings({"docker_host": "tcp://h:2376", "validate_certs": True, "tls_hostname": "docker.example.com"},
                      {"DOCKER_CERT_PATH": str(cert_dir)})
    assert result["tls"] == {"verify": True, "ca_cert": str(cert_dir / "ca.pem"),
                             "client_cert": (str(cert_dir / "cert.pem"), str(cert_dir / "key.pem"))}
    assert result["tls_hostname"] == "docker.example.com"


def test_explicit_files_beat_docker_cert_path(cert_dir, tmp_path_factory):
    other = tmp_path_factory.mktemp("other") / "myca.pem"
    other.write_text("x")
    result = settings({"docker_host": "tcp://h:2376", "validate_certs": True, "ca_path": str(other)},
                      {"DOCKER_CERT_PATH": str(cert_dir)})
    assert result["tls"]["ca_cert"] == str(other)


def test_validate_certs_takes_precedence_over_tls(cert_dir):
    result = settings({"docker_host": "tcp://h:2376", "tls": True, "validate_certs": True,
                       "ca_path": str(cert_dir / "ca.pem")})
    assert result["tls"]["verify"] is True


def test_tls_hostname_ignored_without_verification():
    assert settings({"docker_host": "tcp://h:2376", "tls": True, "tls_hostname": "x"})["tls_hostname"] is None


@pytest.mark.parametrize("params, fragment", [
    ({"docker_host": ""}, "docker_host is empty"),
    ({"docker_host": "ftp://h"}, "is not a Docker endpoint"),
    ({"docker_host": "unix:///run/docker.sock", "tls": True}, "apply to tcp:// hosts"),
    ({"docker_host": "tcp://h:2376", "validate_certs": True, "ca_path": "/nonexistent/ca.pem"},
     "ca_path /nonexistent/ca.pem (from ca_path) is not a file"),
    ({"docker_host": "tcp://h:2376", "tls": True, "client_cert": "/nonexistent/c.pem", "client_key": "/nonexistent/k.pem"},
     "client_cert /nonexistent/c.pem"),
    ({"api_version": "latest"}, "api_version 'latest' is not a version"),
    ({"api_version": "1.40"}, "api_version 1.40 is too old"),
    ({"timeout": 0}, "timeout must be a positive number"),
])
def test_bad_values_name_the_option(params, fragment):
    with pytest.raises(conn.EngineConnectionError, match=None) as error:
        settings(params)
    assert fragment in str(error.value)


def test_missing_cert_from_env_names_docker_cert_path(tmp_path):
    with pytest.raises(conn.EngineConnectionError) as error:
        settings({"docker_host": "tcp://h:2376", "validate_certs": True}, {"DOCKER_CERT_PATH": str(tmp_path)})
    assert "(from DOCKER_CERT_PATH)" in str(error.value)


def test_cert_without_key_is_refused_by_the_spec():
    spec = conn.connection_argument_spec()
    assert ("client_cert", "client_key") in spec.required_together
    spec = spec.argument_spec
    assert set(spec) >= {"docker_host", "tls", "validate_certs", "ca_path", "client_cert", "client_key",
                         "tls_hostname", "api_version", "timeout"}


def test_missing_socket_message(tmp_path):
    with pytest.raises(conn.EngineConnectionError) as error:
        conn.connect(validated({"docker_host": f"unix://{tmp_path}/docker.sock"}))
    message = str(error.value)
    assert f"unix://{tmp_path}/docker.sock" in message and "does not exist" in message


def test_dead_socket_message(tmp_path):
    path = tmp_path / "dead.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the file stays, nobody listens: what a crashed daemon leaves
    with pytest.raises(conn.EngineConnectionError) as error:
        conn.connect(validated({"docker_host": f"unix://{path}", "timeout": 2}))
    assert "nothing listens on the socket" in str(error.value)


def test_refused_tcp_message():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(conn.EngineConnectionError) as error:
        conn.connect(validated({"docker_host": f"tcp://127.0.0.1:{port}", "timeout": 2}))
    assert f"tcp://127.0.0.1:{port}" in str(error.value) and "refused" in str(error.value)


@pytest.mark.parametrize("text, hint", [
    ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate",
     "not signed by the CA in ca_path"),
    ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, certificate is not valid for "
     "'127.1'.", "set tls_hostname to a name the certificate holds"),
    ("SSLError(CertificateError(\"hostname 'wrong.example' doesn't match either of '127.0.0.1', 'localhost'\"))",
     "set tls_hostname to a name the certificate holds"),
    ("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required", "refused the client certificate"),
    ("[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca", "refused the client certificate"),
    ("[SSL: WRONG_VERSION_NUMBER] wrong version number", "check ca_path, client_cert, client_key, tls_hostname"),
])
def test_tls_failures_say_what_to_check(text, hint):
    message = conn.describe_connection_error("https://192.0.2.10:2376", ssl.SSLError(1, text))
    assert message.startswith("TLS handshake with the Docker daemon at https://192.0.2.10:2376 failed: ")
    assert hint in message and text in message


def test_plain_http_against_a_tls_port_says_to_turn_tls_on():
    answer = conn.APIError("400 Bad Request for GET /version", 400,
                           "Client sent an HTTP request to an HTTPS server.")
    message = conn.describe_connection_error("tcp://192.0.2.10:2376", answer)
    assert message.startswith("The Docker daemon at tcp://192.0.2.10:2376 speaks TLS only: set validate_certs")


class _VersionOnly(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        type(self).calls.append(self.path)
        data = json.dumps({"ApiVersion": "1.45", "Version": "26.1.0"}).encode()
        self.send_response(200 if self.path == "/version" else 404)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("api_version, expected", [("auto", "1.45"), ("1.43", "1.43")])
def test_connect_asks_the_daemon_once_unversioned(api_version, expected):
    """One unversioned /version both reaches the daemon and, with `auto`, gives the version to speak (as the Docker
    CLI's negotiation does); a version given is spoken as it is."""
    _VersionOnly.calls = []
    server = _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _VersionOnly))
    try:
        client = conn.connect(validated({"docker_host": f"tcp://127.0.0.1:{server.server_address[1]}",
                                         "api_version": api_version}))
    finally:
        server.shutdown()
        server.server_close()
    assert _VersionOnly.calls == ["/version"]
    assert client.api_version == expected and client.engine_version == "26.1.0"


@pytest.mark.parametrize("version, minimum, expected", [
    ("1.41", "1.41", True), ("1.51", "1.42", True), ("1.41", "1.50", False), ("1.9", "1.10", False)])
def test_version_at_least(version, minimum, expected):
    assert conn.version_at_least(version, minimum) is expected


# Recorded from a 28.5 engine on the containerd store, during a BuildKit build.
LOST_SNAPSHOT = {"message": "NotFound: snapshot qg8hkik34167f7ysoxxq0c1bz-view does not exist: not found"}


class _Answers:
    """A transport whose engine gives ANSWERS [(status, body)] in turn, through the real error path."""

    def __init__(self, answers, api_version="1.51"):
        self.answers = iter(answers)
        self.calls = []
        self.api_version = api_version
        self.timeout = 60

    def request(self, method, path, params=None):
        self.calls.append(params)
        status, body = next(self.answers)
        if status >= 400:
            raise conn.APIError(f"{status} for {method} {path}", status, body.get("message"))
        return body


def engine_answering(answers, api_version="1.51"):
    transport = _Answers(answers, api_version)
    return conn.EngineClient(transport, "unix:///nonexistent.sock", "28.5.2"), transport.calls


@pytest.fixture
def no_pauses(monkeypatch):
    monkeypatch.setattr(conn.time, "sleep", lambda seconds: None)


def test_system_df_asks_again_after_losing_a_race_with_buildkit(no_pauses):
    client, calls = engine_answering([(404, LOST_SNAPSHOT), (404, LOST_SNAPSHOT), (200, {"LayersSize": 7})])
    assert client.system_df(["image", "build-cache"]) == {"LayersSize": 7}
    assert calls == [{"type": ["image", "build-cache"]}] * 3


def test_system_df_gives_up_after_a_bounded_number_of_tries(no_pauses):
    client, calls = engine_answering([(404, LOST_SNAPSHOT)] * 10)
    with pytest.raises(conn.APIError, match="does not exist"):
        client.system_df(["build-cache"])
    assert len(calls) == len(conn.DF_RETRY_PAUSES) + 1


def test_system_df_does_not_retry_other_errors(no_pauses):
    client, calls = engine_answering([(500, {"message": "disk I/O error"}), (200, {})])
    with pytest.raises(conn.APIError, match="disk I/O error"):
        client.system_df(["image"])
    assert len(calls) == 1


def test_system_df_sends_no_type_to_engines_before_api_1_42(no_pauses):
    client, calls = engine_answering([(200, {"LayersSize": 1})], api_version="1.41")
    client.system_df(["image"])
    assert calls == [None]


def _serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---------------------------------------------------------------- community.docker parity

def _community_docker_common_args():
    # community.docker 5 made its module utilities private (_util); 4 has util.
    for name in ("_util", "util"):
        try:
            return importlib.import_module(f"ansible_collections.community.docker.plugins.module_utils.{name}")\
                .DOCKER_COMMON_ARGS
        except ImportError:
            continue
    pytest.skip("community.docker is not installed with these tests (the matrix's unit-3.9 cell)")


def test_every_community_docker_connection_option_is_accepted_with_its_type_default_aliases_and_env():
    """One module_defaults group serves both collections only if each of community.docker's connection options is an
    option here, with the same type, default, aliases and environment fallback."""
    theirs = _community_docker_common_args()
    ours = conn.connection_argument_spec().argument_spec
    assert set(theirs) <= set(ours), f"missing: {sorted(set(theirs) - set(ours))}"
    for name, spec in theirs.items():
        for key in ("type", "default", "aliases"):
            assert ours[name].get(key) == spec.get(key), (name, key)
        env = (spec.get("fallback") or (None, []))[1]
        assert (ours[name].get("fallback") or (None, []))[1] == env, name


def test_debug_is_accepted_and_off_by_default():
    assert validated({})["debug"] is False
    assert validated({"debug": True})["debug"] is True
