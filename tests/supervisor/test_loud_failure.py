"""Failure is loud where the admin looks: status, the supervisor's stderr (the journal) and events say what a
crash-looping program last wrote to stderr, and a program that runs but cannot work is shown not ready."""

from __future__ import annotations

from pathlib import Path

from tests.supervisor.realproc import Sandbox, wait_for

PLACEHOLDER = "crasher: fatal: the signing key is the placeholder"
DB_DOWN = "not ready: database unavailable: password authentication failed"


def test_a_crash_loop_names_the_programs_last_error_in_status_journal_and_events(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.write(sandbox.program("crasher", mode="crash"))
    journal = tmp_path / "journal"
    sandbox.start_logging_to(journal)
    row = wait_for(lambda: (r := sandbox.one("crasher"))["crash_looping"] and r, what="crash_looping")
    assert row["stderr_tail"][-1] == PLACEHOLDER
    assert "crasher: starting" not in row["stderr_tail"]  # stderr only: the error, not the chatter
    assert row["ready"] is False
    wait_for(lambda: "crasher: crash-looping" in journal.read_text(), what="the journal line")
    assert (
        f"crasher: crash-looping (5 fast failures; exited with code 1): {PLACEHOLDER}" in journal.read_text()
    )
    assert f"crasher: exited with code 1: {PLACEHOLDER}; restarting in" in journal.read_text()
    (loop,) = [e for e in sandbox.client.events() if e["kind"] == "crash-loop"]
    assert loop["stderr_tail"][-1] == PLACEHOLDER
    assert PLACEHOLDER in loop["message"]
    backoff = [e for e in sandbox.client.events() if e["kind"] == "state" and e["new"] == "backoff"]
    assert backoff[-1]["stderr_tail"][-1] == PLACEHOLDER


def test_a_program_that_says_it_cannot_work_is_shown_not_ready_until_it_can(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.write(sandbox.program("worker", mode="unready"))
    journal = tmp_path / "journal"
    sandbox.start_logging_to(journal)
    row = wait_for(lambda: (r := sandbox.one("worker"))["status"] and r, what="the program's status")
    assert row["state"] == "running"  # it runs (and retries by itself): not restarted
    assert row["ready"] is False
    assert row["status"] == DB_DOWN
    wait_for(lambda: f"worker: {DB_DOWN}" in journal.read_text(), what="the journal line")
    (event,) = [e for e in sandbox.client.events() if e["kind"] == "ready"]
    assert (event["ready"], event["message"]) == (False, DB_DOWN)

    (sandbox.markers / "worker.recover").touch()
    row = wait_for(lambda: (r := sandbox.one("worker"))["ready"] and r, what="ready again")
    assert (row["status"], row["restarts"]) == ("ready", 0)
    wait_for(lambda: "worker: ready" in journal.read_text(), what="the journal line")
    assert [e["ready"] for e in sandbox.client.events() if e["kind"] == "ready"] == [False, True]
