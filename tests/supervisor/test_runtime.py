"""The real supervisor with real children: start, readiness, restart after SIGKILL, crash loops, shutdown."""

from __future__ import annotations

import functools
import os
import signal

from tests.supervisor.realproc import Sandbox, alive, answer_pid, free_port, processes_under, wait_for


def test_starts_programs_that_become_ready_and_logs_their_output(sandbox: Sandbox) -> None:
    tcp_port, http_port = free_port(), free_port()
    sandbox.write(
        sandbox.program("tcp", port=tcp_port, ready=f'tcp = "127.0.0.1:{tcp_port}"'),
        sandbox.program("web", port=http_port, ready=f'http = "http://127.0.0.1:{http_port}/health"'),
    )
    sandbox.start()
    pid = wait_for(lambda: sandbox.running_pid("tcp"), what="tcp running")
    assert answer_pid(tcp_port) == pid  # running means ready: it already answers
    web = wait_for(lambda: sandbox.running_pid("web"), what="web running")
    assert answer_pid(http_port) == web
    log = wait_for(
        lambda: (
            (sandbox.log_dir / "web.log").read_text().count("\n") >= 2
            and (sandbox.log_dir / "web.log").read_text()
        )
    )
    lines = log.splitlines()
    assert any(line.endswith(" stdout web starting") for line in lines)
    assert any(line.endswith(" stderr web warning") for line in lines)
    assert all(line[:4].isdigit() and line[10] == "T" and line[23] == "Z" for line in lines)
    state = (sandbox.run_dir / "state.json").read_text()
    assert str(pid) in state
    assert str(web) in state
    assert (sandbox.run_dir / "supervisor.pid").read_text().strip() == str(sandbox.procs[0].pid)
    assert oct((sandbox.run_dir / "control.sock").stat().st_mode & 0o777) == "0o600"


def test_sigkilled_child_is_replaced(sandbox: Sandbox) -> None:
    port = free_port()
    sandbox.write(sandbox.program("app", port=port, ready=f'tcp = "127.0.0.1:{port}"'))
    sandbox.start()
    for _ in range(3):
        old = wait_for(lambda: answer_pid(port), what="an answer")
        os.kill(old, signal.SIGKILL)
        new = wait_for(functools.partial(_new_pid, port, old), what="a new pid on the port")
        assert new != old
    row = wait_for(lambda: (r := sandbox.one("app"))["state"] == "running" and r)
    assert row["restarts"] == 3
    assert not row["crash_looping"]


def test_crash_loop_backs_off_and_is_reported_not_given_up(sandbox: Sandbox) -> None:
    ok_port = free_port()
    sandbox.write(sandbox.program("crasher", mode="crash"), sandbox.program("fine", port=ok_port))
    sandbox.start()
    row = wait_for(lambda: (r := sandbox.one("crasher"))["crash_looping"] and r, what="crash_looping")
    assert row["state"] in ("backoff", "starting", "running")
    assert row["restarts"] >= 4
    assert row["exit_status"] == 1
    assert row["reason"] == "exited with code 1"
    spawned = len(sandbox.markers_of("crasher", "started"))
    assert 5 <= spawned <= 7  # 0, +0, +0.5, +1, +2 s: backing off, not spinning
    assert sandbox.one("fine")["state"] == "running"
    log = (sandbox.log_dir / "supervisor.log").read_text()
    assert "crasher: crash-looping" in log
    wait_for(lambda: len(sandbox.markers_of("crasher", "started")) > spawned, what="a further retry")


def test_sigterm_stops_children_gracefully_and_exits_zero(sandbox: Sandbox) -> None:
    port_a, port_b = free_port(), free_port()
    sandbox.write(
        sandbox.program("term", port=port_a),
        sandbox.program("intr", port=port_b, extra='stop_signal = "INT"'),
    )
    proc = sandbox.start()
    pids = [wait_for(functools.partial(answer_pid, p), what="answers") for p in (port_a, port_b)]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert [p.name for p in sandbox.markers_of("term", "SIGTERM")] == [f"term.{pids[0]}.SIGTERM"]
    assert [p.name for p in sandbox.markers_of("intr", "SIGINT")] == [f"intr.{pids[1]}.SIGINT"]
    assert not any(alive(pid) for pid in pids)
    assert not (sandbox.run_dir / "control.sock").exists()


def test_stop_timeout_escalates_to_sigkill(sandbox: Sandbox) -> None:
    sandbox.write(sandbox.program("stubborn", mode="ignore", port=free_port(), extra="stop_timeout = 0.5"))
    sandbox.start()
    pid = wait_for(lambda: sandbox.running_pid("stubborn"))
    wait_for(lambda: sandbox.markers_of("stubborn", "started"))
    assert sandbox.client.stop(["stubborn"]) == ["stubborn"]
    row = sandbox.one("stubborn")
    assert (row["state"], row["exit_status"], row["pid"]) == ("stopped", -signal.SIGKILL, None)
    assert not alive(pid)


def test_children_die_with_a_sigkilled_supervisor_and_a_new_one_starts_cleanly(sandbox: Sandbox) -> None:
    port = free_port()
    sandbox.write(sandbox.program("app", port=port, ready=f'tcp = "127.0.0.1:{port}"'))
    first = sandbox.start()
    child = wait_for(lambda: sandbox.running_pid("app"))
    first.kill()
    first.wait(timeout=10)
    wait_for(lambda: not alive(child), what="the child to die with its supervisor")
    sandbox.start()
    new = wait_for(lambda: sandbox.running_pid("app"), what="the new supervisor's child")
    assert new != child
    assert answer_pid(port) == new


def test_missing_command_is_fatal_while_others_run(sandbox: Sandbox) -> None:
    port = free_port()
    sandbox.write(
        '[programs.ghost]\ncommand = ["/nonexistent/ghost", "--flag"]\n',
        sandbox.program("app", port=port),
    )
    sandbox.start()
    ghost = wait_for(lambda: (r := sandbox.one("ghost"))["state"] == "fatal" and r, what="ghost fatal")
    assert ghost["reason"] == "command not found: /nonexistent/ghost"
    assert wait_for(lambda: answer_pid(port))
    assert sandbox.one("app")["state"] == "running"


def test_depends_on_orders_start_and_reverse_stop(sandbox: Sandbox) -> None:
    db_port, api_port = free_port(), free_port()
    sandbox.write(
        sandbox.program(
            "api",
            port=api_port,
            extra=f'depends_on = ["db"]\nenvironment = {{ DEP_PORT = "{db_port}", PEER_PORT = "{db_port}" }}',
        ),
        sandbox.program(
            "db",
            port=db_port,
            extra=f'environment = {{ DELAY = "0.5", PEER_PORT = "{api_port}" }}',
            ready=f'tcp = "127.0.0.1:{db_port}"',
        ),
    )
    proc = sandbox.start()
    wait_for(lambda: answer_pid(api_port), what="api answering")
    assert sandbox.markers_of("api", "dep-up")
    assert not sandbox.markers_of("api", "dep-down")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert sandbox.markers_of("api", "peer-up"), "db was still up while api stopped"
    assert sandbox.markers_of("db", "peer-down"), "api was gone before db stopped"


def test_instances_each_get_a_process_and_a_log(sandbox: Sandbox) -> None:
    sandbox.write(sandbox.program("pool", mode="sleep", extra="instances = 2"))
    sandbox.start()
    rows = wait_for(lambda: (r := sandbox.statuses("pool")) and all(x["state"] == "running" for x in r) and r)
    assert [r["instance"] for r in rows] == [1, 2]
    assert rows[0]["pid"] != rows[1]["pid"]
    wait_for(lambda: (sandbox.log_dir / "pool-1.log").exists() and (sandbox.log_dir / "pool-2.log").exists())


def test_everything_is_gone_after_shutdown(sandbox: Sandbox) -> None:
    sandbox.write(
        sandbox.program("a", mode="sleep"), sandbox.program("b", mode="sleep", extra="instances = 3")
    )
    proc = sandbox.start()
    wait_for(lambda: len(sandbox.markers_of("b", "started")) == 3)
    sandbox.client.shutdown()
    assert proc.wait(timeout=30) == 0
    assert processes_under(sandbox.tmp) == []


def _new_pid(port: int, old: int) -> int | None:
    pid = answer_pid(port)
    return pid if pid != old else None
