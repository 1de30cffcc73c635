"""`python -m appliance` and the `appliance` command.

`appliance supervise` reads the settings like every other command, then replaces itself (same pid) with
the supervisor, `python -m appliance.supervisor`, which loads the standard library only: it stays small and
keeps working when everything else is broken (see appliance/cli/processes/supervise.py).
"""

from __future__ import annotations


def main() -> None:
    from appliance.cli.main import run

    run()


if __name__ == "__main__":
    main()
