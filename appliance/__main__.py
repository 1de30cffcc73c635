"""`python -m appliance` and the `appliance` command.

`appliance supervise` goes straight to the supervisor, which uses the standard library only: it must not
load Typer, pydantic or SQLAlchemy (a supervisor that stays small and works when everything else is broken).
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["supervise"]:
        from appliance.supervisor.main import main as supervisor_main

        sys.exit(supervisor_main(sys.argv[2:]))
    from appliance.cli import run

    run()


if __name__ == "__main__":
    main()
