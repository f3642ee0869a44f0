"""Judge the log of the docs site's build (`make docs`): python tests/docsite_log.py BUILD_LOG INDEX_HTML.

The site is built offline, so Sphinx cannot load the intersphinx inventories (docs.python.org, docs.ansible.com,
...) and, with them, cannot resolve the labels those sites define: community.docker's modules in `seealso`,
`common_return_values`, `ansible_configuration_settings`. Those warnings are accepted while an inventory was
unreachable, and only for labels outside this collection. Any other warning or error fails, and so does a build that
did not finish or left no index page.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

OWN_LABELS = "ansible_collections.reclaim.docker."
UNREACHABLE = "failed to reach any of the inventories"
UNDEFINED_LABEL = re.compile(r"WARNING: undefined label: '([^']+)'")
FINISHED = re.compile(r"^build (succeeded|finished with problems)")
# Sphinx's "WARNING: ...", docutils' "(ERROR/3) ...", a Python traceback.
PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL|SEVERE)\b[:!/]|^Traceback")


def problems(lines: list) -> list:
    unreachable = any(UNREACHABLE in line for line in lines)
    found = []
    for line in lines:
        if not PROBLEM.search(line) or UNREACHABLE in line:
            continue
        label = UNDEFINED_LABEL.search(line)
        if label and unreachable and not label.group(1).startswith(OWN_LABELS):
            continue
        found.append(line)
    return found


def main(log_path: str, index_path: str) -> int:
    lines = Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines()
    errors = problems(lines)
    if not any(FINISHED.match(line) for line in lines):
        errors.append(f"the build did not finish (see {log_path})")
    if not Path(index_path).is_file():
        errors.append(f"no {index_path}")
    for error in errors:
        print(error)
    accepted = sum(1 for line in lines if UNREACHABLE in line or UNDEFINED_LABEL.search(line)) - sum(
        1 for error in errors if UNDEFINED_LABEL.search(error))
    print(f"docs site: {'FAILED' if errors else 'built'}; {accepted} warnings from unreachable intersphinx inventories "
          f"accepted, {len(errors)} problems (log: {log_path})")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
