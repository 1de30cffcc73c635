"""The appliance container's health check: 200 from /health/ready of the API in this container.

Standard library only (a check every few seconds should not import the appliance). The port is the
settings': APPLIANCE_API__PORT, else [api] port of the settings file (APPLIANCE_CONFIG), else 8080. While
no API process is up the supervisor answers 503 itself, so a down API is unhealthy, not hanging.
"""

from __future__ import annotations

import os
import sys
import tomllib
import urllib.error
import urllib.request


def api_port() -> int:
    if os.environ.get("APPLIANCE_API__PORT"):
        return int(os.environ["APPLIANCE_API__PORT"])
    path = os.environ.get("APPLIANCE_CONFIG", "/etc/forge-appliance/appliance.toml")
    try:
        with open(path, "rb") as fh:
            return int(tomllib.load(fh).get("api", {}).get("port", 8080))
    except FileNotFoundError:
        return 8080


def main() -> int:
    url = f"http://127.0.0.1:{api_port()}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
