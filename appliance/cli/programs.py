"""`appliance start|stop|restart|reload NAME...`, `appliance logs` and `appliance events`: the supervisor's
control socket from the command line. Every verb goes through appliance.client, as the console does."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from appliance.client.supervisor import SupervisorClient, SupervisorError, SupervisorUnavailable
from appliance.errors import NotFound, OperationFailed

NamesArg = Annotated[list[str], typer.Argument(help="Program names (see `appliance status`), or `all`.")]


#: A rolling reload lasts as long as its processes take to start and drain (and a second one waits for the
#: first): the answer comes when it is over, so the client waits much longer than for other requests.
RELOAD_TIMEOUT_S = 3600.0


def _client(ctx: typer.Context, timeout: float = 120.0) -> SupervisorClient:
    from appliance.cli.processes.supervise import control_socket

    return SupervisorClient(control_socket(ctx.obj.settings), timeout=timeout)


def _act(ctx: typer.Context, verb: str, names: list[str]) -> None:
    client = _client(ctx)
    action: Callable[[list[str]], list[str]] = getattr(client, verb)
    try:
        done = action(names)
    except SupervisorUnavailable as exc:
        raise OperationFailed(f"{exc}; start the appliance with `appliance up`") from exc
    except SupervisorError as exc:
        raise NotFound(str(exc)) from exc
    past = {"start": "started", "stop": "stopped", "restart": "restarted", "reload": "reloaded"}[verb]
    typer.echo(f"{past}: {', '.join(done)}")


def start(ctx: typer.Context, names: NamesArg) -> None:
    """Start programs (and what they depend on)."""
    _act(ctx, "start", names)


def stop(ctx: typer.Context, names: NamesArg) -> None:
    """Stop programs gracefully; returns once their processes are gone."""
    _act(ctx, "stop", names)


def restart(ctx: typer.Context, names: NamesArg) -> None:
    """Stop and start programs again (a short outage; prefer `reload` for the API)."""
    _act(ctx, "restart", names)


def reload(ctx: typer.Context, names: NamesArg) -> None:
    """Replace programs' processes one at a time, each new one ready before an old one stops: no request
    to the API fails. Asked while a reload of the same programs runs, it waits for that one to finish and
    then replaces every process again (or joins a reload already waiting its turn); it says which."""
    client = _client(ctx, timeout=RELOAD_TIMEOUT_S)
    try:
        result = client.reload_detail(names)
    except SupervisorUnavailable as exc:
        raise OperationFailed(f"{exc}; start the appliance with `appliance up`") from exc
    except SupervisorError as exc:
        raise NotFound(str(exc)) from exc
    done = ", ".join(result["programs"])
    if result["joined"]:
        before = "waited for the one under way" if result["waited_for"] else "had not begun"
        typer.echo(f"reloaded: {done} (joined a reload of {done} asked just before, which {before})")
    elif result["waited_for"]:
        under_way = ", ".join(result["waited_for"])
        typer.echo(
            f"reloaded: {done} (a reload of {under_way} was under way: waited for it to finish, "
            "then replaced every process again)"
        )
    else:
        typer.echo(f"reloaded: {done}")


def logs(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="A program name, or `supervisor` for the supervisor's own log.")
    ],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    since: Annotated[
        str | None, typer.Option(help="Only lines after this: 10m, 2h, 1d, an ISO time, or Unix seconds.")
    ] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many of the last lines to show.")] = 100,
) -> None:
    """Print a program's log (stdout and stderr, timestamped), optionally following it."""
    from appliance.client.since import parse_since

    try:
        after = parse_since(since, time.time()) if since is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from exc
    client = _client(ctx)
    if follow:
        _stream(lambda: client.follow_logs(name, lines=lines, since=after), str)
        return
    for line in _guard(lambda: client.logs(name, lines=lines, since=after)):
        typer.echo(line)


def events(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until Ctrl-C.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print the supervisor's recent events: state changes, crash loops, health-check failures, reloads."""
    client = _client(ctx)

    def render(event: dict[str, Any]) -> str:
        return json.dumps(event) if as_json else event_line(event)

    if follow:
        _stream(client.follow_events, render)
        return
    for event in _guard(client.events):
        typer.echo(render(event))


def event_line(event: dict[str, Any]) -> str:
    """One supervisor event as a line of text: time, kind, program[:instance], message, and the reason when
    the event has one (why a process stopped, failed a check, or was restarted), as --json has it."""
    where = event.get("program") or "supervisor"
    if event.get("instance") not in (None, 0):
        where = f"{where}:{event['instance']}"
    when = event.get("time")
    stamp = (
        dt.datetime.fromtimestamp(float(when), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        if isinstance(when, int | float)
        else str(when or "")
    )
    message = str(event.get("message", ""))
    reason = event.get("reason")
    if reason and str(reason) not in message:
        message = f"{message} ({reason})" if message else str(reason)
    return f"{stamp}  {event.get('kind', ''):<13} {where:<10} {message}"


def _guard(call: Callable[[], list[Any]]) -> list[Any]:
    try:
        return call()
    except SupervisorUnavailable as exc:
        raise OperationFailed(f"{exc}; start the appliance with `appliance up`") from exc
    except SupervisorError as exc:
        raise NotFound(str(exc)) from exc


def _stream(open_stream: Callable[[], Iterator[Any]], render: Callable[[Any], str]) -> None:
    try:
        for item in open_stream():
            typer.echo(render(item))
            sys.stdout.flush()
    except SupervisorUnavailable as exc:
        raise OperationFailed(f"{exc}; start the appliance with `appliance up`") from exc
    except SupervisorError as exc:
        raise NotFound(str(exc)) from exc
    except KeyboardInterrupt:
        return


def register(app: typer.Typer) -> None:
    for command in (start, stop, restart, reload, logs, events):
        app.command()(command)
