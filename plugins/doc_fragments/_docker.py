# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is PRIVATE to the collection: it can change at any time.

from __future__ import annotations


class ModuleDocFragment:
    # The Docker connection options, with community.docker's names, aliases, defaults and
    # environment fallbacks, so one module_defaults group serves both collections.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The URL or Unix socket path used to connect to the Docker API. To connect to a remote host, provide the TCP
        connection string, for example V(tcp://192.0.2.23:2376). With TLS, C(tcp) is replaced by C(https).
      - V(ssh://[USER@]HOST[:PORT]) reaches the engine of HOST as the Docker CLI does, by running
        C(ssh -T [-l USER] [-p PORT] HOST docker system dial-stdio) from the host that runs the module. C(ssh) must log
        in there without a prompt (keys, a known host key; C(BatchMode) is set), and the C(docker) CLI on HOST must
        reach its daemon as that user.
      - If the value is not specified in the task, the value of environment variable E(DOCKER_HOST) is used instead.
        If the environment variable is not set, the default value is used.
    type: str
    default: unix:///var/run/docker.sock
    aliases:
      - docker_url
  tls_hostname:
    description:
      - When verifying the authenticity of the Docker host, the name expected in its certificate, when it differs from
        the host name in O(docker_host).
      - If the value is not specified in the task, the value of environment variable E(DOCKER_TLS_HOSTNAME) is used instead.
    type: str
  api_version:
    description:
      - The version of the Docker API to use. V(auto) speaks the version the engine reports (its newest), as the Docker
        CLI's negotiation does; the modules need 1.41 (Docker 20.10) or newer.
      - If the value is not specified in the task, the value of environment variable E(DOCKER_API_VERSION) is used instead.
        If the environment variable is not set, the default value is used.
    type: str
    default: auto
    aliases:
      - docker_api_version
  timeout:
    description:
      - The maximum amount of time in seconds to wait on a response from the API.
      - If the value is not specified in the task, the value of environment variable E(DOCKER_TIMEOUT) is used instead.
        If the environment variable is not set, the default value is used.
    type: int
    default: 60
  ca_path:
    description:
      - Verify the Docker host's certificate against this CA certificate file. The environment variables
        E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE) do not replace it.
      - If the value is not specified in the task and the environment variable E(DOCKER_CERT_PATH) is set, the file
        C(ca.pem) from that directory is used.
    type: path
    aliases:
      - ca_cert
      - tls_ca_cert
      - cacert_path
  client_cert:
    description:
      - Path to the client's TLS certificate file.
      - If the value is not specified in the task and the environment variable E(DOCKER_CERT_PATH) is set, the file
        C(cert.pem) from that directory is used.
    type: path
    aliases:
      - tls_client_cert
      - cert_path
  client_key:
    description:
      - Path to the client's TLS key file.
      - If the value is not specified in the task and the environment variable E(DOCKER_CERT_PATH) is set, the file
        C(key.pem) from that directory is used.
    type: path
    aliases:
      - tls_client_key
      - key_path
  tls:
    description:
      - Secure the connection to the API with TLS without verifying the authenticity of the Docker host. If
        O(validate_certs) is V(true) as well, it takes precedence.
      - If the value is not specified in the task, the value of environment variable E(DOCKER_TLS) is used instead.
        If the environment variable is not set, the default value is used.
    type: bool
    default: false
  use_ssh_client:
    description:
      - Accepted for community.docker's sake. C(ssh://) hosts are always reached with the C(ssh) command, as
        community.docker does when this is V(true) (there is no paramiko here).
    type: bool
    default: false
  validate_certs:
    description:
      - Secure the connection to the API with TLS and verify the authenticity of the Docker host.
      - If the value is not specified in the task, the value of environment variable E(DOCKER_TLS_VERIFY) is used instead.
        If the environment variable is not set, the default value is used.
    type: bool
    default: false
    aliases:
      - tls_verify
  debug:
    description:
      - Accepted so that a C(module_defaults) group with community.docker's connection options, C(debug) included, serves
        both collections.
      - As in community.docker's modules that plan changes (such as M(community.docker.docker_container)), V(true) returns
        the C(diff) of a module that supports diff mode (M(reclaim.docker.image_remove)) also when the task does not run
        in diff mode. The modules that change the engine return their C(actions) whatever it says, so that is all it
        changes. It writes no log, and the other modules ignore it.
    type: bool
    default: false
attributes:
  action_group:
    description: Use C(group/reclaim.docker.docker) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - reclaim.docker.docker
notes:
  - Connect to the Docker daemon with these options in each task, once for many tasks with
    C(module_defaults) and the action group C(group/reclaim.docker.docker) (which also covers community.docker's modules),
    or with the environment variables E(DOCKER_HOST), E(DOCKER_TLS_HOSTNAME), E(DOCKER_API_VERSION), E(DOCKER_CERT_PATH),
    E(DOCKER_TLS), E(DOCKER_TLS_VERIFY) and E(DOCKER_TIMEOUT).
  - This module talks to the engine with Python's standard library alone (Unix sockets, TCP, TLS with the C(ssl) module,
    C(ssh://) through the C(ssh) command), so nothing needs to be installed for the Python that runs it, where
    community.docker's modules need C(requests).
requirements:
  - Python 3.9 or newer on the host that runs the module, with nothing installed for it.
  - For C(ssh://) hosts, the C(ssh) client on the host that runs the module and the C(docker) CLI on the Docker host.
  - Docker Engine API >= 1.41 (Docker 20.10 or newer).
"""
