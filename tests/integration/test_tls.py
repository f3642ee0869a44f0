"""The modules and playbooks against a daemon that takes TCP only with TLS (`--tlsverify`), as a remote Docker host is
set up: CA, server and client certificates made by openssl (harness.engines.make_certificates), one 28.5 daemon for
the module. Objects are seeded over the daemon's unix socket, and the engine's LayersSize, read there too, judges the
bytes.

REQUESTS_CA_BUNDLE names an unrelated CA during these tests: many hosts set it, and requests lets it replace a
session's own CA (docker/docker-py#2433): before the fix, every verified connection failed then.
"""

from __future__ import annotations

import json
from pathlib import Path

import ansible_runner
import pytest
import yaml

from harness import engines, scenario

from conftest import RUNNER_ENV, TARGET_PYTHON

FLAVOUR = "28.5"  # TLS is the client's business; one flavour shows it
DOCKER_ENV = ("DOCKER_HOST", "DOCKER_TLS", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS_HOSTNAME")
LAYERS = {"S": 1_000_000, "d1": 400_000, "d2": 300_000, "t": 200_000, "old": 250_000, "new": 150_000, "x": 350_000}


@pytest.fixture(scope="module")
def tls_engine():
    started = engines.start(FLAVOUR, "it-tls", tls=True)
    yield started
    engines.stop(started)


@pytest.fixture(autouse=True)
def environment(monkeypatch, tls_engine):
    """The runs inherit this process's environment: no Docker variables of the host's, a foreign CA bundle."""
    for name in DOCKER_ENV:
        monkeypatch.delenv(name, raising=False)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, str(tls_engine.tls_dir / "other-ca.pem"))


def client_dir(engine) -> Path:
    return engine.tls_dir / "client"


def tls_options(engine, **changes):
    """Verified TLS with a client certificate; CHANGES replace options (None removes one)."""
    options = {"docker_host": engine.tls_host, "tls": True, "validate_certs": True,
               "ca_path": str(client_dir(engine) / "ca.pem"), "client_cert": str(client_dir(engine) / "cert.pem"),
               "client_key": str(client_dir(engine) / "key.pem")}
    options.update(changes)
    return {key: value for key, value in options.items() if value is not None}


def key_lines(engine):
    """The base64 lines of the client's private key: none may show in any output."""
    return [line for line in (client_dir(engine) / "key.pem").read_text().splitlines() if line and "-----" not in line]


def assert_no_key(engine, *texts):
    for text in texts:
        text = text if isinstance(text, str) else json.dumps(text)
        leaked = [line for line in key_lines(engine) if line in text]
        assert not leaked, "the client key's contents are in the output"


def mine(prefix):
    return {"reclaim.test": prefix}


def seed(engine, prefix):
    return scenario.build(engine.docker_host, {"layers": LAYERS, "images": [
        {"name": "tagged", "tags": ["lab/t:1"], "layers": ["S", "t"], "labels": mine(prefix)},
        {"name": "dang1", "tags": [], "layers": ["S", "d1"], "labels": mine(prefix)},
        {"name": "dang2", "tags": [], "layers": ["d2"], "labels": mine(prefix)},
        {"name": "old", "tags": ["lab/keep:old"], "layers": ["old"], "created": "2020-01-01T00:00:00Z",
         "labels": mine(prefix)},
        {"name": "new", "tags": ["lab/keep:new"], "layers": ["new"], "created": "2021-01-01T00:00:00Z",
         "labels": mine(prefix)},
        {"name": "x", "tags": ["lab/x:1"], "layers": ["x"], "labels": mine(prefix)},
    ]}, prefix=prefix)


def test_every_module_over_verified_tls(ansible, tls_engine, prefix):
    built = seed(tls_engine, prefix)
    results = []

    prune = tls_options(tls_engine, images=True, images_filters={"label": f"reclaim.test={prefix}"})
    size_before = scenario.layers_size(tls_engine.docker_host)
    predicted, real = ansible.check_then_real("reclaim.docker.prune", prune, tls_engine, same=(
        "changed", "images", "images_space_reclaimed", "exact"))
    assert sorted(real["images"]) == sorted(built.images[n]["id"] for n in ("dang1", "dang2"))
    assert real["exact"] is True and real["images_space_reclaimed"] == LAYERS["d1"] + LAYERS["d2"]
    assert real["images_space_reclaimed"] == size_before - scenario.layers_size(tls_engine.docker_host)
    results += [predicted, real]

    remove = tls_options(tls_engine, name=[f"{prefix}/lab/x:1"])
    size_before = scenario.layers_size(tls_engine.docker_host)
    predicted, real = ansible.check_then_real("reclaim.docker.image_remove", remove, tls_engine, same=(
        "changed", "deleted", "reclaimed_bytes"))
    assert real["deleted"] == [built.images["x"]["id"]] and real["reclaimed_bytes"] == LAYERS["x"]
    assert real["reclaimed_bytes"] == size_before - scenario.layers_size(tls_engine.docker_host)
    results += [predicted, real]

    # The engine's only repository with two images is lab/keep (the other tests here tag one image per repository):
    # the older goes, the newer stays.
    retention = tls_options(tls_engine, keep_last=1, min_age="0s", dangling=False)
    size_before = scenario.layers_size(tls_engine.docker_host)
    predicted, real = ansible.check_then_real("reclaim.docker.image_retention", retention, tls_engine, same=(
        "changed", "deleted", "untagged", "reclaimed_bytes"))
    assert built.images["old"]["id"] in real["deleted"] and built.images["new"]["id"] not in real["deleted"]
    assert real["reclaimed_bytes"] == size_before - scenario.layers_size(tls_engine.docker_host)
    results += [predicted, real]

    usage = ansible.module("reclaim.docker.disk_usage_info", tls_options(tls_engine), tls_engine, check=True)
    assert usage.get("failed") is not True, usage.get("msg")
    assert usage["disk_usage"]["images"]["size"] == scenario.layers_size(tls_engine.docker_host)
    assert usage["engine"]["api_version"] == "1.51"
    assert usage["filesystem"] is None  # not on this host as far as the module knows: a tcp:// daemon
    results.append(usage)
    assert_no_key(tls_engine, results)


def test_the_environment_alone_connects(ansible, tls_engine, prefix):
    """DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem), as the docker CLI takes them,
    and no connection option in the task."""
    built = seed_dangling(tls_engine, prefix)
    env = {"DOCKER_HOST": tls_engine.tls_host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(client_dir(tls_engine))}
    # omit drops the docker_host that the test's module_defaults set from the inventory.
    tasks = [{"name": "usage", "reclaim.docker.disk_usage_info": {"docker_host": "{{ omit }}"}, "environment": env},
             {"name": "prune", "reclaim.docker.prune": {"docker_host": "{{ omit }}", "images": True,
                                                        "images_filters": {"label": f"reclaim.test={prefix}"}},
              "environment": env}]
    with scenario.unchanged(tls_engine.docker_host):
        run = ansible.play(tasks, {"host": tls_engine.docker_host}, check=True)
    usage, prune = run.task("usage")["result"], run.task("prune")["result"]
    assert usage.get("failed") is not True and prune.get("failed") is not True, (usage.get("msg"), prune.get("msg"))
    assert usage["disk_usage"]["images"]["size"] == scenario.layers_size(tls_engine.docker_host)
    assert prune["images"] == [built.images["dangling"]["id"]] and prune["images_space_reclaimed"] == LAYERS["d1"]
    assert_no_key(tls_engine, run.results, run.output)


def seed_dangling(engine, prefix):
    return scenario.build(engine.docker_host, {"layers": LAYERS, "images": [
        {"name": "dangling", "tags": [], "layers": ["d1"], "labels": mine(prefix)}]}, prefix=prefix)


# Each: the task's connection options, then what its message must say. Run as one playbook, with -vvv.
FAILURES = {
    "wrong CA": (lambda e: tls_options(e, ca_path=str(e.tls_dir / "other-ca.pem")),
                 ["not signed by the CA in ca_path", "certificate verify failed"]),
    "wrong tls_hostname": (lambda e: tls_options(e, tls_hostname="wrong.example"),
                           ["not valid for the name checked", "set tls_hostname", "'wrong.example'"]),
    # 127.1 reaches 127.0.0.1 but is not a name in the certificate.
    "docker_host not in the certificate": (lambda e: tls_options(e, docker_host=e.tls_host.replace("127.0.0.1", "127.1")),
                                           ["not valid for the name checked", "'127.1'"]),
    "client key missing": (lambda e: tls_options(e, client_key="/nonexistent/key.pem"),
                           ["client_key /nonexistent/key.pem (from client_key) is not a file."]),
    "client cert without key": (lambda e: tls_options(e, client_key=None),
                                ["parameters are required together: client_cert, client_key"]),
    "no client certificate": (lambda e: tls_options(e, client_cert=None, client_key=None),
                              ["refused the client certificate", "check client_cert and client_key"]),
    "plain TCP against the TLS port": (lambda e: {"docker_host": e.tls_host},
                                       ["speaks TLS only: set validate_certs (with ca_path, client_cert and client_key)"]),
}
# What must work: TLS without verification (encrypted, the daemon's certificate unchecked, as community.docker does),
# and a docker_host not in the certificate with tls_hostname naming one that is.
WORKS = {
    "tls without verification": lambda e: tls_options(e, validate_certs=False, ca_path=None),
    "tls_hostname": lambda e: tls_options(e, docker_host=e.tls_host.replace("127.0.0.1", "127.1"), tls_hostname="localhost"),
}


def test_failures_are_clear_and_nothing_leaks(ansible, tls_engine):
    tasks = [{"name": name, "reclaim.docker.disk_usage_info": options(tls_engine), "ignore_errors": True}
             for name, (options, _expected) in FAILURES.items()]
    tasks += [{"name": name, "reclaim.docker.disk_usage_info": options(tls_engine)} for name, options in WORKS.items()]
    with scenario.unchanged(tls_engine.docker_host):
        run = ansible.play(tasks, {"host": tls_engine.docker_host}, check=True, extra_args=("-vvv",))
    for name, (_options, expected) in FAILURES.items():
        result = run.task(name)["result"]
        assert result["failed"] is True, name
        # With -vvv, ansible-core puts "(traceback unavailable)" in a failure that carries none.
        assert "Traceback" not in result["msg"] + result.get("exception", ""), (name, result)
        for fragment in expected:
            assert fragment in result["msg"], (name, result["msg"])
    for name in WORKS:
        result = run.task(name)["result"]
        assert result.get("failed") is not True, (name, result.get("msg"))
        assert result["engine"]["version"].startswith("28.5"), name
    assert_no_key(tls_engine, run.results, run.output)


def run_playbook(tmp_path, playbook, hosts):
    """PLAYBOOK through ansible-runner (as AWX runs it) on the inventory HOSTS; the runner's result, its output, the
    report directory and the set_stats artifacts."""
    private = tmp_path / playbook
    (private / "inventory").mkdir(parents=True)
    (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump(hosts))
    report_dir = tmp_path / f"{playbook}-report"
    result = ansible_runner.run(private_data_dir=str(private), playbook=f"reclaim.docker.{playbook}", quiet=True,
                                extravars={"fleet_report_dir": str(report_dir)}, envvars=RUNNER_ENV)
    stats = [e for e in result.events if e.get("event") == "playbook_on_stats"]
    artifacts = stats[-1]["event_data"].get("artifact_data", {}) if stats else {}
    return result, result.stdout.read(), report_dir, artifacts


def test_the_playbooks_pass_the_tls_variables(tls_engine, prefix, tmp_path):
    """The audit (the cleanup role) and the disk usage playbook take the role's connection variables."""
    built = seed_dangling(tls_engine, prefix)
    client = client_dir(tls_engine)
    connection = {"cleanup_docker_host": tls_engine.tls_host, "cleanup_validate_certs": True,
                  "cleanup_ca_path": str(client / "ca.pem"), "cleanup_client_cert": str(client / "cert.pem"),
                  "cleanup_client_key": str(client / "key.pem")}
    hosts = {"all": {"children": {"docker_hosts": {"hosts": {"tlshost": connection}}},
                     "vars": {"ansible_connection": "local", "ansible_python_interpreter": TARGET_PYTHON,
                              "cleanup_min_age": "0s"}}}
    size_before = scenario.layers_size(tls_engine.docker_host)
    with scenario.unchanged(tls_engine.docker_host, what="the audit"):
        result, output, report_dir, artifacts = run_playbook(tmp_path, "audit", hosts)
    assert result.status == "successful", output
    report = json.loads((report_dir / "fleet-report.json").read_text())
    host = report["hosts"]["tlshost"]
    assert host["status"] == "ok", host.get("error")
    # The conservative profile: every dangling image on this engine (other tests' too), this test's among them.
    assert built.images["dangling"]["id"] in host["removed"]["images"] and host["reclaimed_bytes"] >= LAYERS["d1"]
    assert host["usage_before"]["images_bytes"] == size_before
    reports = [path.read_text() for path in report_dir.iterdir()]
    assert_no_key(tls_engine, output, artifacts, *reports)

    result, output, _report_dir, _artifacts = run_playbook(tmp_path, "disk_usage", hosts)
    assert result.status == "successful", output
    assert "tlshost (Docker 28.5" in output, output
    assert_no_key(tls_engine, output)
