"""Prometheus metrics of the supervisor: the [metrics] table, /proc readings, the text, and real scrapes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from appliance import __version__
from appliance.supervisor.metrics import answer, parse_metrics, render
from appliance.supervisor.specs import SpecError, load_services
from appliance.supervisor.states import State
from appliance.supervisor.usage import ProcReader
from tests.servers import unavailable
from tests.supervisor.realproc import Sandbox, answer_pid, free_port, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition text, keyed by name and sorted labels (parsed by prometheus_client)."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def of(found: Samples, name: str, **labels: str) -> float:
    """One sample's value; KeyError if it is missing."""
    return found[(name, tuple(sorted(labels.items())))]


def scrape(port: int, path: str = "/metrics") -> tuple[int, str, str]:
    """Status, content type and body of a GET on the supervisor's endpoint."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def control(box: Sandbox, request: dict[str, Any]) -> dict[str, Any]:
    """One raw request on the control socket."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(box.run_dir / "control.sock"))
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            assert chunk, "the supervisor closed the connection"
            data += chunk
    answer: dict[str, Any] = json.loads(data)
    return answer


# The [metrics] table ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [("127.0.0.1:9101", "127.0.0.1", 9101), ("[::1]:9101", "::1", 9101), ("localhost:80", "localhost", 80)],
)
def test_listen_takes_a_loopback_host_and_port(listen: str, host: str, port: int) -> None:
    spec = parse_metrics({"metrics": {"listen": listen}}, "s.toml")
    assert spec is not None
    assert (spec.host, spec.port) == (host, port)


def test_no_metrics_table_means_no_endpoint() -> None:
    assert parse_metrics({"programs": {}}, "s.toml") is None


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"listen": "0.0.0.0:9101"}, "loopback"),
        ({"listen": "10.0.0.5:9101"}, "loopback"),
        ({"listen": "example.com:9101"}, "loopback"),
        ({"listen": "127.0.0.1"}, "host:port"),
        ({"listen": "127.0.0.1:0"}, "1 to 65535"),
        ({"listen": "127.0.0.1:70000"}, "1 to 65535"),
        ({"listen": 9101}, "string"),
        ({}, "required"),
        ({"listen": "127.0.0.1:9101", "port": 1}, "unknown key 'metrics.port'"),
        ("127.0.0.1:9101", "must be a table"),
    ],
)
def test_a_bad_metrics_table_is_refused_naming_the_file_and_key(table: object, words: str) -> None:
    with pytest.raises(SpecError, match="metrics") as caught:
        parse_metrics({"metrics": table}, "/etc/services.toml")
    assert str(caught.value).startswith("/etc/services.toml: ")
    assert words in str(caught.value)


def test_the_services_file_accepts_and_checks_the_metrics_table(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[metrics]\nlisten = "127.0.0.1:9101"\n\n[programs.a]\ncommand = ["/bin/true"]\n')
    assert [p.name for p in load_services(good).programs] == ["a"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[metrics]\nlisten = "0.0.0.0:9101"\n\n[programs.a]\ncommand = ["/bin/true"]\n')
    with pytest.raises(SpecError, match=r"bad\.toml: 'metrics\.listen' must be a loopback address"):
        load_services(bad)


def test_check_refuses_a_bad_metrics_table_with_exit_2(tmp_path: Path) -> None:
    services = tmp_path / "services.toml"
    services.write_text('[metrics]\nlisten = "127.0.0.1:http"\n\n[programs.a]\ncommand = ["/bin/true"]\n')
    argv = [sys.executable, "-m", "appliance", "supervise", "--services", str(services), "--check"]
    argv += ["--run-dir", str(tmp_path / "run"), "--log-dir", str(tmp_path / "log")]
    run = subprocess.run(argv, capture_output=True, text=True)
    assert run.returncode == 2
    assert "'metrics.listen'" in run.stderr


# /proc ------------------------------------------------------------------------------------------------------
def fake_process(
    root: Path, pid: int, pgrp: int, ticks: tuple[int, int, int, int], pages: int, **kw: str
) -> None:
    """A /proc/<pid> with the stat and statm fields the reader uses."""
    comm, state = kw.get("comm", "python"), kw.get("state", "S")
    utime, stime, cutime, cstime = ticks
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
    # cstime ...
    stat = f"{pid} ({comm}) {state} 1 {pgrp} {pgrp} 0 -1 0 0 0 0 0 {utime} {stime} {cutime} {cstime} 20 0 1 0"
    (root / str(pid)).mkdir(parents=True)
    (root / str(pid) / "stat").write_text(stat + "\n")
    (root / str(pid) / "statm").write_text(f"{pages * 3} {pages} 10 1 0 50 0\n")


def test_a_group_sums_cpu_and_memory_of_its_live_members(tmp_path: Path) -> None:
    fake_process(tmp_path, 100, 100, (50, 25, 10, 15), 1000, comm="gunicorn: master (app) x")
    fake_process(tmp_path, 101, 100, (100, 0, 0, 0), 500)
    fake_process(tmp_path, 102, 100, (999, 999, 0, 0), 0, state="Z")  # a zombie: not counted twice
    fake_process(tmp_path, 200, 200, (1, 1, 0, 0), 7)  # another group
    (tmp_path / "self").mkdir()  # non-numeric entries are skipped
    reader = ProcReader(tmp_path, clock_ticks=100, page_size=4096)
    groups = reader.groups([100, 300])
    assert groups[100].cpu_seconds == pytest.approx(2.0)  # (50 + 25 + 10 + 15 + 100) / 100
    assert groups[100].rss_bytes == 1500 * 4096
    assert groups[300].cpu_seconds == 0
    assert groups[300].rss_bytes == 0  # a group that is gone reads as nothing, not an error
    alone = reader.process(100)
    assert alone.cpu_seconds == pytest.approx(0.75)  # the process itself, without reaped children
    assert alone.rss_bytes == 1000 * 4096


def test_the_real_proc_of_this_process_reads_plausibly() -> None:
    me = ProcReader().process(os.getpid())
    assert me.rss_bytes > 1 << 20
    assert 0 < me.cpu_seconds < time.process_time() + 1


# The text ---------------------------------------------------------------------------------------------------
def status_of(supervisor_pid: int, pid: int | None = None, **row: Any) -> dict[str, Any]:
    pid = supervisor_pid if pid is None else pid
    program = {"name": "web", "instance": 2, "state": "running", "pid": pid or None, "started_at": 1000.0}
    program |= {"restarts": 3, "crash_looping": False} | row
    supervisor = {"pid": supervisor_pid, "started_at": 900.0, "version": '1.0"beta\\'}
    return {"programs": [program], "supervisor": supervisor}


def test_render_is_valid_exposition_with_one_state_set(tmp_path: Path) -> None:
    fake_process(tmp_path, 42, 42, (300, 100, 0, 0), 256)
    reader = ProcReader(tmp_path, clock_ticks=100, page_size=4096)
    found = samples(render(status_of(42), reader, wall_now=1012.5))
    who = {"program": "web", "index": "2"}
    states = {s.value: of(found, "appliance_program_state", **who, state=s.value) for s in State}
    assert states == {s.value: (1.0 if s is State.RUNNING else 0.0) for s in State}
    assert of(found, "appliance_program_restarts_total", **who) == 3
    assert of(found, "appliance_program_uptime_seconds", **who) == 12.5
    assert of(found, "appliance_program_cpu_seconds_total", **who) == 4.0
    assert of(found, "appliance_program_resident_memory_bytes", **who) == 256 * 4096
    assert of(found, "appliance_program_crash_looping", **who) == 0
    assert of(found, "appliance_supervisor_uptime_seconds") == 112.5
    assert of(found, "appliance_supervisor_resident_memory_bytes") == 256 * 4096
    assert of(found, "appliance_supervisor_cpu_seconds_total") == 4.0
    assert of(found, "appliance_supervisor_info", version='1.0"beta\\') == 1  # escaped, parsed back


def test_an_instance_without_a_process_has_no_uptime_cpu_or_memory(tmp_path: Path) -> None:
    fake_process(tmp_path, 42, 42, (1, 1, 0, 0), 1)
    reader = ProcReader(tmp_path, clock_ticks=100, page_size=4096)
    status = status_of(42, pid=0, state="backoff", started_at=None, crash_looping=True)
    found = samples(render(status, reader, wall_now=2000.0))
    who = {"program": "web", "index": "2"}
    assert of(found, "appliance_program_state", **who, state="backoff") == 1
    assert of(found, "appliance_program_uptime_seconds", **who) == 0
    assert of(found, "appliance_program_resident_memory_bytes", **who) == 0
    assert of(found, "appliance_program_crash_looping", **who) == 1


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"200 OK"),
        (b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n", b"200 OK"),
        (b"GET / HTTP/1.1\r\n\r\n", b"404 Not Found"),
        (b"POST /metrics HTTP/1.1\r\n\r\n", b"405 Method Not Allowed"),
        (b"\x16\x03\x01 garbage\r\n\r\n", b"400 Bad Request"),
    ],
)
def test_only_get_metrics_is_served(request_head: bytes, status: bytes) -> None:
    assert answer(request_head, lambda: "x 1\n").startswith(b"HTTP/1.1 " + status + b"\r\n")


def test_head_gets_the_headers_only() -> None:
    response = answer(b"HEAD /metrics HTTP/1.1\r\n\r\n", lambda: "x 1\n")
    assert b"Content-Length: 4\r\n" in response
    assert response.endswith(b"\r\n\r\n")


# A real supervisor ------------------------------------------------------------------------------------------
def start_with_metrics(sandbox: Sandbox, port: int, web_port: int) -> None:
    sandbox.write(
        f'[metrics]\nlisten = "127.0.0.1:{port}"\n',
        sandbox.program("web", port=web_port),
        sandbox.program("crashy", mode="crash"),
    )
    sandbox.start()
    wait_for(lambda: answer_pid(web_port), what="web to answer")


def test_a_real_scrape_reports_state_restarts_and_memory(sandbox: Sandbox) -> None:
    port, web_port = free_port(), free_port()
    start_with_metrics(sandbox, port, web_port)
    status, content_type, text = wait_for(lambda: scrape(port), what="the metrics endpoint")
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    before = samples(text)
    web = {"program": "web", "index": "1"}
    assert of(before, "appliance_program_state", **web, state="running") == 1
    assert of(before, "appliance_program_resident_memory_bytes", **web) > 1 << 20
    assert of(before, "appliance_program_uptime_seconds", **web) > 0
    assert of(before, "appliance_supervisor_resident_memory_bytes") > 1 << 20
    assert of(before, "appliance_supervisor_info", version=__version__) == 1

    pid = answer_pid(web_port)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: answer_pid(web_port) not in (None, pid), what="web to be restarted")
    after = samples(scrape(port)[2])
    assert (
        of(after, "appliance_program_restarts_total", **web)
        == of(before, "appliance_program_restarts_total", **web) + 1
    )
    crashy = {"program": "crashy", "index": "1"}
    wait_for(
        lambda: of(samples(scrape(port)[2]), "appliance_program_restarts_total", **crashy) >= 2,
        what="crashy's restarts to show",
    )
    assert scrape(port, "/")[0] == 404


def test_the_control_socket_returns_the_same_metrics(sandbox: Sandbox) -> None:
    port, web_port = free_port(), free_port()
    start_with_metrics(sandbox, port, web_port)
    reply = wait_for(lambda: control(sandbox, {"cmd": "metrics"}), what="a metrics answer")
    assert reply["ok"] is True
    found = samples(reply["text"])
    assert of(found, "appliance_program_state", program="web", index="1", state="running") == 1
    assert of(found, "appliance_supervisor_cpu_seconds_total") >= 0


def test_a_silent_client_does_not_block_scrapes_or_supervision(sandbox: Sandbox) -> None:
    port, web_port = free_port(), free_port()
    start_with_metrics(sandbox, port, web_port)
    wait_for(lambda: scrape(port), what="the metrics endpoint")
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        assert scrape(port)[0] == 200
        assert sandbox.one("web")["state"] == "running"
    finally:
        for sock in silent:
            sock.close()


def test_a_busy_metrics_port_is_logged_and_programs_still_run(sandbox: Sandbox) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port, web_port = taken.getsockname()[1], free_port()
        start_with_metrics(sandbox, port, web_port)
        log = sandbox.log_dir / "supervisor.log"
        wait_for(lambda: "no metrics endpoint" in log.read_text(), what="the log line")
        assert f"cannot listen on 127.0.0.1:{port}" in log.read_text()
        assert sandbox.one("web")["state"] == "running"


def test_real_prometheus_scrapes_the_supervisor(sandbox: Sandbox) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        unavailable("prometheus is not installed (./install.sh --test installs it)")
    assert binary is not None
    port, web_port, prom_port = free_port(), free_port(), free_port()
    start_with_metrics(sandbox, port, web_port)
    config = sandbox.tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: supervisor\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n"
    )
    log = (sandbox.tmp / "prometheus.log").open("wb")
    prom = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={sandbox.tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def query(expr: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            result: list[dict[str, Any]] = json.load(response)["data"]["result"]
        return result

    try:
        assert wait_for(lambda: query('up{job="supervisor"} == 1'), timeout=60, what="a successful scrape")
        running = wait_for(
            lambda: query('appliance_program_state{program="web",state="running"} == 1'),
            timeout=30,
            what="web's state in Prometheus",
        )
        # `index`, not `instance`: Prometheus keeps the target's `instance` label and ours intact.
        assert running[0]["metric"]["index"] == "1"
        assert running[0]["metric"]["instance"] == f"127.0.0.1:{port}"
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        log.close()
