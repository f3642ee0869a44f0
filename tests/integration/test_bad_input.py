"""Bad input, as users type it: every invalid value is refused with a message naming the option and the value,
before the engine is touched, and never with a traceback.

Validation runs before any engine is contacted, so one flavour shows it. To keep the run short, every module case
is a task of one ansible-playbook run, and every role case a block of a second one; both runs leave the engine,
which holds objects a wrongly accepted run would remove, as it was.
"""

from __future__ import annotations

import json
import uuid

import pytest

from harness import scenario

from conftest import Ansible

FLAVOUR = "28.5"
DIGEST = "sha256:" + "a" * 64

# (module, args, what the message must contain: the option, and something of the bad value)
MODULE_CASES = [
    # image_remove: names against Docker's reference grammar, IDs, digests, platforms
    ("image_remove", {"name": ["App:1"]}, "name: 'App:1' is not an image reference"),
    ("image_remove", {"name": ["lab/app:bad tag"]}, "name: 'lab/app:bad tag' has a tag other than"),
    ("image_remove", {"name": ["lab/app:"]}, "name: 'lab/app:' has a tag other than"),
    ("image_remove", {"name": ["lab/app:-rc1"]}, "name: 'lab/app:-rc1' has a tag other than"),
    ("image_remove", {"name": ["lab/app:" + "1" * 129]}, ("name: 'lab/app:111", "has a tag other than")),
    ("image_remove", {"name": ["lab//app"]}, "name: 'lab//app' is not an image reference"),
    ("image_remove", {"name": ["-app"]}, "name: '-app' is not an image reference"),
    ("image_remove", {"name": ["lab/app*"]}, "name: 'lab/app*' is not an image reference"),
    ("image_remove", {"name": ["registry:port/app"]}, "name: 'registry:port/app' is not an image reference"),
    ("image_remove", {"name": [" busybox"]}, "name: ' busybox' is not an image reference"),
    ("image_remove", {"name": ["busybox", ""]}, "name: '' is not an image reference"),
    ("image_remove", {"name": ["a" * 256]}, ("name: 'aaa", "has a name longer than 255 characters")),
    ("image_remove", {"name": ["lab/app@sha256:abc"]}, "name: 'lab/app@sha256:abc' has a digest other than sha256"),
    ("image_remove", {"name": ["lab/app@sha256:" + "A" * 64]}, ("name: 'lab/app@sha256:AAA", "has a digest other")),
    ("image_remove", {"name": ["lab/app@sha512:" + "a" * 128]}, ("name: 'lab/app@sha512:aaa", "has a digest other")),
    ("image_remove", {"name": ["lab/app@" + "a" * 64]}, ("name: 'lab/app@aaa", "has a digest other than sha256")),
    ("image_remove", {"name": ["sha256:abcdef"]}, "name: 'sha256:abcdef' is not an image ID"),
    ("image_remove", {"name": ["sha256:" + "g" * 64]}, ("name: 'sha256:ggg", "is not an image ID")),
    ("image_remove", {"name": []}, "name must list at least one image reference"),
    ("image_remove", {}, "missing required arguments: name"),
    ("image_remove", {"name": ["busybox"], "platform": "linux"}, "platform 'linux' is not OS/ARCH[/VARIANT]"),
    ("image_remove", {"name": ["busybox"], "platform": "Linux/amd64"}, "platform 'Linux/amd64' is not OS/ARCH"),
    ("image_remove", {"name": ["busybox"], "platform": "linux/arm64/v8/x"}, "platform 'linux/arm64/v8/x' is not"),
    ("image_remove", {"name": ["busybox"], "force": "maybe"}, ("argument 'force'", "'maybe'")),
    ("image_remove", {"name": ["busybox"], "forced": True}, ("Unsupported parameters", "forced")),

    # prune: filter keys per category
    ("prune", {"images": True, "images_filters": {"reference": "app:*"}}, "images_filters: unknown filter 'reference'"),
    ("prune", {"images": True, "images_filters": {"Dangling": True}}, "images_filters: unknown filter 'Dangling'"),
    ("prune", {"containers": True, "containers_filters": {"status": "exited"}},
     "containers_filters: unknown filter 'status'"),
    ("prune", {"networks": True, "networks_filters": {"dangling": True}}, "networks_filters: unknown filter 'dangling'"),
    ("prune", {"volumes": True, "volumes_filters": {"until": "24h"}}, "volumes_filters: unknown filter 'until'"),
    ("prune", {"builder_cache": True, "builder_cache_filters": {"label": "x"}},
     "builder_cache_filters: unknown filter 'label'"),
    # ... and their values
    ("prune", {"images": True, "images_filters": {"dangling": "maybe"}}, "dangling must be true or false, got 'maybe'"),
    ("prune", {"images": True, "images_filters": {"dangling": [True, False]}}, "dangling must be true or false, got ["),
    ("prune", {"volumes": True, "volumes_filters": {"all": "sometimes"}}, "volumes_filters: all must be true or false"),
    ("prune", {"builder_cache": True, "builder_cache_filters": {"inuse": "perhaps"}},
     "builder_cache_filters: inuse must be true or false, got 'perhaps'"),
    ("prune", {"builder_cache": True, "builder_cache_filters": {"type": "layers"}},
     "builder_cache_filters.type: 'layers' is no build cache record type"),
    ("prune", {"builder_cache": True, "builder_cache_filters": {"id": ""}}, "builder_cache_filters.id: an empty value"),
    # durations and times
    ("prune", {"images": True, "images_filters": {"until": "30days"}}, "images_filters.until: '30days' is neither"),
    ("prune", {"containers": True, "containers_filters": {"until": ["1h", "2h"]}},
     "containers_filters: give one until, got ['1h', '2h']"),
    ("prune", {"networks": True, "networks_filters": {"until": "2024-02-30"}}, "networks_filters.until: '2024-02-30'"),
    ("prune", {"images": True, "images_filters": {"until": "2024-W05"}}, "images_filters.until: '2024-W05' is neither"),
    ("prune", {"images": True, "images_filters": {"until": "99999999999999999999999"}},
     "images_filters.until: '99999999999999999999999' is past the Unix times"),
    ("prune", {"builder_cache": True, "builder_cache_filters": {"until": "9999999999h"}},
     "builder_cache_filters.until: '9999999999h' is longer than a Go duration"),
    ("prune", {"images": True, "min_age": "-1h"}, "min_age: '-1h' is negative"),
    ("prune", {"images": True, "min_age": "3600"}, "min_age: '3600' is not a duration"),
    ("prune", {"images": True, "min_age": "99999999999999999999h"}, "min_age: '99999999999999999999h' is longer"),
    # sizes
    ("prune", {"builder_cache": True, "builder_cache_keep_storage": "ten gigs"},
     "builder_cache_keep_storage: 'ten gigs' is not a size"),
    ("prune", {"builder_cache": True, "builder_cache_keep_storage": "-5GB"}, "builder_cache_keep_storage: '-5GB'"),
    ("prune", {"builder_cache": True, "builder_cache_keep_storage": "99999999999P"},
     "builder_cache_keep_storage: '99999999999P' is more than Docker's sizes hold"),
    # label expressions
    ("prune", {"images": True, "images_filters": {"label": "=prod"}}, "images_filters.label: '=prod' is not KEY"),
    ("prune", {"images": True, "images_filters": {"label": "tier = prod"}},
     "images_filters.label: 'tier = prod' has whitespace in its key"),
    ("prune", {"containers": True, "containers_filters": {"label!": ["keep", ""]}},
     "containers_filters.label!: '' is not KEY or KEY=VALUE"),
    ("prune", {"images": True, "images_filters": {"label": "keep!=yes"}}, "images_filters.label: 'keep!=yes' has a key with !"),
    ("prune", {"networks": True, "networks_filters": {"label": {"team=core": "yes"}}},
     ("networks_filters.label: in Docker's map form", "'yes'")),
    ("prune", {"images": True, "images_filters": {"label": None}}, "images_filters.label: takes a string, a list"),
    ("prune", {"images": True, "images_filters": {"label": [["team"]]}}, ("images_filters.label: takes a string", "[['team']]")),
    ("prune", {"images": True, "protect": {"labels": ["keep me"]}}, "protect.labels: 'keep me' has whitespace in its key"),
    ("prune", {"images": True, "protect": {"labels": ["!keep"]}}, "protect.labels: '!keep' has a key with !"),
    # globs that cannot mean what was typed
    ("prune", {"images": True, "protect": {"references": ["postgres"]}},
     "protect.references: 'postgres' never matches: the engine lists every image as NAME:TAG"),
    ("prune", {"images": True, "protect": {"references": ["docker.io/library/postgres:*"]}},
     "protect.references: 'docker.io/library/postgres:*' never matches"),
    ("prune", {"images": True, "protect": {"references": ["postgres:1[6"]}}, "protect.references: 'postgres:1[6' opens a ["),
    ("prune", {"images": True, "protect": {"references": ["Postgres:*"]}}, "protect.references: 'Postgres:*' never matches"),
    ("prune", {"images": True, "protect": {"references": ["postgres:{15,16}"]}},
     "protect.references: 'postgres:{15,16}' never matches"),
    ("prune", {"images": True, "protect": {"references": ["postgres:.*"]}}, "protect.references: 'postgres:.*' never"),
    ("prune", {"images": True, "protect": {"references": ["postgres@sha256:*"]}},
     "protect.references: 'postgres@sha256:*' never matches: patterns match tags"),
    ("prune", {"images": True, "protect": {"colours": ["red"]}}, ("Unsupported parameters", "protect.colours")),
    # a switched-off prune's options are ignored (test_drop_in.py), but keep_storage is read, as docker_prune reads it
    ("prune", {"images": True, "builder_cache_keep_storage": "ten gigs"},
     "builder_cache_keep_storage: 'ten gigs' is not a size"),
    # approved plans
    ("prune", {"images": True, "approved": [{"name": "x"}]}, "approved[0]: an item ID (a string) or a plan item"),
    ("prune", {"images": True, "approved": [{"id": "x", "references": "app:1"}]},
     "approved[0].references: a list of image references, got 'app:1'"),
    ("image_retention", {"keep_last": 1, "approved": [{"id": "x", "type": "pod"}]}, "approved[0].type: one of container"),
    ("prune", {"images": True, "approved_engine_id": "X"}, "approved_engine_id is set but approved is not"),
    ("prune", {"images": True, "approved": [], "approved_engine_id": ""}, "approved_engine_id: an empty engine ID"),
    ("prune", {"builder_cache": True, "approved": [], "builder_cache_keep_storage": "1GB"},
     "builder_cache_keep_storage cannot be used with approved"),
    ("prune", {"builder_cache": True, "approved": [], "builder_cache_filters": {"id": "abc"}},
     "builder_cache_filters.id cannot be used with approved"),
    ("prune", {"images": True, "usage_ledger": "sometimes"}, ("argument 'usage_ledger'", "'sometimes'")),
    # wrong types
    ("prune", {"images": "sometimes"}, ("argument 'images'", "'sometimes'")),
    ("prune", {"images": True, "images_filters": ["dangling=false"]}, ("argument 'images_filters'", "list")),
    ("prune", {"images": True, "assume_deleted": ["sha256:abc"]}, ("assume_deleted takes full image IDs", "['sha256:abc']")),

    # image_retention: ages, sizes, percents, watermarks, and a policy to enforce
    ("image_retention", {"keep_last": -1}, "keep_last must be 0 or more, got -1"),
    ("image_retention", {"keep_last": "three"}, ("argument 'keep_last'", "'three'")),
    ("image_retention", {"max_age": "30days"}, "max_age: '30days' is not a duration"),
    ("image_retention", {"max_age": "-30d"}, "max_age: '-30d' is negative"),
    ("image_retention", {"max_age": "1d", "min_age": "2d"}, "min_age (2d) is above max_age (1d)"),
    ("image_retention", {"max_images_bytes": "1.5.5G"}, "max_images_bytes: '1.5.5G' is not a size"),
    ("image_retention", {"max_images_bytes": "99999999999P"}, "max_images_bytes: '99999999999P' is more than"),
    ("image_retention", {"high_watermark": 150, "low_watermark": 50}, "high_watermark is a percent between 0 and 100, got 150"),
    ("image_retention", {"high_watermark": 0, "low_watermark": 0}, "high_watermark is a percent between 0 and 100, got 0"),
    ("image_retention", {"high_watermark": "nan", "low_watermark": 50}, "high_watermark is a percent between 0 and 100, got nan"),
    ("image_retention", {"high_watermark": "85%", "low_watermark": 70}, ("argument 'high_watermark'", "float")),
    ("image_retention", {"high_watermark": 80, "low_watermark": 90}, "low_watermark (90.0) is above high_watermark (80.0)"),
    ("image_retention", {"high_watermark": 85}, "parameters are required together: high_watermark, low_watermark"),
    ("image_retention", {"max_images_bytes": "1GB", "high_watermark": 85, "low_watermark": 70},
     "parameters are mutually exclusive: max_images_bytes|high_watermark"),
    ("image_retention", {"dangling": False, "protect": {"references": ["lab/*"]}}, "image_retention has no policy"),
    ("image_retention", {"keep_last": 1, "protect": {"references": ["localhost:5000/app"]}},
     "protect.references: 'localhost:5000/app' never matches"),
    ("image_retention", {"keep_last": 1, "fail_on_violation": "maybe"}, ("argument 'fail_on_violation'", "'maybe'")),

    # disk_usage_info: its switches and the connection options (checked before connecting)
    ("disk_usage_info", {"volumes": "maybe"}, ("argument 'volumes'", "'maybe'")),
    ("disk_usage_info", {"filesystem": [1]}, ("argument 'filesystem'", "list")),
    ("disk_usage_info", {"volume": True}, ("Unsupported parameters", "volume")),
    ("disk_usage_info", {"docker_host": "ftp://docker.example.com"}, ("docker_host", "'ftp://docker.example.com'")),
    ("disk_usage_info", {"docker_host": ""}, "docker_host is empty"),
    ("disk_usage_info", {"timeout": 0}, ("timeout", "got 0")),
    ("disk_usage_info", {"timeout": "soon"}, ("argument 'timeout'", "'soon'")),
    ("disk_usage_info", {"api_version": "1.40"}, ("api_version", "1.40", "too old")),
    ("disk_usage_info", {"api_version": "latest"}, ("api_version", "'latest'")),
    ("disk_usage_info", {"client_cert": "/tmp/cert.pem"}, "parameters are required together: client_cert, client_key"),
]

# (role, variables, what the message must contain). The cleanup role stops at its argument specs or its preflight,
# or, for values only a module reads, records the module's refusal in cleanup_result (status failed) and changes
# nothing; the fleet report stops at its argument specs or its preflight.
ROLE_CASES = [
    ("cleanup", {"cleanup_profile": "extreme"}, ("cleanup_profile", "extreme")),
    ("cleanup", {"cleanup_prune_volumes": "sometimes"}, ("cleanup_prune_volumes", "'sometimes'")),
    ("cleanup", {"cleanup_prune_named_volumes": True}, "cleanup_prune_named_volumes needs cleanup_prune_volumes"),
    ("cleanup", {"cleanup_protect": {"references": [], "labels": [], "colours": ["red"]}}, "cleanup_protect.colours"),
    ("cleanup", {"cleanup_protect": "app:*"}, ("cleanup_protect", "dict")),
    ("cleanup", {"cleanup_timeout": "soon"}, ("cleanup_timeout", "'soon'")),
    ("cleanup", {"cleanup_retention": {"keep_lst": 3}}, "cleanup_retention.keep_lst"),
    ("cleanup", {"cleanup_approved_plan": "everything"}, ("cleanup_approved_plan", "dict")),
    ("cleanup", {"cleanup_approved_plan": {"engine_id": "X", "objects": [{"id": "y", "type": "pod"}]}},
     "approved[0].type: one of container"),
    ("cleanup", {"cleanup_retention": {"keep_last": 2, "min_age": "2h"}}, "cleanup_retention.min_age"),
    ("cleanup", {"cleanup_retention": {"keep_last": "three"}}, ("keep_last", "'three'", "cleanup_retention")),
    ("cleanup", {"cleanup_retention": {"high_watermark": "85%", "low_watermark": 70}}, ("high_watermark", "float")),
    ("cleanup", {"cleanup_min_age": "soon"}, "min_age: 'soon' is not a duration"),
    ("cleanup", {"cleanup_protect": {"references": ["Postgres:*"], "labels": []}},
     "protect.references: 'Postgres:*' never matches"),
    ("cleanup", {"cleanup_protect": {"references": [], "labels": ["=keep"]}}, "protect.labels: '=keep' is not KEY"),
    ("cleanup", {"cleanup_retention": {"max_age": "1d"}, "cleanup_min_age": "2d"}, "min_age (2d) is above max_age (1d)"),
    ("cleanup", {"cleanup_retention": {"high_watermark": 80, "low_watermark": 90}},
     "low_watermark (90.0) is above high_watermark (80.0)"),
    ("cleanup", {"cleanup_retention": {"max_images_bytes": "ten gigs"}}, "max_images_bytes: 'ten gigs' is not a size"),
    ("cleanup", {"cleanup_retention": {"protect": {"references": ["lab/*"]}}}, "image_retention has no policy"),
    ("fleet_report", {}, "missing required arguments: fleet_report_hosts"),
    ("fleet_report", {"fleet_report_hosts": {"host": 1}}, ("fleet_report_hosts", "list")),
    ("fleet_report", {"fleet_report_hosts": ["host"], "fleet_report_prometheus": "maybe"},
     ("fleet_report_prometheus", "'maybe'")),
    ("fleet_report", {"fleet_report_hosts": ["host"], "fleet_report_base_dir": ""},
     "fleet_report_base_dir is empty and so is fleet_report_dir"),
]

# What a wrongly accepted run would remove: a dangling image, an unused tagged one, a stopped container, an unused
# network and an anonymous volume.
AT_STAKE = {
    "images": [{"name": "dangling", "tags": [], "layers": ["d"], "created": "2020-01-01T00:00:00Z"},
               {"name": "unused", "tags": ["lab/unused:1"], "layers": ["u"], "created": "2020-01-01T00:00:00Z"},
               {"name": "stopped", "tags": ["lab/stopped:1"], "layers": ["s"], "created": "2020-01-01T00:00:00Z"}],
    "containers": [{"name": "stopped", "image": "stopped", "state": "exited"}],
    "networks": [{"name": "unused"}],
    "volumes": [{"anonymous": True, "bytes": 1000}],
}


def role_case_tasks(index, role, variables):
    """The role on its own, in a block: `refused` runs when the role stopped with a failure, `recorded` when it ran
    to its end (the cleanup role then holds a module's refusal in cleanup_result)."""
    if role == "cleanup":
        variables = dict({"cleanup_docker_host": "{{ reclaim_docker_host }}"}, **variables)
    return {"name": f"role case {index}", "block": [
        {"name": f"run {index}", "ansible.builtin.include_role": {"name": f"reclaim.docker.{role}"}, "vars": variables},
        {"name": f"recorded {index}", "ansible.builtin.debug": {"var": "cleanup_result"}},
    ], "rescue": [{"name": f"refused {index}", "ansible.builtin.debug": {"var": "ansible_failed_result"}}]}


@pytest.fixture(scope="module")
def runs(engine, tmp_path_factory):
    """The two playbook runs, on an engine with something to lose, which they must leave as it was."""
    if engine.flavour != FLAVOUR:
        pytest.skip("validation happens before any engine is contacted: one flavour shows it")
    scenario.build(engine.docker_host, AT_STAKE, prefix="t" + uuid.uuid4().hex[:8])
    ansible = Ansible(tmp_path_factory.mktemp("bad-input"))
    hosts = {"host": engine.docker_host}
    with scenario.unchanged(engine.docker_host, what="a refused run"):
        modules = ansible.play([{"name": f"module case {index}", f"reclaim.docker.{module}": args, "ignore_errors": True}
                                for index, (module, args, _fragments) in enumerate(MODULE_CASES)], hosts)
        roles = ansible.play([role_case_tasks(index, role, variables)
                              for index, (role, variables, _fragments) in enumerate(ROLE_CASES)], hosts)
    return modules, roles


def assert_refused(message, result, fragments):
    fragments = (fragments,) if isinstance(fragments, str) else fragments
    assert all(fragment in message for fragment in fragments), (fragments, message)
    assert "Traceback" not in json.dumps(result), result


def cases(table):
    return [pytest.param(index, id=f"{name}-{index}") for index, (name, _args, _fragments) in enumerate(table)]


@pytest.mark.parametrize("index", cases(MODULE_CASES))
def test_a_module_refuses_bad_input(runs, index):
    result = runs[0].task(f"module case {index}")["result"]
    assert result["failed"] is True, result
    assert_refused(result["msg"], result, MODULE_CASES[index][2])


@pytest.mark.parametrize("index", cases(ROLE_CASES))
def test_a_role_refuses_bad_input(runs, index):
    run = runs[1]
    refused = [r for r in run.results if r["task"] == f"refused {index}"]
    if refused:
        failure = refused[0]["result"]["ansible_failed_result"]
        assert_refused(failure["msg"], failure, ROLE_CASES[index][2])
    else:
        outcome = run.task(f"recorded {index}")["result"]["cleanup_result"]
        assert outcome["status"] == "failed", outcome
        assert_refused(outcome["error"], outcome, ROLE_CASES[index][2])
