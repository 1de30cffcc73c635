"""`python -m appliance.upgrade SOURCE --venv VENV`: the upgrade started from a checkout, by install.sh.

An installed version older than the checkout may have no `appliance upgrade` (0.1.0 has none), so install.sh
runs this with the installed venv's Python from the checkout's directory: it installs the checkout into a
new venv beside VENV (standard library only), then hands over to that version's `appliance upgrade`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.errors import ApplianceError
from appliance.upgrade.layout import Layout
from appliance.upgrade.stage import continuation, hand_over, inspect_source, stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appliance.upgrade",
        description="Install SOURCE (a wheel or a checkout) beside VENV, then run its `appliance upgrade`.",
    )
    parser.add_argument("source", type=Path, help="a forge-appliance wheel or checkout")
    parser.add_argument("--venv", type=Path, required=True, help="the venv path the appliance runs from")
    parser.add_argument("--config", type=Path, help="the settings file (default: the usual places)")
    parser.add_argument("--wheelhouse", type=Path, help="install from this directory of wheels only")
    parser.add_argument("--check", action="store_true", help="run the preflight checks only")
    parser.add_argument("--allow-downtime", action="store_true", help="see `appliance upgrade --help`")
    args = parser.parse_args(argv)
    flags = [flag for flag, on in (("--check", args.check), ("--allow-downtime", args.allow_downtime)) if on]
    try:
        source = inspect_source(args.source)
        layout = Layout(Path(args.venv).absolute())
        print(f"==> upgrade to {source.version} from {source.path}", flush=True)
        staged = stage(layout, source, args.wheelhouse, lambda line: print(f"  {line}", flush=True))
        hand_over(continuation(staged, source, layout, args.config, flags))
    except ApplianceError as exc:
        print(f"appliance: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
