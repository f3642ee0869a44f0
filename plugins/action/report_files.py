# Copyright (c) reclaim.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""reclaim.docker.report_files: files written on the controller by the controller, no module run (see the module's
documentation)."""

from __future__ import annotations

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = {
    "dest": {"type": "path", "required": True},
    "files": {"type": "dict", "required": True},
    "mode": {"type": "str", "default": "0644"},
}


def file_mode(text) -> int:
    try:
        mode = int(str(text), 8)
    except ValueError:
        raise AnsibleActionFail(f"mode: {text!r} is not an octal mode such as 0644.") from None
    if not 0 <= mode <= 0o7777:
        raise AnsibleActionFail(f"mode: {text!r} is not an octal mode such as 0644.")
    return mode


def write_files(dest: str, files: dict, mode: int, check_mode: bool = False) -> list:
    """Write FILES (name -> text, a final newline added when missing) into DEST, created when missing, each through a
    temporary file renamed over the old one; the names of the files whose contents changed. In CHECK_MODE, nothing is
    written."""
    bad = [name for name in files if not name or "/" in name or name in (".", "..") or "\0" in name]
    if bad:
        raise AnsibleActionFail(f"files: {bad[0]!r} is not a plain file name (no '/', not '.' nor '..').")
    changed = []
    for name, text in files.items():
        text = text if isinstance(text, str) else str(text)
        data = to_bytes(text if text.endswith("\n") else text + "\n", errors="surrogate_or_strict")
        path = os.path.join(dest, name)
        try:
            with open(path, "rb") as existing:
                if existing.read() == data:
                    continue
        except FileNotFoundError:
            pass
        changed.append(name)
        if check_mode:
            continue
        # The folder's search bits follow its read bits (0644 files, a 0755 folder).
        os.makedirs(dest, mode=mode | ((mode & 0o444) >> 2), exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=dest)
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(data)
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    return changed


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        dest = os.path.abspath(os.path.expanduser(args["dest"]))
        try:
            written = write_files(dest, args["files"], file_mode(args["mode"]), check_mode=self._task.check_mode)
        except OSError as exc:
            raise AnsibleActionFail(f"Could not write the files to {dest}: {exc}") from None
        result.update(changed=bool(written), dest=dest, files=[os.path.join(dest, name) for name in args["files"]],
                      written=written)
        return result
