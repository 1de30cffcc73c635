"""The shared listening socket with real HTTP servers: one port for all instances, reload drops nothing."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
import urllib.error
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
    server.daemon_threads = False  # so that server_close() waits for the requests in flight
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever(poll_interval=0.02)
    server.server_close()  # joins the requests in flight
    """
)


def get_pid(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
        return int(answer.read())


def web(sandbox: Sandbox, port: int, instances: int = 2, when_down: str = "hold") -> str:
    script = sandbox.tmp / "server.py"
    script.write_text(SERVER)
    return (
        f'[programs.web]\ncommand = ["{sys.executable}", "{script}"]\ninstances = {instances}\n'
        f'listen = "127.0.0.1:{port}"\nstop_timeout = 10\nwhen_down = "{when_down}"\n'
    )


def get(port: int) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of GET / (an error status is an answer too)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def assert_unavailable(port: int) -> None:
    status, headers, body = get(port)  # a client that hangs would fail here on its own timeout
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert headers["Connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert (error["details"], error["request_id"]) == ({}, None)
    assert "web" in error["message"]


def test_instances_share_the_port_and_reload_under_load_fails_no_request(sandbox: Sandbox) -> None:
    port = free_port()
    sandbox.write(web(sandbox, port, when_down="http-503"))  # with an instance up, the supervisor keeps out
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


def test_while_every_instance_crashes_clients_get_503_at_once(sandbox: Sandbox) -> None:
    port = free_port()
    sandbox.write(
        sandbox.program("web", mode="crash", extra=f'listen = "127.0.0.1:{port}"\nwhen_down = "http-503"')
    )
    sandbox.start()
    wait_for(lambda: sandbox.one("web")["crash_looping"], what="crash_looping")
    for _ in range(3):
        assert_unavailable(port)
    events = [e for e in sandbox.client.events() if e["kind"] == "standby"]
    assert "web: no instance is up, answering its connections with 503" in events[0]["message"]


def test_a_stopped_program_is_answered_503_then_served_again_once_started(sandbox: Sandbox) -> None:
    port = free_port()
    sandbox.write(web(sandbox, port, instances=1, when_down="http-503"))
    sandbox.start()
    pid = wait_for(lambda: sandbox.running_pid("web"), what="web running")
    assert get(port)[2] == str(pid).encode()
    sandbox.client.stop(["web"])
    assert_unavailable(port)
    sandbox.client.start(["web"])
    pid = wait_for(lambda: sandbox.running_pid("web"), what="web running again")
    assert get(port)[0:3:2] == (200, str(pid).encode())  # the process serves again, not the supervisor
    log = (sandbox.log_dir / "supervisor.log").read_text()
    assert "web: an instance is up or starting, its processes take the connections" in log


def test_hold_leaves_connections_waiting_for_an_instance(sandbox: Sandbox) -> None:
    import socket

    port = free_port()
    sandbox.write(web(sandbox, port, instances=1))  # when_down = "hold": the old behaviour, kept on request
    sandbox.start()
    wait_for(lambda: sandbox.running_pid("web"), what="web running")
    sandbox.client.stop(["web"])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:  # completed by the backlog
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        sandbox.client.start(["web"])
        answer = conn.makefile("rb").read()
    pid = sandbox.running_pid("web")
    assert answer.startswith(b"HTTP/1.0 200")  # it waited, then the new process served it
    assert answer.endswith(str(pid).encode())
