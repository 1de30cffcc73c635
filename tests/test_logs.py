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


# The access line of a request whose path carried percent-encoded control characters (uvicorn decodes
# them into the path), then an error with its traceback, in the plain-text format.
_CONTROL_PROGRAM = """
import logging, sys
from appliance.logs import setup, text_access_log
setup("INFO", False, "api")
text_access_log("GET", "/api/v1/x\\n2026-01-01 INFO appliance.auth: forged\\x00\\x1b[2J", 404, 1.0, "")
try:
    raise ValueError("boom")
except ValueError:
    logging.getLogger("appliance.api").exception("failed:\\r\\nsecond line")
"""


def test_control_characters_in_a_plain_text_line_are_escaped() -> None:
    run = subprocess.run(
        [sys.executable, "-c", _CONTROL_PROGRAM],
        capture_output=True,
        text=True,
        env=clean_environ(),
        timeout=60,
        check=True,
    )
    lines = run.stderr.splitlines()
    access = [line for line in lines if "appliance.access" in line]
    assert len(access) == 1, run.stderr
    assert "/api/v1/x\\x0a2026-01-01 INFO appliance.auth: forged\\x00\\x1b[2J 404" in access[0]
    assert not any(line.startswith("2026-01-01 INFO appliance.auth") for line in lines)
    assert "\x00" not in run.stderr
    assert "\x1b" not in run.stderr
    # The message's own line breaks are escaped; the traceback after it keeps its lines.
    assert any("failed:\\x0d\\x0asecond line" in line for line in lines), run.stderr
    assert "Traceback (most recent call last):" in lines
    assert "ValueError: boom" in lines
