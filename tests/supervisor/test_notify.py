"""Readiness by notification: the kernel names the sender, so instances on one socket are told apart."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.supervisor.notify import NotifyReadiness, NotifySocket, notify
from appliance.supervisor.specs import SpecError, load_services


def pump(selector: selectors.BaseSelector) -> None:
    for key, mask in selector.select(timeout=5):
        key.data(mask)


def test_ready_names_the_sending_process(tmp_path: Path) -> None:
    selector = selectors.DefaultSelector()
    seen: list[tuple[int, dict[str, str]]] = []
    sock = NotifySocket(tmp_path / "notify.sock", selector, lambda pid, fields: seen.append((pid, fields)))
    try:
        child = subprocess.run(
            [sys.executable, "-c", "import os, sys\nfrom appliance.supervisor.notify import notify\n"
             "print(os.getpid()); notify('STATUS=warming up\\nREADY=1', sys.argv[1])", str(sock.path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        pump(selector)
        assert seen == [(int(child.stdout), {"STATUS": "warming up", "READY": "1"})]
        assert notify("STATUS=not ready: a=b\nX_READY=0", str(sock.path))
        pump(selector)
        assert seen[-1] == (os.getpid(), {"STATUS": "not ready: a=b", "X_READY": "0"})
        assert oct(os.stat(sock.path).st_mode & 0o777) == "0o600"
    finally:
        sock.close()
        selector.close()
    assert not (tmp_path / "notify.sock").exists()


def test_readiness_before_the_probe_is_remembered(tmp_path: Path) -> None:
    selector = selectors.DefaultSelector()
    reports: list[tuple[int, bool]] = []
    readiness = NotifyReadiness(
        tmp_path / "n.sock", selector, lambda pid, ok: reports.append((pid, ok)), None
    )
    try:
        assert readiness.env_for({"A": "1"}) == {"A": "1", "NOTIFY_SOCKET": str(tmp_path / "n.sock")}
        notify("READY=1", str(tmp_path / "n.sock"))
        pump(selector)
        assert reports == [(os.getpid(), True)]
        readiness.probe(os.getpid())  # the supervisor's probe comes later: answered from memory
        assert reports[-1] == (os.getpid(), True)
        readiness.forget(os.getpid())
        readiness.probe(os.getpid())
        assert len(reports) == 2
    finally:
        readiness.close()
        selector.close()


def test_notify_without_a_socket_is_harmless(tmp_path: Path) -> None:
    assert not notify("READY=1", None)
    assert not notify("READY=1", str(tmp_path / "nobody-listens"))


@pytest.mark.parametrize(
    "ready",
    ["notify = false", 'notify = true\nhttp = "http://127.0.0.1:1/"'],
)
def test_notify_must_stand_alone(tmp_path: Path, ready: str) -> None:
    path = tmp_path / "services.toml"
    path.write_text(f'[programs.api]\ncommand = ["x"]\n[programs.api.ready]\n{ready}\n')
    with pytest.raises(SpecError, match=r"'ready\.notify' must be true and stand alone"):
        load_services(path)


def test_the_supervisor_tells_systemd_it_is_ready_and_stopping(tmp_path: Path) -> None:
    """Started with NOTIFY_SOCKET (systemd Type=notify), the supervisor itself says READY=1, then STOPPING=1;
    its children get the supervisor's own socket, never systemd's."""
    import signal
    import socket

    services = tmp_path / "services.toml"
    services.write_text(
        f'[programs.sleeper]\ncommand = ["{sys.executable}", "-c", "import os, time; '
        f"print(os.environ.get('NOTIFY_SOCKET')); time.sleep(600)\"]\n"
    )
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    upstream.bind(str(tmp_path / "systemd.sock"))
    upstream.settimeout(30)
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env["NOTIFY_SOCKET"] = str(tmp_path / "systemd.sock")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "appliance.supervisor", "--services", str(services),
         "--run-dir", str(tmp_path / "run"), "--log-dir", str(tmp_path / "logs"), "--quiet"],
        env=env,
    )  # fmt: skip
    try:
        assert upstream.recv(4096) == b"READY=1"
        supervisor.send_signal(signal.SIGTERM)
        assert upstream.recv(4096) == b"STOPPING=1"
        assert supervisor.wait(timeout=30) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        upstream.close()
    log = (tmp_path / "logs" / "sleeper.log").read_text()
    assert str(tmp_path / "systemd.sock") not in log  # the child never saw systemd's socket
