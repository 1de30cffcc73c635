"""The wheel's build step that bundles the playbooks: the checkout's top-level `playbooks/` becomes
`appliance/playbooks/` in the built package, so `appliance reconfigure` finds them after a plain
`pip install .` (appliance/cli/reconfigure/converge.py). An editable install reads them from the checkout.

setuptools' package data cannot reach outside a package's directory, hence a build_py step
(`[tool.setuptools] cmdclass` in pyproject.toml); MANIFEST.in puts the same files in the sdist.
"""

from __future__ import annotations

from pathlib import Path

from setuptools.command.build_py import build_py

PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"


class BuildPy(build_py):
    """setuptools' build_py, then a copy of playbooks/ into the built `appliance` package."""

    def run(self) -> None:
        super().run()
        if PLAYBOOKS.is_dir() and not self.editable_mode:
            self.copy_tree(str(PLAYBOOKS), str(Path(self.build_lib) / "appliance" / "playbooks"))
