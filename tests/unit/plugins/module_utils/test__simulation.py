"""The simulator's rules for what names an image after a removal, as the daemon computes them."""

from __future__ import annotations

import pytest

from ansible_collections.reclaim.docker.plugins.module_utils._simulation import references_after_removing


@pytest.mark.parametrize("containerd, remaining", [
    (False, {"lab/x:2", "other/y:1", "other/y@sha256:d"}),
    (True, {"lab/x:2", "other/y:1", "other/y@sha256:d"}),
])
def test_references_after_removing_a_tag_with_others_in_its_repository(containerd, remaining):
    refs = {"lab/x:1", "lab/x:2", "other/y:1", "other/y@sha256:d"}
    assert references_after_removing(refs, "lab/x:1", containerd) == remaining


def test_references_after_removing_the_last_tag_of_a_repository_drop_its_digests():
    refs = {"lab/x:1", "lab/x@sha256:d", "other/y:1"}
    assert references_after_removing(refs, "lab/x:1", False) == {"other/y:1"}
