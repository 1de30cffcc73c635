"""Installing the new version aside: a new venv beside the one in use, a real `pip install` of the wheel or
the checkout into it, then the new version's own `appliance upgrade` takes over from that venv.

Standard library only: a checkout's install.sh runs this with the installed venv's Python before anything of
the new version is installed (`python -m appliance.upgrade`), and an older version's `appliance upgrade`
runs it too. Nothing running changes here; a failure removes the half-made venv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from appliance.errors import InvalidInput, OperationFailed
from appliance.upgrade.layout import Layout, tree_size, venv_version, write_marker

DISTRIBUTION = "forge-appliance"
#: Room asked for beyond the size of the venv in use, for pip's build and unpacking.
SPARE_BYTES = 256 * 1024 * 1024
_VERSION_LINE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)


@dataclass(frozen=True)
class Source:
    """What to upgrade to: a wheel of forge-appliance or a checkout of it, and the version it holds."""

    path: Path
    version: str

    def requirement(self, extras: Sequence[str]) -> str:
        """The argument pip installs (`/path/to/checkout[production]`)."""
        return str(self.path) + (f"[{','.join(extras)}]" if extras else "")


def inspect_source(path: Path) -> Source:
    """Read the version a wheel or a checkout holds; InvalidInput for anything else."""
    path = Path(os.path.abspath(path.expanduser()))
    if path.is_file() and path.suffix == ".whl":
        parts = path.name.split("-")
        if len(parts) < 5 or parts[0].lower().replace("_", "-") != DISTRIBUTION:
            raise InvalidInput(f"{path} is not a wheel of {DISTRIBUTION}")
        return Source(path, parts[1])
    if path.is_dir():
        try:
            with (path / "pyproject.toml").open("rb") as fh:
                name = tomllib.load(fh).get("project", {}).get("name")
            found = _VERSION_LINE.search((path / "appliance" / "__init__.py").read_text())
        except (OSError, tomllib.TOMLDecodeError):
            name, found = None, None
        if name != DISTRIBUTION or found is None:
            raise InvalidInput(f"{path} is not a checkout of {DISTRIBUTION} (pyproject.toml, appliance/)")
        return Source(path, found.group(1))
    raise InvalidInput(f"{path} is neither a {DISTRIBUTION} wheel (.whl) nor a checkout of it")


def stage(layout: Layout, source: Source, wheelhouse: Path | None, progress: Callable[[str], None]) -> Path:
    """Create a venv beside the one in use and pip-install `source` into it (with the same extras); return
    it. A wheelhouse makes pip install from that directory only (--no-index --find-links)."""
    layout.check()
    target = layout.new_release(source.version)
    _check_room(layout)
    extras = ["production"] if _has_module(layout.python, "ansible") else []
    layout.releases.mkdir(mode=0o755, exist_ok=True)
    log = target.with_name(target.name + ".pip.log")
    progress(f"installing {source.version} into {target} (the venv in use is not touched)")
    try:
        # The venv in use's Python: the new version runs on the interpreter the appliance runs on now.
        _run([str(layout.python), "-I", "-m", "venv", str(target)], "creating the venv", log)
        command = [str(target / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
        if wheelhouse is not None:
            command += ["--no-index", "--find-links", str(wheelhouse)]
        _run([*command, source.requirement(extras)], "pip install", log)
        installed = venv_version(target)
        if installed != source.version:
            raise OperationFailed(
                f"pip installed version {installed} from {source.path}, not {source.version}"
            )
        write_marker(target, source.version, str(source.path))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    log.unlink(missing_ok=True)
    progress(f"installed {source.version}{' with the production extra' if extras else ''}")
    return target


def _check_room(layout: Layout) -> None:
    need = tree_size(layout.current()) + SPARE_BYTES
    free = shutil.disk_usage(layout.venv.parent).free
    if free < need:
        raise OperationFailed(
            f"not enough disk space beside {layout.venv} for a new venv: {free // 2**20} MiB free, "
            f"about {need // 2**20} MiB needed"
        )


def _has_module(python: Path, name: str) -> bool:
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({name!r}) is None)"
    return subprocess.run([str(python), "-I", "-c", probe], capture_output=True, check=False).returncode == 0


def _run(command: list[str], what: str, log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False
        )
    if done.returncode != 0:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no output"]
        raise OperationFailed(f"{what} failed: {errors[-1].strip()} (the whole output: {log})")


def continuation(
    staged: Path, source: Source, layout: Layout, config: Path | None, flags: Sequence[str]
) -> list[str]:
    """The new version's command that carries the upgrade on, from the venv just staged."""
    command = [str(staged / "bin" / "appliance")]
    if config is not None:
        command += ["--config", os.path.abspath(config)]
    return [
        *command,
        "upgrade",
        str(source.path),
        "--venv",
        str(layout.venv),
        "--staged",
        str(staged),
        *flags,
    ]


def hand_over(command: list[str]) -> NoReturn:
    """Become the new version's `appliance upgrade` (same pid, same terminal)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)  # noqa: S606  (the staged venv's own command, built above)
