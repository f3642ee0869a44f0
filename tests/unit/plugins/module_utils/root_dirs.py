"""Docker root dirs laid out in a temporary directory as overlay2 lays them out, for the tests of the walk, the scan,
the leaks and their job."""

from __future__ import annotations

import os


def overlay2_root(root, named, unnamed, links=None):
    """ROOT as a Docker root dir: a layer directory with a 10,000-byte file for the layer NAMED, which the layer
    database's one chain names by its cache-id, and for each of UNNAMED, which nothing names. LINKS: {layer: short
    link name}, each made under overlay2/l/ as overlay2 makes it. Returns ROOT."""
    for name in (named, *unnamed):
        (root / "overlay2" / name / "diff").mkdir(parents=True)
        (root / "overlay2" / name / "diff" / "data").write_bytes(b"x" * 10_000)
    for name, link in (links or {}).items():
        (root / "overlay2" / name / "link").write_text(link)
        (root / "overlay2" / "l").mkdir(exist_ok=True)
        os.symlink(f"../{name}/diff", root / "overlay2" / "l" / link)
    chain = root / "image" / "overlay2" / "layerdb" / "sha256" / ("f" * 64)
    chain.mkdir(parents=True)
    (chain / "cache-id").write_text(named)
    return root
