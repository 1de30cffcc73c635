"""Benchmark: the CPU the admin's everyday commands cost, against `appliance --help` measured in the same run.

Run: .venv/bin/python tests/bench/bench_cli.py [--runs 10] [--code DIR]

1. A throwaway data directory, initialised and migrated (SQLite), the appliance not running.
2. Each run, in turn, each command in a fresh process, its CPU (user + system, from the kernel's accounting
   of the finished child) taken:
   - `appliance --help`, the baseline: Python, Typer and the command tree;
   - `appliance status` of a stopped appliance (settings, the control socket, exit 3);
   - `appliance up` up to the moment it spawns the supervisor: the process is stopped there (its
     subprocess.Popen raises), so the figure is what `up` spends of its own before anything starts.
3. Reported per command: the CPU of each run (median, range), and its ratio to --help of the same run.

`--code DIR` runs another checkout's package (e.g. a `git worktree` of an older commit) on this venv, to
measure before and after in one invocation.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_UP_TO_SPAWN = """
import subprocess, sys
class Spawn(subprocess.Popen):
    def __init__(self, *args, **kwargs):
        raise SystemExit(9)
subprocess.Popen = Spawn
from appliance.cli.main import app
app(["up"])
"""

COMMANDS: dict[str, list[str]] = {
    "--help": ["-m", "appliance", "--help"],
    "status (stopped)": ["-m", "appliance", "status"],
    "up, to the spawn": ["-c", _UP_TO_SPAWN],
}


def cpu_of(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """User + system CPU seconds of one child process, from start to exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose package is measured")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="fa-bench-cli-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    # Run from the data directory: from the repository, `python -m appliance` would import ./appliance.
    env |= {"APPLIANCE_DATA_DIR": str(data), "PYTHONPATH": str(args.code.resolve())}
    try:
        for step in ("init", "migrate"):
            subprocess.run(
                [sys.executable, "-m", "appliance", step], env=env, check=True, capture_output=True
            )
        cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.runs):
            for name, argv in COMMANDS.items():
                cpu[name].append(cpu_of([sys.executable, *argv], env, data))
    finally:
        shutil.rmtree(data, ignore_errors=True)

    print(f"code: {args.code.resolve()}   runs: {args.runs}")
    print(f"{'command':<18} {'CPU median':>10} {'CPU range':>15} {'x --help (median, range)':>28}")
    baseline = cpu["--help"]
    for name, seconds in cpu.items():
        ratios = [s / b for s, b in zip(seconds, baseline, strict=True)]
        print(
            f"{name:<18} {statistics.median(seconds):>9.3f}s "
            f"{min(seconds):>6.3f}-{max(seconds):.3f}s "
            f"{statistics.median(ratios):>13.1f} ({min(ratios):.1f}-{max(ratios):.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
