# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The Docker connection, once: option spec, client construction, clear errors."""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from ansible.module_utils.basic import AnsibleModule, env_fallback

DOCKER_IMPORT_ERROR = None
try:
    import docker
    import requests
    # APIError is imported here for the other module utilities, which take it from this one place.
    from docker.errors import APIError, DockerException  # pylint: disable=unused-import
    from docker.tls import TLSConfig
except ImportError:
    DOCKER_IMPORT_ERROR = traceback.format_exc()

    class APIError(Exception):  # type: ignore[no-redef]
        """Stands in so that except clauses stay valid without the SDK."""

    class DockerException(Exception):  # type: ignore[no-redef]
        pass


DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
MINIMUM_API_VERSION = "1.41"
MINIMUM_SDK_VERSION = "7.1.0"
# /system/df takes a `type` list from this API version on; older engines compute every category.
DF_TYPE_MIN_API = "1.42"
# Pauses between reads of /system/df that lost a race with BuildKit (see EngineClient.system_df).
DF_RETRY_PAUSES = (0.1, 0.3, 1.0)


def connection_argument_spec():
    """The connection options of every module in the collection (see the _docker doc fragment)."""
    return dict(
        docker_host=dict(type="str", default=DEFAULT_DOCKER_HOST, fallback=(env_fallback, ["DOCKER_HOST"]),
                         aliases=["docker_url"]),
        tls_hostname=dict(type="str", fallback=(env_fallback, ["DOCKER_TLS_HOSTNAME"])),
        api_version=dict(type="str", default="auto", fallback=(env_fallback, ["DOCKER_API_VERSION"]),
                         aliases=["docker_api_version"]),
        timeout=dict(type="int", default=60, fallback=(env_fallback, ["DOCKER_TIMEOUT"])),
        ca_path=dict(type="path", aliases=["ca_cert", "tls_ca_cert", "cacert_path"]),
        client_cert=dict(type="path", aliases=["tls_client_cert", "cert_path"]),
        client_key=dict(type="path", aliases=["tls_client_key", "key_path"]),
        tls=dict(type="bool", default=False, fallback=(env_fallback, ["DOCKER_TLS"])),
        use_ssh_client=dict(type="bool", default=False),
        validate_certs=dict(type="bool", default=False, fallback=(env_fallback, ["DOCKER_TLS_VERIFY"]),
                            aliases=["tls_verify"]),
        # community.docker's; here it returns the diff also without diff mode (see the _docker doc fragment).
        debug=dict(type="bool", default=False),
    )


CONNECTION_REQUIRED_TOGETHER = [("client_cert", "client_key")]


class EngineConnectionError(Exception):
    """A connection problem, worded for the operator."""


def _version_tuple(version):
    return tuple(int(part) for part in str(version).split(".") if part.isdigit())


def version_at_least(version, minimum):
    return _version_tuple(version) >= _version_tuple(minimum)


def connection_settings(params, environ=None):
    """Resolve options and DOCKER_CERT_PATH into what the SDK needs; raises EngineConnectionError on bad values.

    No network I/O (it only reads ENVIRON and checks that certificate files exist), so that every TLS
    combination is unit-tested.
    """
    environ = os.environ if environ is None else environ
    host = params["docker_host"]
    if not host:
        raise EngineConnectionError("docker_host is empty: give a URL such as unix:///var/run/docker.sock or tcp://HOST:2376.")
    if "://" not in host:
        # Like the CLI: a bare path means a Unix socket.
        host = "unix://" + host if host.startswith("/") else host
    scheme = host.split("://", 1)[0] if "://" in host else ""
    if scheme not in ("unix", "tcp", "http", "https", "ssh"):
        raise EngineConnectionError(
            f"docker_host {params['docker_host']!r} is not a Docker endpoint: use unix:///PATH, tcp://HOST:PORT or ssh://USER@HOST."
        )
    timeout = params["timeout"]
    if timeout is None or timeout <= 0:
        raise EngineConnectionError(f"timeout must be a positive number of seconds, got {timeout!r}.")
    api_version = params["api_version"] or "auto"
    if api_version != "auto":
        if not _version_tuple(api_version) or not all(p.isdigit() for p in api_version.split(".")):
            raise EngineConnectionError(f"api_version {api_version!r} is not a version such as 1.41, nor 'auto'.")
        if not version_at_least(api_version, MINIMUM_API_VERSION):
            raise EngineConnectionError(
                f"api_version {api_version} is too old: reclaim.docker needs Docker Engine API {MINIMUM_API_VERSION} "
                "(Docker 20.10) or newer."
            )

    cert_dir = environ.get("DOCKER_CERT_PATH")

    def from_cert_dir(value, filename):
        if value:
            return value
        return os.path.join(cert_dir, filename) if cert_dir else None

    ca_path = from_cert_dir(params["ca_path"], "ca.pem")
    client_cert = from_cert_dir(params["client_cert"], "cert.pem")
    client_key = from_cert_dir(params["client_key"], "key.pem")
    verify = bool(params["validate_certs"])
    use_tls = verify or bool(params["tls"])

    settings = dict(base_url=host, version=api_version, timeout=timeout, tls=None, tls_hostname=None,
                    use_ssh_client=bool(params.get("use_ssh_client")))
    if not use_tls:
        return settings
    if scheme in ("unix", "ssh"):
        raise EngineConnectionError(f"tls and validate_certs apply to tcp:// hosts; {host} is a {scheme} endpoint. Turn them off.")
    settings["base_url"] = host.replace("tcp://", "https://", 1)
    for option, path in (("ca_path", ca_path if verify else None), ("client_cert", client_cert), ("client_key", client_key)):
        if path and not os.path.isfile(path):
            source = "DOCKER_CERT_PATH" if not params[option] else option
            raise EngineConnectionError(f"{option} {path} (from {source}) is not a file.")
    if bool(client_cert) != bool(client_key):
        raise EngineConnectionError("client_cert and client_key go together: give both or neither.")
    settings["tls"] = dict(
        verify=verify,
        ca_cert=ca_path if verify else None,
        client_cert=(client_cert, client_key) if client_cert else None,
    )
    settings["tls_hostname"] = params["tls_hostname"] if verify else None
    return settings


def _unix_socket_problem(base_url):
    path = base_url[len("unix://"):]
    if not os.path.exists(path):
        return f"the socket {path} does not exist: is the Docker daemon running on this host, and is docker_host right?"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"no permission to use {path}: run the task as root (become: true) or as a member of the docker group."
    return None


def _tls_hint(text):
    """What to check, by what OpenSSL (or urllib3's check of tls_hostname) said."""
    lowered = text.lower()
    if "hostname mismatch" in lowered or "doesn't match" in lowered:
        return ("its certificate is not valid for the name checked (tls_hostname, else the host of docker_host); "
                "set tls_hostname to a name the certificate holds")
    if "certificate_verify_failed" in lowered:
        return "its certificate is not signed by the CA in ca_path (or in DOCKER_CERT_PATH's ca.pem)"
    if any(alert in lowered for alert in ("certificate_required", "bad_certificate", "unknown_ca", "certificate_unknown")):
        return "it refused the client certificate (none given, or not signed by its CA); check client_cert and client_key"
    return "check ca_path, client_cert, client_key, tls_hostname and validate_certs"


def describe_connection_error(base_url, exc):
    """One sentence for the operator, naming the host and what to do."""
    text = str(exc)
    if base_url.startswith("unix://"):
        problem = _unix_socket_problem(base_url)
        if problem:
            return f"Cannot connect to the Docker daemon at {base_url}: {problem}"
        if "Connection refused" in text:
            return f"Cannot connect to the Docker daemon at {base_url}: nothing listens on the socket (daemon stopped or crashed). Start dockerd."
    if "Client sent an HTTP request to an HTTPS server" in text:
        return (f"The Docker daemon at {base_url} speaks TLS only: set validate_certs (with ca_path, client_cert and "
                "client_key) or tls, or DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.")
    if "SSL" in text or "certificate" in text.lower() or "TLS" in text:
        return f"TLS handshake with the Docker daemon at {base_url} failed: {_tls_hint(text)} ({text})."
    if "timed out" in text.lower() or "timeout" in text.lower():
        return f"The Docker daemon at {base_url} did not answer in time ({text}). Raise timeout or check the host."
    if "Connection refused" in text:
        return f"Cannot connect to the Docker daemon at {base_url}: connection refused. Is dockerd listening there?"
    return f"Cannot connect to the Docker daemon at {base_url}: {text}"


if DOCKER_IMPORT_ERROR is None:
    class _APIClient(docker.APIClient):
        """docker.APIClient whose TLS settings are used. requests lets REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE replace a
        session's own `verify` (its CA file, or False), so with either set, as many hosts do, every verified connection
        failed against the host's CA bundle and `tls` without verification verified anyway (docker/docker-py#2433)."""

        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            if verify is None:
                verify = self.verify  # a CA path or False stays; True still takes the environment's bundle
            return super().merge_environment_settings(url, proxies, stream, verify, cert)


def _hostname_adapter(tls_hostname):
    """An HTTPS adapter that checks the certificate against TLS_HOSTNAME (the SDK 7 dropped assert_hostname)."""

    class HostnameAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs["assert_hostname"] = tls_hostname
            super().init_poolmanager(*args, **kwargs)

    return HostnameAdapter()


class EngineClient:
    """The Docker SDK's low-level client plus the engine facts our modules branch on."""

    def __init__(self, api, base_url, engine_version):
        self.api = api
        self.base_url = base_url
        self.api_version = api.api_version
        self.engine_version = engine_version
        self._info = None
        self._local = threading.local()

    def info(self):
        if self._info is None:
            self._info = self.api.info()
        return self._info

    @property
    def uses_containerd_store(self):
        # With the containerd snapshotter, Driver is the snapshotter name and DriverStatus says so.
        return any("io.containerd.snapshotter" in str(value) for _key, value in (self.info().get("DriverStatus") or []))

    def facts(self):
        """What a result says of the engine: its ID (stable for its data root), version, API, image store, root dir."""
        info = self.info()
        return dict(
            id=info.get("ID"),
            version=self.engine_version,
            api_version=self.api_version,
            image_store="containerd" if self.uses_containerd_store else info.get("Driver"),
            docker_root_dir=info.get("DockerRootDir"),
        )

    @property
    def is_local(self):
        """Whether this module runs on the engine's own host (so Docker's root dir is on our filesystem)."""
        return self.base_url.startswith("unix://")

    def supports(self, minimum_api):
        return version_at_least(self.api_version, minimum_api)

    def require_api(self, minimum_api, feature):
        if not self.supports(minimum_api):
            raise EngineConnectionError(
                f"{feature} needs Docker Engine API {minimum_api} or newer; the Docker daemon at {self.base_url} "
                f"speaks {self.api_version}."
            )

    def get_json(self, path, params=None):
        """GET an API path (e.g. /networks), with repeated query parameters from lists."""
        response = self.api._get(self.api._url(path), params=params)
        return self.api._result(response, json=True)

    def system_df(self, types):
        """/system/df for TYPES (its `type` values: image, container, volume, build-cache) where the engine takes them.

        On the containerd store, df sums snapshot usage while a build or load on the host deletes its temporary
        snapshots, and the whole call fails with 404 "snapshot ... does not exist" (moby/buildkit#3599; measured:
        6 of 173 calls during builds, docs/engine-notes.md). It is a read: ask again, a bounded number of times.
        """
        params = {"type": list(types)} if self.supports(DF_TYPE_MIN_API) else None
        for pause in DF_RETRY_PAUSES:
            try:
                return self.get_json("/system/df", params)
            except APIError as exc:
                if not _lost_snapshot_race(exc):
                    raise
            time.sleep(pause)
        return self.get_json("/system/df", params)

    def request(self, method, path, params=None):
        """One Engine API call (PATH unversioned, its parts already quoted); the decoded JSON answer, or None when the
        answer has no body. Raises APIError with the engine's status and message.

        For the many small calls (per-image reads, per-item deletes): on a Unix socket they go over plain keep-alive
        HTTP connections, one per thread, which costs a quarter of the SDK's time per call (measured: 0.28 ms against
        1.2 ms on overlay2); other transports (TCP, TLS, SSH) go through the SDK's session.
        """
        if not self.base_url.startswith("unix://"):
            send = {"GET": self.api._get, "DELETE": self.api._delete, "POST": self.api._post}[method]
            response = send(self.api._url(path), params=params)
            self.api._raise_for_status(response)
            return response.json() if response.content else None
        if not hasattr(self._local, "connection"):
            self._local.connection = _UnixConnection(self.base_url[len("unix://"):], self.api.timeout)
        query = urlencode(params or {})
        return _call_over(self._local.connection, method, f"/v{self.api_version}{path}" + (f"?{query}" if query else ""))

    def get_json_many(self, paths, workers):
        """GET each of PATHS, up to WORKERS at a time; the answers in order, None where the engine says 404."""
        def get(path):
            try:
                return self.request("GET", path)
            except APIError as exc:
                if exc.status_code == 404:
                    return None
                raise

        if workers <= 1 or len(paths) <= 1:
            return [get(path) for path in paths]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(get, paths))


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class _Status:
    """What APIError reads of a response."""

    def __init__(self, status_code, reason):
        self.status_code = status_code
        self.reason = reason


def _send(connection, method, url):
    try:
        connection.request(method, url)
        return connection.getresponse()
    except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
        if method != "GET":
            raise  # a change is never sent twice
        # The daemon closed an idle keep-alive connection: a read is asked once more, on a new one.
        connection.close()
        connection.request(method, url)
        return connection.getresponse()


def _call_over(connection, method, url):
    try:
        response = _send(connection, method, url)
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        # Mid-call (a timeout, a reset): the connection's state is unknown, so the next call starts on a new one.
        connection.close()
        if isinstance(exc, OSError):
            raise
        raise ConnectionError(f"a malformed answer from the engine ({exc!r})") from exc
    if response.status >= 400:
        try:
            explanation = json.loads(body).get("message")
        except (ValueError, AttributeError):  # not JSON, or not an object
            explanation = body.decode("utf-8", "replace")
        raise APIError(f"{response.status} {response.reason} for {method} {url}",
                       response=_Status(response.status, response.reason), explanation=explanation)
    try:
        return json.loads(body) if body else None
    except ValueError as exc:
        raise ConnectionError(f"a malformed answer from the engine ({exc})") from exc


def _lost_snapshot_race(exc):
    return exc.status_code == 404 and "snapshot" in str(exc.explanation or "")


def missing_sdk_message():
    """What to do when the `docker` package cannot be imported (community.docker needs only `requests`; we need it)."""
    return (f"Cannot import the Python package docker: the Docker SDK for Python (docker>={MINIMUM_SDK_VERSION}) is required "
            "on the host that runs the modules: "
            f"pip install docker (into {sys.executable}, the Python that ran this module; if the SDK is installed for "
            "another one, point ansible_python_interpreter at it).")


def connect(params):
    """Return an EngineClient, or raise EngineConnectionError with a message for the operator."""
    if DOCKER_IMPORT_ERROR is not None:
        raise EngineConnectionError(missing_sdk_message())
    if not version_at_least(docker.__version__, MINIMUM_SDK_VERSION):
        raise EngineConnectionError(
            f"The Docker SDK for Python on the host that runs the modules ({sys.executable}) is {docker.__version__}, "
            f"too old: docker>={MINIMUM_SDK_VERSION} is required: pip install 'docker>={MINIMUM_SDK_VERSION}'."
        )
    settings = connection_settings(params)
    base_url = settings["base_url"]
    tls = None
    if settings["tls"]:
        try:
            tls = TLSConfig(**settings["tls"])
        except DockerException as exc:
            raise EngineConnectionError(f"TLS settings for {base_url} are not usable: {exc}")
    auto = settings["version"] == "auto"
    try:
        # A version given, so that the constructor does not ask the daemon for one yet: with `auto` it would, before
        # the tls_hostname check is mounted, and fail where docker_host's own name is not in the certificate.
        api = _APIClient(base_url=base_url, version=MINIMUM_API_VERSION if auto else settings["version"],
                         timeout=settings["timeout"], tls=tls or False, use_ssh_client=settings["use_ssh_client"])
        if settings["tls_hostname"]:
            api.mount("https://", _hostname_adapter(settings["tls_hostname"]))
        # One call both reaches the daemon and, for `auto`, gives the version to speak (as the SDK's own negotiation).
        server = api.version(api_version=False)
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise EngineConnectionError(describe_connection_error(base_url, exc))
    server_api = server.get("ApiVersion", "0")
    if not version_at_least(server_api, MINIMUM_API_VERSION):
        raise EngineConnectionError(
            f"The Docker daemon at {base_url} speaks API {server_api} (Docker {server.get('Version')}); "
            f"reclaim.docker needs API {MINIMUM_API_VERSION} (Docker 20.10) or newer."
        )
    if auto:
        api._version = server_api  # pylint: disable=protected-access
    elif not version_at_least(server_api, settings["version"]):
        raise EngineConnectionError(
            f"api_version {settings['version']} is newer than the Docker daemon at {base_url} supports ({server_api}). "
            "Use api_version: auto."
        )
    return EngineClient(api, base_url, server.get("Version"))


def docker_module(argument_spec, **kwargs):
    """An AnsibleModule with the connection options added to ARGUMENT_SPEC."""
    spec = connection_argument_spec()
    spec.update(argument_spec)
    required_together = list(kwargs.pop("required_together", [])) + CONNECTION_REQUIRED_TOGETHER
    return AnsibleModule(argument_spec=spec, required_together=required_together, **kwargs)


def connect_module(module):
    """connect() for a module: a failure ends the task with the operator's message, never a traceback."""
    try:
        return connect(module.params)
    except EngineConnectionError as exc:
        module.fail_json(msg=str(exc))
