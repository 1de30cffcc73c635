"""The command line: `python -m appliance.supervisor --services FILE --run-dir DIR --log-dir DIR`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from appliance.client.supervisor import SupervisorClient, SupervisorError, SupervisorUnavailable
from appliance.supervisor.eventlog import EventLog
from appliance.supervisor.listeners import Listeners
from appliance.supervisor.runtime import Runtime
from appliance.supervisor.specs import ServicesSpec, SpecError, load_services
from appliance.supervisor.statefile import RunDir, RunDirBusy, clean_stale

DEFAULT_SERVICES = Path(__file__).with_name("default_services.toml")
EXIT_OK, EXIT_BUSY, EXIT_SPEC = 0, 1, 2


def _version() -> str:
    module = sys.modules.get("appliance")  # the parent package, already imported; nothing more is loaded
    return str(getattr(module, "__version__", "unknown"))


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m appliance.supervisor",
        description="Run the appliance's processes in the foreground, restart them, stop them in order.",
    )
    parser.add_argument(
        "--services",
        type=Path,
        default=DEFAULT_SERVICES,
        help="services TOML file (default: the embedded one)",
    )
    parser.add_argument(
        "--run-dir", type=Path, required=True, help="control.sock, supervisor.pid, state.json"
    )
    parser.add_argument(
        "--log-dir", type=Path, required=True, help="supervisor.log and one <program>.log each"
    )
    parser.add_argument("--check", action="store_true", help="only check the services file, then exit")
    parser.add_argument(
        "--reload-config",
        action="store_true",
        help="ask the supervisor running with --run-dir to re-read its services file, print the result",
    )
    parser.add_argument("--quiet", action="store_true", help="do not echo supervisor events to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the supervisor until SIGTERM, SIGINT or a `shutdown` request; return the exit code.

    0: clean shutdown; 1: another supervisor owns the run dir (or a directory is unusable); 2: the services
    file is wrong (one line on stderr says why).
    """
    args = build_parser().parse_args(argv)
    if args.reload_config:
        return _reload_config(args.run_dir)
    try:
        services = load_services(args.services)
    except SpecError as exc:
        print(f"supervisor: {exc}", file=sys.stderr)
        return EXIT_SPEC
    if args.check:
        print(f"{args.services}: {len(services.programs)} programs, OK")
        return EXIT_OK
    run_dir = RunDir(args.run_dir)
    try:
        args.log_dir.mkdir(parents=True, exist_ok=True)
        run_dir.acquire()
    except RunDirBusy as exc:
        print(f"supervisor: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except OSError as exc:
        print(
            f"supervisor: cannot use {exc.filename or args.run_dir}: {exc.strerror or exc}", file=sys.stderr
        )
        return EXIT_BUSY
    try:
        return _supervise(args, services, run_dir)
    finally:
        run_dir.release()


def _supervise(args: argparse.Namespace, services: ServicesSpec, run_dir: RunDir) -> int:
    log = EventLog(args.log_dir / "supervisor.log", echo=not args.quiet)
    listeners = Listeners()
    try:
        stale = run_dir.stale_children()
        if stale:
            clean_stale(stale, log)  # first: a leftover child may still hold a `listen` port
        try:
            # Bound once, before any program starts; a port held by another process starts nothing.
            listeners.adopt(services, listeners.prepare(services))
        except SpecError as exc:
            log(f"cannot supervise: {exc}")
            print(f"supervisor: {exc}", file=sys.stderr)
            return EXIT_SPEC
        Runtime(services, run_dir, args.log_dir, log, _version(), listeners=listeners).run()
    except OSError as exc:
        log(f"cannot supervise: {exc}")
        print(f"supervisor: {exc}", file=sys.stderr)
        return EXIT_BUSY
    finally:
        listeners.close()
        log.close()
    return EXIT_OK


def _reload_config(run_dir: Path) -> int:
    """`--reload-config`: 0 and the JSON answer when adopted; 2 when refused; 1 when nothing answers."""
    client = SupervisorClient(RunDir(run_dir).socket_path, timeout=600.0)
    try:
        result = client.reload_config()
    except SupervisorUnavailable as exc:
        print(f"supervisor: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except SupervisorError as exc:
        print(f"supervisor: reload refused or failed: {exc}", file=sys.stderr)
        return EXIT_SPEC
    print(json.dumps(result))
    return EXIT_OK
