"""Logging of the API and worker processes (appliance.logs.setup), as their log files show it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import clean_environ

# A real HTTP request through httpx, as a probe or a webhook delivery makes it, in a process whose logging
# is set up as the worker's and the API's are.
_PROGRAM = """
import http.server, logging, sys, threading
import httpx
from appliance.logs import setup

class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
threading.Thread(target=server.serve_forever, daemon=True).start()
setup(sys.argv[1], False, "worker")
with httpx.Client() as client:
    assert client.get(f"http://127.0.0.1:{server.server_port}/health").status_code == 200
logging.getLogger("httpx").warning("a warning of httpx's")
logging.getLogger("appliance.workers.monitor").info("probe done")
server.shutdown()
"""


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_httpx_request_lines_are_silent_unless_debugging(level: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _PROGRAM, level],
        capture_output=True,
        text=True,
        env=clean_environ(),
        timeout=60,
        check=True,
    )
    assert "INFO appliance.workers.monitor: probe done" in run.stderr
    assert "WARNING httpx: a warning of httpx's" in run.stderr
    request_lines = [line for line in run.stderr.splitlines() if "HTTP Request: GET" in line]
    assert len(request_lines) == (1 if level == "DEBUG" else 0), run.stderr
