"""Where the venvs live: the stable venv path everything runs through, the venvs kept beside it, and the
atomic switch of that path from one to another. Standard library only (the stage runs it too).

    /opt/forge-appliance/.venv -> .venvs/0.2.0-20270103T101500Z     the stable path: a relative symlink
    /opt/forge-appliance/.venvs/0.1.0-20270103T101458Z/            the previous venv (the rollback target)
    /opt/forge-appliance/.venvs/0.2.0-20270103T101500Z/            the one in use

The supervisor starts its programs as `<stable path>/bin/python -m appliance ...`, and systemd or `appliance
up` start the supervisor the same way, so pointing the stable path elsewhere and replacing the processes one
at a time moves the appliance to another venv; pointing it back moves it back.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import OperationFailed

RELEASES = ".venvs"
#: Written into each kept venv: which version it holds, where it came from and when.
MARKER = ".forge-appliance-release.json"
#: How many venvs an upgrade keeps: the one in use and the one before it (the next rollback's target).
KEEP = 2

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@dataclass(frozen=True)
class Layout:
    """One installation: its stable venv path, never resolved (`venv`), and the kept venvs beside it."""

    venv: Path

    @property
    def releases(self) -> Path:
        return self.venv.parent / RELEASES

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def current(self) -> Path:
        """The venv directory the stable path leads to now."""
        return self.venv.resolve()

    def check(self) -> None:
        """Refuse a stable path that is not a venv (OperationFailed)."""
        if not (self.venv / "pyvenv.cfg").is_file() or not self.python.exists():
            raise OperationFailed(f"{self.venv} is not a Python venv (no pyvenv.cfg or bin/python)")

    def new_release(self, version: str, now: dt.datetime | None = None) -> Path:
        """A fresh directory name for a venv of `version` (not created)."""
        stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
        return self.releases / f"{version}-{stamp}"

    def adopt(self) -> Path | None:
        """Turn a stable path that is still a real directory (an install made before upgrades existed) into a
        link to the same directory moved into `.venvs/`; return where it went (None: a link already).

        One atomic exchange of the two names (renameat2 RENAME_EXCHANGE): at every instant the stable path
        leads to the same files, so the running processes never miss a module they import late."""
        if self.venv.is_symlink():
            return None
        version = venv_version(self.venv)
        target = self.new_release(version)
        self.releases.mkdir(mode=0o755, exist_ok=True)
        link_text = os.path.relpath(target, self.venv.parent)
        os.symlink(link_text, target)  # a placeholder under the final name; becomes the stable path's link
        if not _exchange(self.venv, target):
            # No RENAME_EXCHANGE here (an old kernel, a file system without it): a moment without the path.
            target.unlink()
            os.rename(self.venv, target)
            os.symlink(link_text, self.venv)
        write_marker(target, version, source="in use before the first upgrade")
        return target

    def switch(self, target: Path) -> None:
        """Point the stable path at `target` in one step (a new link renamed over the old one)."""
        if not self.venv.is_symlink():
            raise OperationFailed(f"{self.venv} is not a link: adopt it before switching")
        temporary = self.venv.with_name(f"{self.venv.name}.switching")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        os.symlink(os.path.relpath(target, self.venv.parent), temporary)
        os.replace(temporary, self.venv)

    def kept(self) -> list[Path]:
        """The venvs in `.venvs/`, by name."""
        if not self.releases.is_dir():
            return []
        return sorted(p for p in self.releases.iterdir() if p.is_dir() and not p.is_symlink())

    def prune(self, keep: list[Path]) -> list[Path]:
        """Remove the kept venvs other than `keep` (the one in use and the previous one); return them."""
        wanted = {p.resolve() for p in keep}
        removed = []
        for path in self.kept():
            if path.resolve() not in wanted:
                remove_venv(path)
                removed.append(path)
        return removed


def _exchange(first: Path, second: Path) -> bool:
    """Swap two names atomically; False when the system cannot (then nothing changed)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: not supported here
        return False
    raise OperationFailed(f"cannot move {first} to {second}: {os.strerror(errno)}")


def venv_version(venv: Path) -> str:
    """The appliance version installed in a venv, as its own Python reports it."""
    # -I: neither the caller's working directory (a checkout) nor PYTHONPATH may answer for the venv.
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", "import appliance; print(appliance.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        last = (found.stderr.strip().splitlines() or ["no output"])[-1]
        raise OperationFailed(f"cannot read the appliance version installed in {venv}: {last}")
    return found.stdout.strip()


def write_marker(venv: Path, version: str, source: str) -> None:
    data = {"version": version, "source": source, "installed_at": dt.datetime.now(dt.UTC).isoformat()}
    (venv / MARKER).write_text(json.dumps(data) + "\n")


def read_marker(venv: Path) -> dict[str, Any]:
    try:
        data = json.loads((venv / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remove_venv(path: Path) -> None:
    """Delete a kept venv, refusing anything that is not one of ours."""
    if path.parent.name != RELEASES or not (path / "pyvenv.cfg").exists():
        raise OperationFailed(f"{path} is not a venv of {RELEASES}/: not removed")
    shutil.rmtree(path)


def tree_size(path: Path) -> int:
    """Bytes in the files under `path` (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total
