# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module utility is PRIVATE to the collection: it can change at any time.

"""containerd's content store, read from its files: the blobs each platform manifest of an image names.

On the containerd image store an image holds content blobs besides its unpacked snapshots: its index (when it is one),
and per platform its manifest, config and layer blobs. Each blob is a file named by its digest under containerd's
content directory; the engine's image list gives every manifest's digest, so reading that manifest's JSON tells the
digest and size of its config and layers, without an Engine API call. A manifest never changes for its digest.

Standard library only, Python 3.9 and later (it runs on the Docker host's Python).
"""

from __future__ import annotations

import json
import os
import re

BLOBS_UNDER_ROOT = os.path.join("io.containerd.content.v1.content", "blobs", "sha256")
# dockerd starts its own containerd with its root here, under Docker's root dir;
DOCKERD_CONTAINERD_ROOT = os.path.join("containerd", "daemon")
# a system containerd (Docker's packages) keeps it where its config says, this by default.
SYSTEM_CONTAINERD_CONFIG = "/etc/containerd/config.toml"
SYSTEM_CONTAINERD_ROOT = "/var/lib/containerd"
# A top-level TOML key comes before the first [table]; only `root = "PATH"` matters here.
_TOML_ROOT = re.compile(r'^\s*root\s*=\s*"([^"]+)"\s*(?:#.*)?$')
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
# A manifest is a few KiB; anything far larger is not one.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


class ContentUnreadable(Exception):
    """The content store, or a manifest in it, cannot be read; the message says why, as the end of a sentence."""


def containerd_roots(docker_root_dir, config_path=SYSTEM_CONTAINERD_CONFIG):
    """Where containerd's root may be, in the order to try: dockerd's own containerd, then the system one."""
    roots = [os.path.join(docker_root_dir, DOCKERD_CONTAINERD_ROOT)] if docker_root_dir else []
    roots.append(_configured_root(config_path) or SYSTEM_CONTAINERD_ROOT)
    return roots


def _configured_root(config_path):
    try:
        with open(config_path, encoding="utf-8") as handle:
            for line in handle:
                if line.lstrip().startswith("["):
                    return None
                match = _TOML_ROOT.match(line)
                if match:
                    return match.group(1)
    except (OSError, UnicodeDecodeError):
        pass
    return None


def find_blobs_dir(docker_root_dir, image_id, config_path=SYSTEM_CONTAINERD_CONFIG):
    """The content directory that holds IMAGE_ID's blob (an image's ID is the digest of its own index or manifest):
    the one the engine uses, found by probing each possible root. Raises ContentUnreadable saying where it looked."""
    denied = []
    roots = containerd_roots(docker_root_dir, config_path)
    for root in roots:
        blobs_dir = os.path.join(root, BLOBS_UNDER_ROOT)
        try:
            os.stat(os.path.join(blobs_dir, _hex(image_id)))
            return blobs_dir
        except PermissionError:
            denied.append(blobs_dir)
        except OSError:
            continue
    if denied:
        raise ContentUnreadable(f"no permission to read containerd's content store ({', '.join(denied)}); run the "
                                "module as root (become: true)")
    raise ContentUnreadable(f"containerd's content store was not found: no blob of image {image_id} under "
                            f"{' or '.join(os.path.join(root, BLOBS_UNDER_ROOT) for root in roots)}")


def read_manifest(blobs_dir, digest):
    """The blobs a platform manifest names, config first then layers: ((digest, size), ...) from its descriptors."""
    path = os.path.join(blobs_dir, _hex(digest))
    try:
        with open(path, "rb") as handle:
            manifest = json.loads(handle.read(MAX_MANIFEST_BYTES + 1))
    except (OSError, ValueError, RecursionError) as exc:
        raise ContentUnreadable(f"manifest {digest} cannot be read ({exc})") from exc
    layers = manifest.get("layers", []) if isinstance(manifest, dict) else None
    if not isinstance(layers, list) or not all(_is_descriptor(d) for d in [manifest.get("config")] + layers):
        raise ContentUnreadable(f"blob {digest} is not an image manifest with a config and layer descriptors")
    return tuple((d["digest"], d["size"]) for d in [manifest["config"]] + layers)


def blob_present(blobs_dir, digest):
    return os.path.exists(os.path.join(blobs_dir, _hex(digest)))


def _is_descriptor(value):
    return (isinstance(value, dict) and isinstance(value.get("digest"), str) and _DIGEST.match(value["digest"])
            is not None and isinstance(value.get("size"), int) and not isinstance(value["size"], bool)
            and value["size"] >= 0)


def _hex(digest):
    return digest.split(":", 1)[-1]
