"""Docker's root dir read on the Docker host: the checks that the module runs there (a unix socket, the engine's own
root dir), and one scan of a root dir laid out as overlay2 lays it out in a temporary directory."""

from __future__ import annotations

import os

import pytest
from root_dirs import overlay2_root

from ansible_collections.reclaim.docker.plugins.module_utils._root_dir_scan import (
    ENGINE_ID_FILE,
    remote_host_problem,
    root_dir_problem,
    scan,
)

LAYER = "d" * 64
LEAK = "e" * 64


def params(host):
    return dict(docker_host=host, timeout=60, api_version="auto", tls=False, validate_certs=False, ca_path=None,
                client_cert=None, client_key=None, tls_hostname=None)


def test_only_a_unix_socket_reaches_the_root_dir():
    assert remote_host_problem(params("unix:///var/run/docker.sock"), "root_dir") is None
    assert remote_host_problem(params("/var/run/docker.sock"), "root_dir") is None
    for host in ("tcp://127.0.0.1:2375", "ssh://admin@docker1"):
        problem = remote_host_problem(params(host), "storage_leaks")
        assert problem.startswith("storage_leaks reads Docker's root dir") and host in problem


def test_a_root_dir_of_another_engine_is_refused(tmp_path):
    (tmp_path / ENGINE_ID_FILE).write_text("11111111-aaaa\n")
    assert root_dir_problem(str(tmp_path), "11111111-aaaa") is None
    assert "belongs to engine 11111111-aaaa" in root_dir_problem(str(tmp_path), "22222222-bbbb")
    assert root_dir_problem(str(tmp_path), None) is None  # an engine that gives no ID cannot be told apart
    os.unlink(tmp_path / ENGINE_ID_FILE)
    assert root_dir_problem(str(tmp_path), "22222222-bbbb") is None  # 20.10 keeps no engine-id


def test_a_root_dir_that_is_not_a_directory_here_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    assert "not a directory on this host" in root_dir_problem(str(tmp_path / "missing"), "x")
    assert "not a directory on this host" in root_dir_problem(str(tmp_path / "file"), "x")
    assert root_dir_problem("", "x") == "the engine reports no root dir"
    (tmp_path / ENGINE_ID_FILE).mkdir()
    assert "cannot be read" in root_dir_problem(str(tmp_path), "x")


@pytest.fixture
def root(tmp_path):
    """A root dir with one layer the layer database names and one it does not (with its short link)."""
    return overlay2_root(tmp_path / "docker", LAYER, [LEAK], links={LAYER: "KEPTLINK", LEAK: "LEAKLINK"})


def test_a_whole_scan_is_exact_and_finds_the_layer_nothing_names(root):
    report, leaks = scan(str(root), "overlay2")
    assert report["exact"] is True and "inexact_reason" not in report
    assert [(leak["relative_path"], leak["links"]) for leak in leaks] == [(f"overlay2/{LEAK}", ["overlay2/l/LEAKLINK"])]
    assert report["categories"]["leaked"] == leaks[0]["accounted_bytes"] >= 10_000
    assert report["categories"]["images"] >= 10_000


def test_metadata_that_cannot_be_read_whole_makes_the_scan_inexact(root):
    chain = root / "image" / "overlay2" / "layerdb" / "sha256" / ("0" * 64)
    chain.mkdir()
    (chain / "cache-id").write_text("../../etc")
    report, _leaks = scan(str(root), "overlay2")
    assert report["exact"] is False and "cache-id" in report["inexact_reason"]


def test_a_containerd_store_kept_outside_the_root_dir_makes_the_scan_inexact(root):
    report, _leaks = scan(str(root), "containerd")
    assert report["exact"] is False and "outside Docker's root dir (a system containerd)" in report["inexact_reason"]
