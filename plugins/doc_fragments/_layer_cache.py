# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is PRIVATE to the collection: it can change at any time.

from __future__ import annotations


class ModuleDocFragment:
    # The layer cache options of the modules that price removals from the layer graph
    # (module_utils/_layer_cache.py, layer_cache_argument_spec()).
    DOCUMENTATION = r"""
options:
  layer_cache:
    description:
      - Keep each image's layer chain and sizes, which never change for an image ID, in a cache file on the host where
        the module runs, so a repeat run makes only the list calls.
      - Check mode may fill the cache; it changes no engine state.
      - Entries of images the engine no longer lists are dropped when the file is written. A cache that cannot be used
        never fails the task; the module warns why, and reads the layers from the engine.
    type: bool
    default: true
  layer_cache_dir:
    description:
      - The directory of the layer cache, with one file per engine, named by a digest of the engine's ID (C(ID) in
        C(docker info)).
      - If not set, C($XDG_CACHE_HOME/reclaim.docker), or C(~/.cache/reclaim.docker) when E(XDG_CACHE_HOME) is unset
        or not an absolute path, for the user the module runs as.
      - Missing directories are created with mode C(0700); the file is replaced atomically, with mode C(0600).
      - A cache file or directory that is a symbolic link, is owned by another user, or is writable by group or others
        is ignored and never written, since its byte counts steer budget evictions and the bytes reported. A file
        that cannot be read, is not valid in every entry, or has another format version is ignored whole and written
        anew.
      - Not used when O(layer_cache=false).
    type: path
"""
