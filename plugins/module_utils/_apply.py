# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""Apply a plan: one engine call per action, and nothing else; then price what took effect.

An answer that the world changed since the snapshot (404: already gone, 409: now in use) makes the action
a reported skip with the engine's reason. Nothing is ever retried, and never with force. A call sent without an
answer is `unknown`: the engine may still carry it out, so it is neither done nor failed unless its object is found
gone afterwards; the next run, reading the engine afresh, settles it.

Independent actions run concurrently, in waves that keep the order that matters: an image's actions in plan order,
a container before the image it holds, a child image before its parent, containers before the networks and volumes
they use, build cache last.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

from ansible_collections.reclaim.docker.plugins.module_utils._connection import APIError
from ansible_collections.reclaim.docker.plugins.module_utils._model import Accounting
from ansible_collections.reclaim.docker.plugins.module_utils._units import go_duration

RACE_STATUSES = (404, 409)
IMAGE_ACTIONS = ("untag", "delete_image", "force_untag", "delete_platform")
# Concurrent engine calls per wave; measured in docs/benchmarks.md.
APPLY_WORKERS = 4


def _delete_image(client, action):
    # noprune: untagged parents are separate, planned actions (children first), never a side effect.
    return client.request("DELETE", f"/images/{quote(action['reference'], safe='/:')}",
                          {"force": int(action["force"]), "noprune": 1}) or []


def _delete_platform(client, action):
    parts = action["platform"].split("/")
    wanted = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2:
        wanted["variant"] = parts[2]
    # The engine demands force: the variant's content goes from every image that references it, which the planner
    # checked.
    return client.request("DELETE", f"/images/{quote(action['reference'], safe='/:')}",
                          {"force": 1, "noprune": 1, "platforms": json.dumps(wanted)}) or []


def _prune_build_cache(client, action):
    filters = dict(action["filters"])
    if action["until"] is not None:
        # BuildKit takes `until` as a duration before the moment it runs.
        filters["until"] = [go_duration(max(time.time() - action["until"], 0))]
    return client.prune_build_cache(filters, action["keep_storage"], action["all"])


def _remove_container(client, action):
    return client.request("DELETE", f"/containers/{action['container']}", {"v": 0, "force": 0}) or []


def _remove_network(client, action):
    return client.request("DELETE", f"/networks/{action['network']}") or []


def _remove_volume(client, action):
    return client.request("DELETE", f"/volumes/{quote(action['volume'], safe='')}", {"force": 0}) or []


ENGINE_CALLS = {
    "remove_container": _remove_container,
    "untag": _delete_image,
    "delete_image": _delete_image,
    "force_untag": _delete_image,
    "delete_platform": _delete_platform,
    "remove_network": _remove_network,
    "remove_volume": _remove_volume,
    "prune_build_cache": _prune_build_cache,
}


def waves(snapshot, actions):
    """Each action's wave: it runs after every action of an earlier wave has answered."""
    result = []
    last_on_image = {}
    deleted_in = {}
    containers_of_image = {}
    last_container_wave = -1
    for action in actions:
        action_name = action["action"]
        if action_name not in ENGINE_CALLS:
            raise ValueError(f"unknown action {action_name!r}")
        if action_name == "remove_container":
            wave = 0
            last_container_wave = 0
            containers_of_image[action["image"]] = 0
        elif action_name in IMAGE_ACTIONS:
            image = action["image"]
            after = [last_on_image.get(image, -1), containers_of_image.get(image, -1)]
            after += [deleted_in.get(child, -1) for child in snapshot.children_of(image)]
            wave = max(after) + 1
            last_on_image[image] = wave
            if action_name in ("delete_image", "force_untag"):
                deleted_in[image] = wave
        elif action_name == "prune_build_cache":
            wave = max(result, default=-1) + 1
        else:
            wave = last_container_wave + 1
        result.append(wave)
    return result


def _check_outcome(outcome, records):
    """Correct OUTCOME by what the engine reports it did; return a note when it did less than planned."""
    deleted = {r["Deleted"] for r in records if r.get("Deleted")}
    if outcome["action"] == "force_untag":
        # A container started since the snapshot makes the engine untag without dropping the record.
        outcome["record_deleted"] = outcome["image"] in deleted
    if outcome["action"] == "delete_image" and outcome["image"] not in deleted:
        return "the engine untagged the image but kept it (something references it since the snapshot)"
    return None


def _apply_one(client, action):
    outcome = dict(action)
    try:
        records = ENGINE_CALLS[action["action"]](client, action)
    except APIError as exc:
        status = exc.status_code
        outcome.update(status="skipped" if status in RACE_STATUSES else "failed", bytes=0,
                       engine_status=status, engine_reason=exc.explanation or str(exc))
        return outcome
    except (ConnectionRefusedError, FileNotFoundError) as exc:
        # Refused at connect (or no socket at all): nothing reached the engine.
        outcome.update(status="failed", bytes=0, engine_status=None,
                       engine_reason=f"the engine could not be reached, so the call was not sent: {exc}")
        return outcome
    except OSError as exc:
        # Sent, and no answer: the engine may have done it, or may still.
        # The bytes stay the plan's until reprice() prices what it would free.
        outcome.update(status="unknown", engine_status=None, engine_reason=f"no answer from the engine: {exc}")
        return outcome
    outcome["status"] = "done"
    if action["action"] == "prune_build_cache":
        # BuildKit chose the records: report what it did next to what was predicted.
        outcome.update(predicted_bytes=action["bytes"], bytes=records.get("SpaceReclaimed") or 0,
                       caches_deleted=records.get("CachesDeleted") or [])
        return outcome
    outcome["engine_response"] = records
    note = _check_outcome(outcome, records)
    if note:
        outcome.update(status="partial", bytes=0, engine_reason=note)
    return outcome


def apply_plan(client, snapshot, actions, workers=APPLY_WORKERS):
    """Execute ACTIONS; return them in plan order, annotated with status done, skipped, partial, failed, unknown or
    not_run, and priced by what took effect (an unknown one by what it would free if it did). After a failure (the
    engine's error, or a call without an answer) no further call is started: the calls already under way finish, the
    rest are not_run, and a call that got no answer is checked afterwards."""
    plan_waves = waves(snapshot, actions)
    halted = threading.Event()

    def run(i):
        if halted.is_set():
            return dict(actions[i], status="not_run", bytes=0,
                        engine_reason="not attempted: an earlier call failed or got no answer")
        outcome = _apply_one(client, actions[i])
        if outcome["status"] in ("failed", "unknown"):
            halted.set()
        return outcome

    outcomes = [None] * len(actions)
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        for wave in range(max(plan_waves, default=-1) + 1):
            indices = [i for i, w in enumerate(plan_waves) if w == wave]
            for i, outcome in zip(indices, pool.map(run, indices)):
                outcomes[i] = outcome
    for outcome in outcomes:
        if outcome["status"] == "unknown":
            _check_unanswered(client, outcome)
    return reprice(snapshot, outcomes, _gone_before(client, outcomes))


def _gone_before(client, outcomes):
    """The images and containers that a 404 showed someone else removed first. Their layers are held by nobody
    since, so another action's removal frees them (a 404 for a tag may leave the image: that one is asked)."""
    gone = set()
    for outcome in outcomes:
        if outcome["status"] != "skipped" or outcome["engine_status"] != 404:
            continue
        if outcome["action"] == "remove_container":
            gone.add(outcome["container"])
        elif outcome["action"] in ("delete_image", "force_untag") and _image_gone(client, outcome["image"]):
            gone.add(outcome["image"])
    return gone


# What an action removes, and how to ask whether it is still there: the path, and the image ID it must still
# resolve to (an untagged reference may name another image afterwards).
def _removed_object(outcome):
    action_name = outcome["action"]
    if action_name in ("delete_image", "force_untag", "untag"):
        reference = outcome["image"] if action_name == "delete_image" else outcome["reference"]
        return f"/images/{quote(reference, safe='/:')}/json", outcome["image"]
    if action_name == "remove_container":
        return f"/containers/{outcome['container']}/json", None
    if action_name == "remove_network":
        return f"/networks/{outcome['network']}", None
    if action_name == "remove_volume":
        return f"/volumes/{quote(outcome['volume'], safe='')}", None
    return None, None  # a platform's content or build cache records: no single object to ask about


def _check_unanswered(client, outcome):
    """A call that got no answer may have taken effect (a slow engine answers after our timeout), or may still (a
    frozen engine carries it out when it resumes): ask whether its object is gone. Gone is done; still there proves
    nothing, so the outcome stays unknown, with what was found."""
    path, image_id = _removed_object(outcome)
    if path is None:
        outcome["engine_reason"] += "; whether it took effect is unknown: there is no one object to ask about"
        return
    try:
        found = client.request("GET", path)
    except APIError as exc:
        if exc.status_code != 404:
            outcome["engine_reason"] += f"; whether it took effect is unknown ({exc.explanation or exc})"
            return
        found = None
    except OSError:
        outcome["engine_reason"] += "; whether it took effect is unknown: the engine still gives no answer"
        return
    if found is not None and (image_id is None or found.get("Id") == image_id):
        outcome["engine_reason"] += ("; it was still there when checked afterwards, but the engine may yet carry the "
                                     "call out: whether it takes effect is unknown")
        return
    outcome.update(status="done", engine_reason=outcome["engine_reason"] + "; it had taken effect when checked afterwards")
    if outcome["action"] == "force_untag":
        outcome["record_deleted"] = _image_gone(client, outcome["image"])


def _image_gone(client, image_id):
    try:
        client.request("GET", f"/images/{image_id}/json")
    except APIError as exc:
        return exc.status_code == 404
    except OSError:
        return False  # unknown: it priced as kept, which never overstates what was freed
    return False


def reprice(snapshot, outcomes, gone_before=frozenset()):
    """The bytes of each action that took effect, by the plan's own accounting replayed over those actions alone:
    a layer an action that did not happen still holds is freed by nobody. Then each unknown action's, by what it
    would free on top if the engine carried it out. GONE_BEFORE (image and container IDs) were removed by someone
    else before the apply: they hold nothing, and free nothing of ours."""
    accounting = Accounting(snapshot)
    for object_id in sorted(gone_before):
        if object_id in snapshot.images:
            accounting.delete_image(object_id)
        else:
            accounting.remove_container(object_id)
    for status in ("done", "unknown"):
        for outcome in outcomes:
            if outcome.get("status", "done") == status:
                _price(accounting, outcome)
    return outcomes


def _price(accounting, outcome):
    action_name = outcome["action"]
    if action_name == "remove_container":
        outcome["bytes"] = accounting.remove_container(outcome["container"])
    elif action_name == "delete_image":
        outcome["bytes"] = accounting.delete_image(outcome["image"])
    elif action_name == "force_untag":
        # Its stopped containers keep every layer: only the record's content (containerd store) can be freed.
        outcome["bytes"] = accounting.delete_image(outcome["image"]) if outcome["record_deleted"] else 0
    elif action_name == "delete_platform":
        outcome["bytes"] = sum(accounting.delete_platform(digest) for digest in outcome["manifests"])


def took_effect(actions):
    """The actions that happened: all of a check run's (they carry no status), the done ones of a real run."""
    return [a for a in actions if a.get("status", "done") == "done"]


def unanswered(actions):
    """The actions of a real run that got no answer and were not found done afterwards: the engine may still carry
    them out."""
    return [a for a in actions if a.get("status") == "unknown"]


def untagged_by(actions):
    """The references ACTIONS removed: each untag's, deletion's or force untag's `untags`."""
    return sorted({r for a in actions for r in a.get("untags", ())})
