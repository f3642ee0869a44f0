# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""The Docker connection, once: the option spec, the client our modules read and change the engine with, clear errors."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import env_fallback

from ansible_collections.reclaim.docker.plugins.module_utils._argspec import ArgumentSpec
# The other module utilities take APIError from here, with the client.
from ansible_collections.reclaim.docker.plugins.module_utils._transport import (  # pylint: disable=unused-import
    APIError,
    TLSSettings,
    Transport,
    engine_filters,
)

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
MINIMUM_API_VERSION = "1.41"
# /system/df takes a `type` list from this API version on; older engines compute every category.
DF_TYPE_MIN_API = "1.42"
# Pauses between reads of /system/df that lost a race with BuildKit (see EngineClient.system_df).
DF_RETRY_PAUSES = (0.1, 0.3, 1.0)


def connection_argument_spec():
    """The connection options of every module in the collection (see the _docker doc fragment)."""
    return ArgumentSpec(dict(
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
    ), required_together=[("client_cert", "client_key")])


class EngineConnectionError(Exception):
    """A connection problem, worded for the operator."""


def _version_tuple(version):
    return tuple(int(part) for part in str(version).split(".") if part.isdigit())


def version_at_least(version, minimum):
    return _version_tuple(version) >= _version_tuple(minimum)


def connection_settings(params, environ=None):
    """Resolve options and DOCKER_CERT_PATH into what the transport needs; raises EngineConnectionError on bad values.

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

    settings = dict(base_url=host, version=api_version, timeout=timeout, tls=None, tls_hostname=None)
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


def is_local_endpoint(params):
    """Whether PARAMS' docker_host is the local socket (unix://, or a bare path), so that the module runs on the Docker
    host and Docker's root dir is on its filesystem. Without I/O, before the engine is contacted; a docker_host that is
    no endpoint counts as local here and is left for connect() to name."""
    try:
        return connection_settings(params, {})["base_url"].startswith("unix://")
    except EngineConnectionError:
        return True


def _unix_socket_problem(base_url):
    path = base_url[len("unix://"):]
    if not os.path.exists(path):
        return f"the socket {path} does not exist: is the Docker daemon running on this host, and is docker_host right?"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"no permission to use {path}: run the task as root (become: true) or as a member of the docker group."
    return None


def _tls_hint(text):
    """What to check, by what OpenSSL (or Python's check of the name in the certificate) said."""
    lowered = text.lower()
    if "mismatch" in lowered or "doesn't match" in lowered:
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
    if base_url.startswith("ssh://"):
        return (f"Cannot reach the Docker daemon at {base_url} ({text}). As the Docker CLI does, reclaim.docker runs "
                "`docker system dial-stdio` on that host through the ssh command: `ssh -T [-p PORT] [-l USER] HOST docker "
                "system dial-stdio` must work non-interactively from the host that runs the module (key authentication, "
                "a known host key), and the docker CLI on that host must reach its daemon as that user.")
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


class EngineClient:
    """One engine's API through the transport, plus the engine facts our modules branch on."""

    def __init__(self, transport, base_url, engine_version):
        self.transport = transport
        self.base_url = base_url
        self.engine_version = engine_version
        self._info = None

    @property
    def api_version(self):
        return self.transport.api_version

    @property
    def timeout(self):
        return self.transport.timeout

    def info(self):
        if self._info is None:
            self._info = self.get_json("/info")
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

    def request(self, method, path, params=None):
        """One Engine API call (PATH unversioned, its parts already quoted; a list in PARAMS repeats its key); the
        decoded JSON answer, or None when the answer has no body. Raises APIError with the engine's status and
        message, OSError when the call got no answer. Connections are kept alive, one per thread."""
        return self.transport.request(method, path, params)

    def get_json(self, path, params=None):
        """GET an API path (e.g. /networks)."""
        return self.request("GET", path, params)

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

    def events(self, since, until, filters):
        """The engine's events from SINCE to UNTIL (Unix seconds; the stream ends at UNTIL), as decoded objects."""
        params = {"since": since, "until": until, "filters": engine_filters(filters)}
        return list(self.transport.stream("/events", params, read_timeout=self.timeout))

    def prune_build_cache(self, filters=None, keep_storage=None, prune_all=None):
        """POST /build/prune (BuildKit chooses the records): its answer, CachesDeleted and SpaceReclaimed."""
        params = {"filters": engine_filters(filters) if filters else None, "keep-storage": keep_storage or None,
                  "all": prune_all or None}
        return self.request("POST", "/build/prune", params) or {}

    def close(self):
        self.transport.close()


def _lost_snapshot_race(exc):
    return exc.status_code == 404 and "snapshot" in str(exc.explanation or "")


def connect(params):
    """Return an EngineClient, or raise EngineConnectionError with a message for the operator."""
    settings = connection_settings(params)
    base_url = settings["base_url"]
    tls = None
    if settings["tls"]:
        tls_files = settings["tls"]
        client_cert, client_key = tls_files["client_cert"] or (None, None)
        tls = TLSSettings(verify=tls_files["verify"], ca_cert=tls_files["ca_cert"], client_cert=client_cert,
                          client_key=client_key, hostname=settings["tls_hostname"])
    try:
        transport = Transport(base_url, settings["timeout"], tls)
    except ValueError as exc:
        raise EngineConnectionError(f"docker_host {base_url} is not usable: {exc}.") from None
    except OSError as exc:
        raise EngineConnectionError(f"TLS settings for {base_url} are not usable: {exc}") from None
    try:
        # Unversioned: one call both reaches the daemon and, for `auto`, gives the version to speak.
        server = transport.request("GET", "/version")
    except (APIError, OSError) as exc:
        transport.close()
        raise EngineConnectionError(describe_connection_error(base_url, exc)) from None
    server_api = server.get("ApiVersion", "0")
    if not version_at_least(server_api, MINIMUM_API_VERSION):
        transport.close()
        raise EngineConnectionError(
            f"The Docker daemon at {base_url} speaks API {server_api} (Docker {server.get('Version')}); "
            f"reclaim.docker needs API {MINIMUM_API_VERSION} (Docker 20.10) or newer."
        )
    if settings["version"] != "auto" and not version_at_least(server_api, settings["version"]):
        transport.close()
        raise EngineConnectionError(
            f"api_version {settings['version']} is newer than the Docker daemon at {base_url} supports ({server_api}). "
            "Use api_version: auto."
        )
    transport.api_version = server_api if settings["version"] == "auto" else settings["version"]
    return EngineClient(transport, base_url, server.get("Version"))
