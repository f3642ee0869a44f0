"""reclaim.docker.image_retention through Ansible, on a fresh engine of every flavour per test.

Retention looks at every image on an engine, so these tests do not share engines: each gets its own (they start
in about a second) and knows exactly what is there.
"""

from __future__ import annotations

import datetime

import pytest

from harness import engines, scenario

MODULE = "reclaim.docker.image_retention"
DAY = 86400


def days_ago(days):
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# Five builds of app sharing S, two of web; one image tagged in both; protected, in-use, fresh and dangling ones.
SPEC = {
    "layers": {"S": 1_000_000, "a1": 100_000, "a2": 200_000, "a3": 300_000, "a4": 400_000, "a5": 500_000,
               "w1": 110_000, "w2": 120_000, "both": 130_000, "prot": 140_000, "used": 150_000, "new": 160_000,
               "dang": 170_000},
    "images": [
        {"name": "a1", "tags": ["app:1"], "layers": ["S", "a1"], "created": days_ago(60)},
        {"name": "a2", "tags": ["app:2"], "layers": ["S", "a2"], "created": days_ago(50)},
        {"name": "a3", "tags": ["app:3"], "layers": ["S", "a3"], "created": days_ago(20)},
        {"name": "a4", "tags": ["app:4"], "layers": ["S", "a4"], "created": days_ago(10)},
        {"name": "a5", "tags": ["app:5"], "layers": ["S", "a5"], "created": days_ago(5)},
        {"name": "w1", "tags": ["web:1"], "layers": ["w1"], "created": days_ago(40)},
        {"name": "w2", "tags": ["web:2"], "layers": ["w2"], "created": days_ago(3)},
        {"name": "both", "tags": ["app:old", "tools:1"], "layers": ["both"], "created": days_ago(70)},
        {"name": "prot", "tags": ["app:prot"], "layers": ["prot"], "created": days_ago(90), "labels": {"keep": "yes"}},
        {"name": "used", "tags": ["app:used"], "layers": ["used"], "created": days_ago(80)},
        {"name": "new", "tags": ["app:new"], "layers": ["new"], "created": days_ago(0)},
        {"name": "dang", "tags": [], "layers": ["dang"], "created": days_ago(30)},
    ],
    "containers": [{"name": "user", "image": "app:used", "state": "exited"}],
}
PROTECT = {"labels": ["keep"]}


@pytest.fixture(params=engines.FLAVOURS)
def fresh(request):
    engine = engines.start(request.param, f"ret-{request.param.replace('.', '')}")
    built = scenario.build(engine.docker_host, SPEC)
    yield engine, built
    engines.stop(engine)


def check_then_real(ansible, engine, args):
    predicted, real = ansible.check_then_real(MODULE, args, engine, same=(
        "changed", "violations", "kept", "untagged", "deleted", "reclaimed_bytes", "exact"))
    assert real["exact"] is True, real.get("inexact_reason")
    return predicted, real


def ids(built, *names):
    return sorted(built.images[n]["id"] for n in names)


def test_keep_last_max_age_and_min_age(ansible, fresh):
    engine, built = fresh
    args = {"keep_last": 3, "max_age": "30d", "min_age": "1h", "protect": PROTECT, "report_kept": True}
    size_before = scenario.layers_size(engine.docker_host)
    predicted, real = check_then_real(ansible, engine, args)
    by_image = {v["image"]: v for v in real["violations"]}
    # app by age: new, a5, a4 (the last 3: the floor), a3, a2, a1, both (app:old), used, prot. Outside the floor max_age
    # applies: a3 (20 d) stays. web has two images: w1 stays, though 40 days old.
    assert sorted(by_image) == ids(built, "a1", "a2", "both", "dang")
    assert by_image[built.images["a2"]["id"]]["reasons"] == ["not among the last 3 of app", "older than max_age"]
    # tools:1 is tools' only image: the floor keeps it, only app:old goes.
    assert by_image[built.images["both"]["id"]]["action"] == "untag"
    assert by_image[built.images["both"]["id"]]["untag"] == ["app:old"]
    assert by_image[built.images["dang"]["id"]]["reasons"] == ["dangling"]
    kept = {k["image"]: k["reason"] for k in real["kept"]["images"]}
    assert kept[built.images["prot"]["id"]] == "protected" and kept[built.images["used"]["id"]] == "in_use"
    assert kept[built.images["new"]["id"]] == "too_young" and kept[built.images["a5"]["id"]] == "keep_last"
    assert kept[built.images["w1"]["id"]] == "keep_last" and kept[built.images["a3"]["id"]] == "within_policy"
    assert real["deleted"] == ids(built, "a1", "a2", "dang") and "app:old" in real["untagged"]
    assert real["reclaimed_bytes"] == size_before - scenario.layers_size(engine.docker_host)
    assert predicted["usage_after"]["images_bytes"] == real["usage_after"]["images_bytes"]
    if engine.flavour != "28.5-containerd":
        # S stays with a3, a4 and a5; each deleted image frees its own layer only.
        assert real["reclaimed_bytes"] == sum(SPEC["layers"][n] for n in ("a1", "a2", "dang"))
    again = ansible.module(MODULE, args, engine)
    assert again["changed"] is False and again["violations"] == []


def test_a_tag_outside_the_policy_is_untagged_when_the_image_keeps_another(ansible, fresh):
    engine, built = fresh
    # tools:1 is the only tools image: kept; app:old is outside the last 3 of app: untagged only.
    args = {"keep_last": 3, "min_age": "1h", "protect": PROTECT, "dangling": False}
    _predicted, real = check_then_real(ansible, engine, args)
    both = next(v for v in real["violations"] if v["image"] == built.images["both"]["id"])
    assert both["action"] == "untag" and both["untag"] == ["app:old"] and both["bytes"] == 0
    assert built.images["both"]["id"] not in real["deleted"] and "app:old" in real["untagged"]
    assert built.images["dang"]["id"] not in {v["image"] for v in real["violations"]}


def test_budget_eviction_stops_at_the_mark(ansible, fresh):
    engine, built = fresh
    size = scenario.layers_size(engine.docker_host)
    # Ask for a bit more than the least recently used unprotected image frees (its content blobs too on the
    # containerd store: priced by image_remove's check mode, which the real run below proves against LayersSize).
    alone = ansible.module("reclaim.docker.image_remove", {"name": [built.images["both"]["id"]], "force": True}, engine,
                           check=True)
    assert alone["deleted"] == [built.images["both"]["id"]] and alone["exact"] is True
    budget = size - alone["reclaimed_bytes"] - 50_000
    args = {"max_images_bytes": str(budget), "protect": PROTECT, "min_age": "1h", "dangling": False}
    _predicted, real = check_then_real(ansible, engine, args)
    evicted = [v for v in real["violations"] if v["reasons"][0].startswith("disk pressure")]
    assert [v["image"] for v in evicted] == [built.images["both"]["id"], built.images["a1"]["id"]], evicted
    assert scenario.layers_size(engine.docker_host) == real["usage_after"]["images_bytes"] <= budget
    assert scenario.layers_size(engine.docker_host) + real["violations"][-1]["bytes"] > budget  # the last eviction was needed
    assert built.images["prot"]["id"] not in real["deleted"] and built.images["used"]["id"] not in real["deleted"]


def test_watermarks_evict_outside_the_floor_and_say_what_stops_them_short(ansible, fresh):
    engine, built = fresh
    # The filesystem is far above 1%: every image within the policy goes, least recently used first, and usage stays
    # above the mark, held by the floor (app's a5 and new, web's w1 and w2, tools' both) and the other holds.
    args = {"high_watermark": 1, "low_watermark": 0.5, "keep_last": 2, "max_age": "45d", "protect": PROTECT,
            "min_age": "1h", "dangling": False}
    _predicted, real = check_then_real(ansible, engine, args)
    evicted = [v["image"] for v in real["violations"] if v["reasons"][0].startswith("disk pressure")]
    # Outside app's floor a4 (10 d) and a3 (20 d) are within max_age: eviction takes them, a3 first; a2 and a1 violate
    # max_age; both loses app:old only.
    assert evicted == [built.images[n]["id"] for n in ("a3", "a4")]
    assert real["deleted"] == ids(built, "a1", "a2", "a3", "a4")
    for name in ("a5", "w1", "w2", "both", "prot", "used", "new", "dang"):
        assert built.images[name]["id"] not in real["deleted"]
    assert real["usage_before"]["filesystem"]["path"] == str(engine.data_root)
    eviction = real["eviction"]
    assert eviction["over_high_mark"] is True and eviction["short_by_bytes"] > 0
    assert eviction["mark"] == f"high_watermark (1.0% of {engine.data_root})"
    assert eviction["held"] == dict(protected=1, in_use=1, too_young=1, keep_last=3, dangling_excluded=1)
    assert any("short of the low mark" in w and "3 among the keep_last newest" in w for w in real["warnings"])


# ---------------------------------------------------------------- keep_last is a floor

FOUR_OLD_BUILDS = {
    "layers": {"S": 500_000, **{f"b{n}": 100_000 * n for n in range(1, 5)}},
    "images": [{"name": f"b{n}", "tags": [f"floor/app:{n}"], "layers": ["S", f"b{n}"], "created": days_ago(30 + 10 * n)}
               for n in range(1, 5)],
}


@pytest.fixture(params=engines.FLAVOURS)
def four_old_builds(request):
    engine = engines.start(request.param, f"ret-{request.param.replace('.', '')}")
    built = scenario.build(engine.docker_host, FOUR_OLD_BUILDS)
    yield engine, built
    engines.stop(engine)


def test_max_age_never_takes_the_keep_last_newest(ansible, four_old_builds):
    """Four unused builds of one repository, all older than 30 days: keep_last 2 keeps the two newest."""
    engine, built = four_old_builds
    args = {"keep_last": 2, "max_age": "30d", "min_age": "1h"}
    size_before = scenario.layers_size(engine.docker_host)
    _predicted, real = check_then_real(ansible, engine, args)
    assert real["deleted"] == ids(built, "b3", "b4") and real["kept"]["counts"]["keep_last"] == 2
    assert real["reclaimed_bytes"] == size_before - scenario.layers_size(engine.docker_host) > 0
    left = {i["Id"] for i in scenario.client(engine.docker_host).images()}
    assert {built.images[n]["id"] for n in ("b1", "b2")} <= left
    # A budget of one byte: eviction may take nothing more, and says how far short it stops.
    budget = ansible.check_then_real(MODULE, dict(args, max_images_bytes="1"), engine,
                                     same=("changed", "deleted", "reclaimed_bytes", "eviction"))[1]
    assert budget["changed"] is False and budget["deleted"] == []
    assert budget["eviction"]["short_by_bytes"] == scenario.layers_size(engine.docker_host) - 1
    assert budget["eviction"]["held"]["keep_last"] == 2
    assert any("short of the low mark" in w for w in budget["warnings"])


def test_fail_on_violation_audits_without_changing(ansible, fresh):
    engine, _built = fresh
    result = ansible.module(MODULE, {"max_age": "30d", "fail_on_violation": True}, engine, check=True)
    assert result["failed"] is True and "violate the retention policy" in result["msg"]
    assert result["violations"]


@pytest.mark.parametrize("args, fragment", [
    ({"keep_last": -1}, "keep_last must be 0 or more"),
    ({"high_watermark": 70, "low_watermark": 85}, "low_watermark (85.0) is above high_watermark (70.0)"),
    ({"high_watermark": 150, "low_watermark": 50}, "high_watermark is a percent between 0 and 100"),
    ({"max_age": "30days"}, "max_age: '30days' is not a duration"),
    ({"max_images_bytes": "ten gigs"}, "max_images_bytes: 'ten gigs' is not a size"),
    ({"high_watermark": 80}, "parameters are required together: high_watermark, low_watermark"),
])
def test_bad_values_fail_before_any_change(ansible, engine, args, fragment):
    result = ansible.module(MODULE, args, engine)
    assert result["failed"] is True and fragment in result["msg"], result["msg"]
