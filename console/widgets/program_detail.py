"""The detail of one supervised program as text: its spec as the supervisor runs it (from `spec(name)`) and
its recent exits, newest first. Pure formatting: no Textual, no I/O."""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from typing import Any

from rich.text import Text

from console import format as fmt

EXITS_SHOWN = 8  # the supervisor keeps 50; the pane has room for a few, the newest


def check(probe: dict[str, Any] | None) -> str:
    """A ready or health probe in one line: 'http http://…/live · every 10s · 3 failures'."""
    if not probe:
        return "-"
    kind = str(probe.get("kind", "?"))
    if kind == "http":
        target = str(probe.get("url", ""))
    elif kind == "tcp":
        target = f"{probe.get('host')}:{probe.get('port')}"
    elif kind == "command":
        command = probe.get("command") or []
        target = shlex.join(map(str, command)) if isinstance(command, list) else str(command)
    else:
        target = ""
    parts = [f"{kind} {target}".strip()]
    if probe.get("interval") is not None:
        parts.append(f"every {probe['interval']:g}s")
    if probe.get("timeout") is not None:
        parts.append(f"timeout {probe['timeout']:g}s")
    if probe.get("failures") is not None:
        parts.append(f"{probe['failures']} failures")
    return " · ".join(parts)


def command_line(spec: dict[str, Any]) -> str:
    command = spec.get("command") or []
    return shlex.join(map(str, command)) if isinstance(command, list) else str(command)


def container_rows(container: dict[str, Any]) -> list[tuple[str, str]]:
    """A container program's image and how the engine wires it to the host."""
    entrypoint = container.get("entrypoint")
    return [
        ("image", str(container.get("image", "?"))),
        ("entrypoint", "the image's" if entrypoint is None else shlex.join(map(str, entrypoint))),
        ("ports", ", ".join(map(str, container.get("ports") or [])) or "-"),
        ("volumes", ", ".join(map(str, container.get("volumes") or [])) or "-"),
        ("network", str(container.get("network") or "the engine's default")),
        ("engine", str(container.get("engine", "?"))),
    ]


def spec_text(spec: dict[str, Any]) -> Text:
    """The fields an operator asks about first, one per line (a container's image and wiring too)."""
    limit = spec.get("memory_limit")
    depends = spec.get("depends_on") or []
    stop = f"{spec.get('stop_signal', '?')}, SIGKILL after {spec.get('stop_timeout', '?')}s"
    container = spec.get("container")
    command = command_line(spec)
    if container:
        command = command or "the image's"
    rows = (
        *(container_rows(container) if container else ()),
        ("command", command),
        ("instances", str(spec.get("instances", "-"))),
        ("depends on", ", ".join(map(str, depends)) or "-"),
        ("restart", str(spec.get("restart", "-"))),
        ("ready", check(spec.get("ready"))),
        ("health", check(spec.get("health"))),
        ("memory", f"{fmt.size(limit)} limit" if limit else "no limit"),
        ("listen", str(spec.get("listen") or "-")),
        ("stop", stop),
    )
    text = Text()
    for title, value in rows:
        text.append(f"{title:<11}", style="bold")
        text.append(f"{value}\n")
    return text


def exits_text(exits: Sequence[dict[str, Any]]) -> Text:
    """The newest exits first: when, which instance, its exit status (a code, or minus the signal), how long
    it ran, the supervisor's reason, and whether it had asked for the exit (and why)."""
    text = Text()
    text.append(f"Recent exits ({len(exits)})", style="bold")
    if not exits:
        text.append("  none since the supervisor started", style="dim")
        return text
    text.append(f"\n{'when':<19} {'inst':>4} {'exit':>5} {'ran':>7}  reason", style="dim")
    for record in list(reversed(exits))[:EXITS_SHOWN]:
        moment = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record.get("time") or 0)))
        status = record.get("exit_status")
        code = "-" if status is None else str(status)
        text.append(f"\n{moment:<19} {record.get('instance', '-')!s:>4} {code:>5}")
        text.append(f" {fmt.duration(record.get('ran_seconds')):>7}  {record.get('reason') or '-'} · ")
        if record.get("expected"):
            text.append(f"expected ({record.get('stop_reason') or 'asked'})", style="green")
        else:
            text.append("unexpected", style="bold red")
    if len(exits) > EXITS_SHOWN:
        text.append(f"\n… and {len(exits) - EXITS_SHOWN} older", style="dim")
    return text


def detail_text(name: str, answer: dict[str, Any]) -> Text:
    """The whole pane: a title line, the spec, the exits."""
    spec = answer.get("spec") or {}
    text = Text(f"{name}", style="bold")
    text.append(f" · {spec.get('kind', 'process')}\n", style="dim")
    text.append_text(spec_text(spec))
    text.append_text(exits_text(answer.get("exits") or []))
    return text
