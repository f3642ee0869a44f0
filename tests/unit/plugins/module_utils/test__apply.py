"""How apply turns the engine's answers into outcomes: races are skips, less-than-planned is reported."""

from __future__ import annotations

import pytest

from ansible_collections.reclaim.docker.plugins.module_utils._apply import apply_plan, waves
from ansible_collections.reclaim.docker.plugins.module_utils._connection import APIError
from ansible_collections.reclaim.docker.plugins.module_utils._model import Image, Snapshot

IMAGE = "sha256:" + "a" * 64
# Two images never inspected: each is one private layer of its Size.
SNAPSHOT = Snapshot({}, [Image(IMAGE, size=100), Image("sha256:" + "b" * 64, size=50)], [])


def api_error(status, explanation):
    return APIError(f"{status} for DELETE", status, explanation)


class StubClient:
    """Answers engine calls from a script, and records every call made."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, path, params=None):
        self.calls.append((method, path, params))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def run(actions, answers, workers=1):
    client = StubClient(answers)
    return apply_plan(client, SNAPSHOT, actions, workers=workers), client.calls


def deleted(reference):
    return ("DELETE", f"/images/{reference}", {"force": 0, "noprune": 1})


def delete(reference="lab/a:1"):
    return dict(action="delete_image", reference=reference, image=IMAGE, untags=[reference], force=False, bytes=100)


def test_done_when_the_engine_deletes():
    outcomes, calls = run([delete()], [[{"Untagged": "lab/a:1"}, {"Deleted": IMAGE}]])
    assert outcomes[0]["status"] == "done" and outcomes[0]["bytes"] == 100
    assert calls == [deleted("lab/a:1")]  # never prune as a side effect


@pytest.mark.parametrize("status, explanation", [
    (409, "conflict: unable to delete a (must be forced) - image is being used by stopped container c"),
    (404, "No such image: lab/a:1"),
])
def test_a_race_is_a_reported_skip_and_the_rest_still_runs(status, explanation):
    second = delete("lab/b:1")
    # After a 404 for a tag, whether the image itself is gone decides how the rest is priced: it is asked.
    asked = [api_error(404, f"No such image: {IMAGE}")] if status == 404 else []
    outcomes, calls = run([delete(), second], [api_error(status, explanation), [{"Deleted": IMAGE}]] + asked)
    assert outcomes[0]["status"] == "skipped"
    assert outcomes[0]["bytes"] == 0 and outcomes[0]["engine_reason"] == explanation
    assert outcomes[0]["engine_status"] == status
    assert outcomes[1]["status"] == "done"
    # Nothing retried, nothing forced.
    assert calls[:2] == [deleted("lab/a:1"), deleted("lab/b:1")]
    assert calls[2:] == ([("GET", f"/images/{IMAGE}/json", None)] if asked else [])


def test_an_engine_error_fails_the_action_and_nothing_more_is_started():
    other = dict(delete("lab/b:1"), image="sha256:" + "b" * 64)
    outcomes, calls = run([delete(), other], [api_error(500, "driver failed")])
    assert outcomes[0]["status"] == "failed" and outcomes[0]["bytes"] == 0
    assert outcomes[1]["status"] == "not_run" and outcomes[1]["bytes"] == 0
    assert calls == [deleted("lab/a:1")]  # an engine error is an answer: nothing to check afterwards


def test_an_untag_where_a_delete_was_planned_frees_nothing():
    outcomes, _calls = run([delete()], [[{"Untagged": "lab/a:1"}]])
    assert outcomes[0]["status"] == "partial" and outcomes[0]["bytes"] == 0
    assert "kept it" in outcomes[0]["engine_reason"]


def test_force_untag_reports_whether_the_record_went():
    action = dict(action="force_untag", reference="lab/a:1", image=IMAGE, untags=["lab/a:1"], record_deleted=True,
                  force=True, bytes=0)
    kept, _calls = run([action], [[{"Untagged": "lab/a:1"}]])
    assert kept[0]["record_deleted"] is False
    dropped, _calls = run([action], [[{"Untagged": "lab/a:1"}, {"Deleted": IMAGE}]])
    assert dropped[0]["record_deleted"] is True
    assert action["record_deleted"] is True  # the plan itself is not modified


def test_no_answer_fails_the_action_and_nothing_more_is_started():
    other = dict(delete("lab/b:1"), image="sha256:" + "b" * 64)
    later = dict(action="untag", reference="lab/b:2", image=other["image"], bytes=0, force=False)
    still_there = {"Id": IMAGE}
    outcomes, calls = run([delete(), other, later], [ConnectionError("connection reset"), still_there])
    assert outcomes[0]["status"] == "failed" and "no answer" in outcomes[0]["engine_reason"]
    assert "had not taken effect" in outcomes[0]["engine_reason"]
    assert [o["status"] for o in outcomes[1:]] == ["not_run", "not_run"]
    assert calls == [deleted("lab/a:1"), ("GET", f"/images/{IMAGE}/json", None)]


def test_a_call_without_an_answer_that_took_effect_is_done_and_priced():
    gone = api_error(404, f"No such image: {IMAGE}")
    outcomes, _calls = run([delete()], [TimeoutError("timed out"), gone])
    assert outcomes[0]["status"] == "done" and outcomes[0]["bytes"] == 100
    assert "had taken effect when checked afterwards" in outcomes[0]["engine_reason"]


def test_a_call_without_an_answer_on_an_engine_still_silent_is_unknown():
    outcomes, _calls = run([delete()], [TimeoutError("timed out"), ConnectionRefusedError("refused")])
    assert outcomes[0]["status"] == "failed" and outcomes[0]["bytes"] == 0
    assert "whether it took effect is unknown" in outcomes[0]["engine_reason"]


def test_waves_keep_the_order_that_matters():
    parent, child, other = ("sha256:" + c * 64 for c in "pco")
    snapshot = Snapshot({}, [Image(parent), Image(child, parent_id=parent), Image(other)], [])
    actions = [
        dict(action="remove_container", container="x" * 64, image=child),
        dict(action="untag", image=child, reference="lab/c:1"),
        dict(action="delete_image", image=child, reference="lab/c:2"),
        dict(action="delete_image", image=parent, reference=parent),
        dict(action="delete_image", image=other, reference="lab/o:1"),
        dict(action="remove_network", network="n"),
        dict(action="prune_build_cache"),
    ]
    assert waves(snapshot, actions) == [0, 1, 2, 3, 0, 1, 4]


def test_an_unknown_action_is_refused_before_any_call():
    with pytest.raises(ValueError, match="unknown action"):
        run([dict(action="format_disk", image=IMAGE)], [])
