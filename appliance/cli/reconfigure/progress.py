"""What `appliance reconfigure` shows while Ansible runs: ansible-runner's events turned into one line per
task and per host result, a live status line on a terminal, and the summary at the end.

Standard library only, and fed plain event dicts, so the rendering is tested without running Ansible.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

#: Lines of one task's diff shown in check mode; the rest is counted, not printed.
DIFF_LINES = 40
#: A message longer than this is cut (a module may return a whole command's output as its message).
MESSAGE_CHARS = 400
#: The tasks whose message is for the admin (a playbook saying what it does differently here).
DEBUG_ACTIONS = ("ansible.builtin.debug", "debug")
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
COLORS = {"ok": "32", "changed": "33", "would change": "33", "skipped": "36", "failed": "31"}
COLORS |= {"unreachable": "31", "failed (ignored)": "35", "error": "31"}
# Ansible 2.19 prefixes every task error with these; the line we print says it already.
_NOISE = re.compile(r"^(Task failed: )?(Module failed: )?")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Display:
    """Permanent lines, and on a terminal one status line under them that a ticker keeps redrawing
    (a spinner, the running task, its elapsed time)."""

    def __init__(
        self, out: TextIO, *, tty: bool, color: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._out = out
        self._tty = tty
        self._color = color and tty
        self._clock = clock
        self._lock = threading.Lock()
        self._status: str | None = None
        self._since = clock()
        self._frames = itertools.cycle(SPINNER)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Display:
        if self._tty:
            self._ticker = threading.Thread(target=self._tick, name="reconfigure-status", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._clear()
            self._out.flush()

    def paint(self, word: str) -> str:
        """``word`` in its status colour on a terminal (NO_COLOR respected by the caller)."""
        code = COLORS.get(word)
        return f"\x1b[{code}m{word}\x1b[0m" if self._color and code else word

    def line(self, text: str) -> None:
        with self._lock:
            self._clear()
            self._out.write(text + "\n")
            self._draw()
            self._out.flush()

    def status(self, text: str | None) -> None:
        """The status line's text (the running task); None hides it."""
        with self._lock:
            self._status = text
            self._since = self._clock()
            self._clear()
            self._draw()
            self._out.flush()

    def _tick(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                self._clear()
                self._draw()
                self._out.flush()

    def _clear(self) -> None:
        if self._tty:
            self._out.write("\r\x1b[2K")

    def _draw(self) -> None:
        if self._tty and self._status is not None:
            elapsed = int(self._clock() - self._since)
            self._out.write(f"{next(self._frames)} {self._status}  {elapsed // 60}:{elapsed % 60:02d}")


@dataclass(frozen=True)
class Failure:
    """A task that failed on a host, or a host that could not be reached."""

    host: str
    task: str
    message: str
    unreachable: bool = False

    def line(self) -> str:
        if self.unreachable:
            return f'{self.host}: unreachable at task "{self.task}": {self.message}'
        return f'{self.host}: task "{self.task}" failed: {self.message}'


@dataclass
class Progress:
    """Consumes ansible-runner's events in order (its ``event_handler``) and tells the display."""

    display: Display
    check: bool = False
    tasks: int = 0
    #: host -> {"ok": n, "changed": n, "failed": n, "unreachable": n, "skipped": n}, from Ansible's recap
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    changed: list[tuple[str, str]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    #: Ansible's own errors outside any task (a playbook that does not parse), one line each
    errors: list[str] = field(default_factory=list)
    _task: str = ""
    #: check mode's diff of the running task, printed under its result line
    _diff_lines: list[str] = field(default_factory=list)

    def handle(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("event", "")
        data: Mapping[str, Any] = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self.display.line(f"play: {data.get('play') or data.get('play_pattern', '')}")
        elif kind in ("playbook_on_task_start", "playbook_on_handler_task_start"):
            self.tasks += 1
            self._task = task_name(data)
            word = "handler" if kind == "playbook_on_handler_task_start" else "task"
            self.display.line(f"{word}: {self._task}")
            self.display.status(self._task)
        elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"):
            self._result(kind, data)
        elif kind == "runner_on_file_diff" and self.check:
            self._diff(str(event.get("stdout", "")))
        elif kind == "playbook_on_stats":
            self._recap(data)
        elif kind == "verbose":
            self._verbose_line(str(event.get("stdout", "")))
        return True

    def _result(self, kind: str, data: Mapping[str, Any]) -> None:
        host = str(data.get("host", "?"))
        task = task_name(data) or self._task
        res: Mapping[str, Any] = data.get("res") or {}
        diff, self._diff_lines = self._diff_lines, []
        if kind == "runner_on_ok":
            word = ("would change" if self.check else "changed") if res.get("changed") else "ok"
            if res.get("changed"):
                self.changed.append((host, task))
            self.display.line(f"  {self.display.paint(word)}: {host}")
            if data.get("task_action") in DEBUG_ACTIONS and res.get("msg"):
                self.display.line(
                    "    " + " ".join(str(res["msg"]).split())
                )  # the playbook's word to the admin
            for line in diff:
                self.display.line(line)
        elif kind == "runner_on_skipped":
            self.display.line(f"  {self.display.paint('skipped')}: {host}")
        elif kind == "runner_on_unreachable":
            failure = Failure(host, task, result_message(res), unreachable=True)
            self.failures.append(failure)
            self.display.line(f"  {self.display.paint('unreachable')}: {host}: {failure.message}")
        elif data.get("ignore_errors"):
            self.display.line(f"  {self.display.paint('failed (ignored)')}: {host}: {result_message(res)}")
        else:
            failure = Failure(host, task, result_message(res))
            self.failures.append(failure)
            self.display.line(f"  {self.display.paint('failed')}: {host}: {failure.message}")

    def _diff(self, text: str) -> None:
        lines = [_ANSI.sub("", line) for line in text.replace("\r", "").splitlines()]
        self._diff_lines = [f"    {line}" for line in lines[:DIFF_LINES]]
        if len(lines) > DIFF_LINES:
            self._diff_lines.append(f"    ... {len(lines) - DIFF_LINES} more line(s) of diff")

    def _recap(self, data: Mapping[str, Any]) -> None:
        self.display.status(None)
        columns = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable"}
        columns |= {"skipped": "skipped"}
        hosts = sorted({h for key in (*columns, "processed") for h in (data.get(key) or {})})
        self.stats = {
            host: {name: int((data.get(key) or {}).get(host, 0)) for key, name in columns.items()}
            for host in hosts
        }

    def _verbose_line(self, text: str) -> None:
        text = _ANSI.sub("", text).strip()
        if text.startswith("[WARNING]:") or text.startswith("[DEPRECATION WARNING]:"):
            self.display.line(f"warning: {text.split(':', 1)[1].strip()}")
        elif text.startswith(("[ERROR]:", "ERROR!", "ERROR:")):  # ERROR: before Ansible has started
            message = text[6:].strip() if text.startswith("ERROR!") else text.split(":", 1)[1].strip()
            self.errors.append(message)
        elif text.startswith("Origin: ") and self.errors:
            self.errors[-1] += f" ({text[8:]})"

    def summary(self) -> list[str]:
        """The recap table and the tasks that changed something (or would, in check mode)."""
        if not self.stats:
            return []
        names = ["ok", "changed", "failed", "unreachable", "skipped"]
        header = ["host", *names]
        rows = [[host, *(str(counts[n]) for n in names)] for host, counts in self.stats.items()]
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        lines = ["", "summary"]
        for row in (header, *rows):
            cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
            lines.append("  " + "  ".join(cells))
        verb = "would change" if self.check else "changed"
        if self.changed:
            lines.append(f"{len(self.changed)} task(s) {verb} something:")
            lines += [f"  {host}: {task}" for host, task in self.changed]
        else:
            lines.append(f"no task {verb} anything")
        return lines


def task_name(data: Mapping[str, Any]) -> str:
    """``role : task`` as Ansible prints it."""
    task = str(data.get("task") or data.get("task_action") or "")
    role = data.get("role")
    return f"{role} : {task}" if role else task


def result_message(res: Mapping[str, Any]) -> str:
    """The message Ansible gave, on one line: for a command that failed, its exit code and the end of
    what it wrote to stderr; for a loop, the first item that failed and its own message."""
    failed = [r for r in res.get("results") or [] if isinstance(r, Mapping) and r.get("failed")]
    if failed:
        item = failed[0].get("_ansible_item_label", failed[0].get("item"))
        message = f"item {item}: {result_message(failed[0])}"
        if len(failed) > 1:
            message += f" (and {len(failed) - 1} more item(s))"
        return message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 3] + "..."
    message = _NOISE.sub("", str(res.get("msg") or "")).strip() or "failed"
    if res.get("rc") not in (None, 0):
        message += f" (rc {res['rc']})"
    stderr = str(res.get("stderr") or res.get("module_stderr") or "").strip()
    if stderr:
        message += f": {stderr.splitlines()[-1].strip()}"
    message = " ".join(message.split())
    return message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 3] + "..."
