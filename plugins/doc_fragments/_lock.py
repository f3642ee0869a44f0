# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is PRIVATE to the collection: it can change at any time.

from __future__ import annotations


class ModuleDocFragment:
    # The lock options of the modules that change an engine (module_utils/_lock.py, lock_argument_spec()).
    DOCUMENTATION = r"""
options:
  lock_timeout:
    description:
      - A run that is not in check mode holds a lock per engine on the host where the module runs, from before it reads
        the engine until it ends, so that two runs (an AWX schedule and a manual run) never plan or apply at once on
        one engine. The second waits, then plans on what the first left.
      - How long to wait for that lock, in seconds. When another run still holds it then, the task fails before
        reading the engine, naming the holder (its pid, host, module, since when, and its job ID when E(JOB_ID) or
        E(AWX_JOB_ID) was set in its environment). V(0) fails at once when the lock is held; a negative value is
        refused.
      - A run that had to wait warns how long, and for which runs. It names each run that held the lock meanwhile, in
        the order they held it, with the seconds spent behind each when there were several. The lock is tried every
        0.15 seconds, so those seconds are known to within that (more on a busy host), and a run that held the lock
        only between two tries is not named.
      - The lock is the kernel's C(flock) on a file, released when its holder ends, however it ends, so a lock left
        by a process that died never blocks.
      - Check mode takes no lock, never waits, and creates no file.
    type: int
    default: 300
  lock_dir:
    description:
      - The directory of the lock files, one per engine, named by a digest of the engine's ID (C(ID) in
        C(docker info)), as the layer cache's.
      - If not set, the default directory of the layer cache, C($XDG_CACHE_HOME/reclaim.docker), or
        C(~/.cache/reclaim.docker) when E(XDG_CACHE_HOME) is unset or not an absolute path, for the user the module
        runs as. Runs as different users exclude each other only when they use one O(lock_dir) that they can all
        write.
      - Missing directories are created with mode C(0700). A directory that cannot be created or written fails the
        task before the engine is contacted.
      - The file holds only who holds the lock (no secret), and is emptied on release. Deleting it is safe when no run
        holds the lock.
    type: path
"""
