"""The compatibility matrix: which versions each cell runs, and which tests.

A cell is one controller (ansible-core on a Python), one target (a bare Python, nothing installed for it, where the
modules run), one community.docker, and the tests to run with them. The baseline is what `make test` runs
(ansible-core pinned in tests/requirements.txt on Python 3.12, the modules on Debian's own /usr/bin/python3,
community.docker from the `ansible` wheel the Makefile takes); each other cell moves one axis to its oldest or newest
supported version, and the two corner cells move every axis at once.

Galaxy is not reachable: community.docker comes from PyPI's `ansible` wheels, each of which bundles one version.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pin(name: str) -> str:
    """The version tests/requirements.txt pins NAME to."""
    for line in (ROOT / "tests" / "requirements.txt").read_text().splitlines():
        if line.startswith(name + "=="):
            return line.split("==", 1)[1].strip()
    raise LookupError(f"{name} is not pinned in tests/requirements.txt")


CORE_NEWEST = _pin("ansible-core")  # the controller of `make test`
CORE_219 = "2.19.14"  # the last 2.19 release
CORE_217 = "2.17.14"  # the last 2.17 release
CORE_OLDEST = "2.17.0"  # meta/runtime.yml's requires_ansible, exactly
# community.docker version -> the `ansible` release on PyPI whose wheel bundles it.
COMMUNITY_DOCKER_WHEELS = {
    "4.0.0": "11.0.0b2",  # the only `ansible` releases with 4.0.0 are 11.0.0b1 and b2 (11.0.0 has 4.0.1)
    "5.4.0": "14.5.0",  # the Makefile's ANSIBLE_WHEEL_VERSION: the newest community.docker on PyPI
}
CD_OLDEST, CD_NEWEST = "4.0.0", "5.4.0"

# Test subsets. `modules`: every module's own integration tests (check mode, real run, again; exact bytes), the
# tests that exercise the target side (its Python) and the connection group (community.docker), on one
# engine flavour; the flavours themselves are `make test`'s axis. `fleet`: the audit and cleanup playbooks through
# ansible-runner on engines of all three flavours (and an approved audit applied), a failed host failing the job,
# the roles' argument specs and the fleet report: what exercises the controller (templating, roles, callbacks, the
# runner). `unit`: the whole unit suite.
SUBSETS = {
    "modules": ("tests/integration/test_prune.py", "tests/integration/test_image_remove.py",
                "tests/integration/test_image_retention.py", "tests/integration/test_disk_usage_info.py",
                "tests/integration/test_drop_in.py", "tests/integration/test_approved.py",
                "tests/integration/test_usage_ledger.py"),
    "fleet": ("tests/integration/test_fleet.py", "tests/integration/test_approved_fleet.py",
              "tests/integration/test_failed_hosts.py"),
    "unit": ("tests/unit",),
}
MODULES_FLAVOUR = "28.5"


@dataclasses.dataclass(frozen=True)
class Cell:
    name: str
    core: str = CORE_NEWEST
    controller_python: str = "3.12"
    target_python: str = "system"  # Debian's /usr/bin/python3, else pyenv's VERSION
    community_docker: str = CD_NEWEST
    subsets: tuple = ("modules",)
    flavour: str = MODULES_FLAVOUR

    @property
    def unit_only(self) -> bool:
        return self.subsets == ("unit",)

    def describe(self) -> str:
        if self.unit_only:
            return f"unit tests on Python {self.controller_python} with ansible-core {self.core}"
        target = "Debian's /usr/bin/python3" if self.target_python == "system" else f"bare Python {self.target_python}"
        return (f"ansible-core {self.core} (Python {self.controller_python}) -> {target}, "
                f"community.docker {self.community_docker}; {'+'.join(self.subsets)}"
                + (f" (modules on {self.flavour})" if "modules" in self.subsets else ""))


# Unit tests on the oldest target Python: ansible-core 2.15 is the newest that installs on 3.9 (the modules import
# only ansible.module_utils, which every supported ansible-core ships on the target).
UNIT_39 = Cell("unit-3.9", core="2.15.13", controller_python="3.9", target_python="3.9", subsets=("unit",))

OLDEST = Cell("oldest", core=CORE_OLDEST, controller_python="3.11", target_python="3.9", community_docker=CD_OLDEST,
              subsets=("modules", "fleet"))
NEWEST = Cell("newest", core=CORE_NEWEST, controller_python="3.12", target_python="3.13", community_docker=CD_NEWEST,
              subsets=("modules",))

FULL = (
    Cell("baseline", subsets=("modules", "fleet")),
    # The controller axis: the fleet playbooks (and the modules) on each supported ansible-core.
    Cell("core-2.17", core=CORE_217, controller_python="3.11", target_python="3.11", subsets=("modules", "fleet")),
    Cell("core-2.19", core=CORE_219, controller_python="3.13", target_python="3.13", subsets=("modules", "fleet")),
    # The target axis: the modules on every supported Python, bare (Debian's 3.11 is the baseline's).
    Cell("target-3.9", target_python="3.9"),
    Cell("target-3.10", target_python="3.10"),
    Cell("target-3.12", target_python="3.12"),
    Cell("target-3.13", target_python="3.13"),
    # community.docker: the other end (the baseline has the newest).
    Cell("cd-4.0.0", community_docker=CD_OLDEST, subsets=("modules", "fleet")),
    # Every axis at its oldest, then at its newest.
    OLDEST,
    NEWEST,
    UNIT_39,
)

# CI: the oldest and the newest of every axis, in two corner cells, plus the unit tests on 3.9. The newest
# controller's fleet test is `make test`'s own, so the newest corner runs the modules only.
CI = (OLDEST, NEWEST, UNIT_39)

SETS = {"full": FULL, "ci": CI}
BY_NAME = {cell.name: cell for cell in FULL}
