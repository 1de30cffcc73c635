"""The shared listening socket with real HTTP servers: one port for all instances, reload drops nothing."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
import urllib.request

from tests.supervisor.realproc import Sandbox, free_port, wait_for

SERVER = textwrap.dedent(
    """
    import os, signal, socket, threading, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(0.02)
            body = str(os.getpid()).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    assert os.environ["LISTEN_FDS"] == "1" and "LISTEN_PID" not in os.environ
    sock = socket.socket(fileno=3)
    sock.setblocking(False)  # shared with the other instances: an accept that loses the race must not block
    server = ThreadingHTTPServer(sock.getsockname()[:2], Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever(poll_interval=0.02)
    server.server_close()  # joins the requests in flight
    """
)


def get_pid(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
        return int(answer.read())


def web(sandbox: Sandbox, port: int, instances: int = 2) -> str:
    script = sandbox.tmp / "server.py"
    script.write_text(SERVER)
    return (
        f'[programs.web]\ncommand = ["{sys.executable}", "{script}"]\ninstances = {instances}\n'
        f'listen = "127.0.0.1:{port}"\nstop_timeout = 10\n'
    )


def test_instances_share_the_port_and_reload_under_load_fails_no_request(sandbox: Sandbox) -> None:
    port = free_port()
    sandbox.write(web(sandbox, port))
    sandbox.start()
    rows = wait_for(lambda: (r := sandbox.statuses("web")) and all(x["state"] == "running" for x in r) and r)
    old = {row["pid"] for row in rows}
    seen: set[int] = set()

    def both() -> bool:
        seen.add(get_pid(port))
        return seen == old

    wait_for(both, what="both instances to answer")

    failures: list[str] = []
    answered: set[int] = set()
    stop = threading.Event()

    def load() -> None:
        deadline = time.monotonic() + 60
        for _ in range(5000):
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                answered.add(get_pid(port))
            except OSError as exc:
                failures.append(repr(exc))

    client = threading.Thread(target=load)
    client.start()
    try:
        assert sandbox.client.reload(["web"]) == ["web"]
        new = {row["pid"] for row in sandbox.statuses("web")}
        wait_for(lambda: new <= answered, what="the new instances to answer")
    finally:
        stop.set()
        client.join(timeout=60)
    assert failures == []
    assert len(new) == 2
    assert not new & old


def test_port_taken_by_another_process_exits_2_and_starts_nothing(sandbox: Sandbox) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        sandbox.write(web(sandbox, port, instances=1))
        proc = sandbox.start()
        assert proc.wait(timeout=30) == 2
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert f"program 'web': cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err
    assert not (sandbox.log_dir / "web.log").exists()
