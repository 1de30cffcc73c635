"""The doctor's checks of the services beside the database: Redis (where the queue or the rate limits use
it), the queue's depth, and the supervisor's programs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from appliance.client.supervisor import ProgramStatus, SupervisorClient, SupervisorUnavailable
from appliance.config import Settings
from appliance.doctor.finding import Context, Verdict, fail, ok, skip, warn

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: More tasks than this waiting in the queue is a warning: the workers are down or do not keep up.
QUEUE_WARN_DEPTH = 1000
START_HINT = "start it: `appliance up`, or `systemctl start forge-appliance` where systemd runs it"


def redis_uses(settings: Settings) -> dict[str, list[str]]:
    """Each Redis URL the appliance uses, and for what."""
    uses: dict[str, list[str]] = {}
    if settings.queue_url.startswith(REDIS_SCHEMES):
        uses.setdefault(settings.queue_url, []).append("queue")
    limits = settings.rate_limit_url
    if settings.rate_limits.enabled and limits is not None:
        uses.setdefault(limits, []).append("rate limits")
    return uses


def redis_where(url: str) -> str:
    """A Redis URL for people: host, port and database (or the socket), never the password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"


def redis_server(ctx: Context) -> Verdict:
    """Every Redis the queue and the rate limits use answers."""
    import redis

    uses = redis_uses(ctx.settings)
    if not uses:
        return skip("no Redis in use: the queue is SQLite and the rate limits are in-process")
    answered, down = [], []
    for url, what in uses.items():
        client = redis.Redis.from_url(
            url, socket_connect_timeout=ctx.io_timeout, socket_timeout=ctx.io_timeout, retry_on_timeout=False
        )
        try:
            version = client.info("server").get("redis_version", "?")
            answered.append(f"Redis {version} at {redis_where(url)} ({', '.join(what)})")
        except redis.RedisError as exc:
            down.append(f"{redis_where(url)} ({', '.join(what)}): {exc}")
        finally:
            client.close()
    if down:
        return fail(
            f"no answer from {'; '.join(down)}",
            "check that redis-server runs, and queue.url and rate_limits.url (host, port, password)",
        )
    return ok(f"{'; '.join(answered)} answers")


def queue(ctx: Context) -> Verdict:
    """How many tasks wait in Huey's queue (a backlog means the workers are down or cannot keep up)."""
    from appliance.workers.queue import build_storage

    settings = ctx.settings
    url = settings.queue_url
    path = Path(url.removeprefix("sqlite:///"))
    if url.startswith("sqlite:///") and not path.is_file():
        return warn(f"the queue's database {path} does not exist yet: no worker has started", START_HINT)
    storage = build_storage(settings)
    try:
        depth, later = int(storage.queue_size()), int(storage.schedule_size())
    finally:
        storage.close()
    said = f"{depth} task(s) waiting in queue {settings.queue.name!r}, {later} scheduled for later"
    if depth > QUEUE_WARN_DEPTH:
        return warn(
            f"{said} (more than {QUEUE_WARN_DEPTH})",
            "check that the workers run (`appliance status`, `appliance logs worker`); more worker "
            "processes or queue.workers threads drain it faster",
        )
    return ok(said)


def supervisor(ctx: Context) -> Verdict:
    """The supervisor answers and every program instance runs, ready, without crash-looping."""
    socket_path = ctx.settings.run_dir / "control.sock"
    try:
        status = SupervisorClient(socket_path, timeout=ctx.io_timeout).status()
    except SupervisorUnavailable:
        return fail(
            f"the supervisor does not answer on {socket_path}: the appliance is not running", START_HINT
        )
    programs = status["programs"]
    if not programs:
        return warn("the supervisor runs no program", "check the services file (supervisor.services_file)")
    counts = Counter(program["name"] for program in programs)
    failing, doubtful, running = [], [], []
    for program in programs:
        label = (
            program["name"] if counts[program["name"]] == 1 else f"{program['name']}:{program['instance']}"
        )
        trouble, worry = _judge(program)
        if trouble:
            failing.append(f"{label} {trouble}")
        elif worry:
            doubtful.append(f"{label} {worry}")
        else:
            running.append(label)
    if failing:
        return fail(
            f"{'; '.join(failing + doubtful)}",
            "see why in `appliance status` and `appliance logs NAME`; `appliance start NAME` starts a "
            "stopped one, a crash-looping one is retried by itself once its cause is fixed",
        )
    if doubtful:
        return warn(
            f"{'; '.join(doubtful)}; running: {', '.join(running) or 'none'}",
            "`appliance events` shows each exit and its last error lines",
        )
    return ok(f"{len(running)} program instance(s) running and ready: {', '.join(running)}")


def _judge(program: ProgramStatus) -> tuple[str, str]:
    """What fails in one instance, and what is only worth a warning ("" each when nothing)."""
    state, reason = program["state"], program.get("reason") or ""
    because = f" ({reason})" if reason else ""
    if program["crash_looping"]:
        tail = " | ".join(program.get("stderr_tail") or [])
        return f"is crash-looping{because}" + (f": {tail}" if tail else ""), ""
    if state in ("backoff", "exited", "fatal", "stopped", "stopping"):
        return f"is {state}{because}", ""
    if state == "starting":
        return "", f"is starting{because}"
    if program.get("ready") is False:
        return f"is not ready: {program.get('status') or 'it says it cannot work'}", ""
    if program["restarts"]:
        return "", f"restarted {program['restarts']} time(s) after exiting"
    return "", ""
