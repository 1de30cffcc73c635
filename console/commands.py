"""The console's command table: every action, its key, where it applies and whether it changes anything.

The footer's keys, the `?` help, and the command palette are all built from this one table, and read-only
mode is enforced in one place (`ConsoleApp.allows`) by its `writes` flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

GLOBAL = "*"
SCREENS = (
    "dashboard",
    "tenants",
    "services",
    "logs",
    "health",
    "audit",
    "backups",
    "jobs",
    "apps",
    "webhooks",
    "operators",
)


@dataclass(frozen=True)
class Command:
    """One action: `action` is run on the screen (or on the app, for global ones)."""

    action: str
    title: str
    key: str
    screen: str = GLOBAL
    writes: bool = False
    help: str = ""
    footer: bool = True
    key_label: str | None = None


COMMANDS: tuple[Command, ...] = (
    Command("app.show('dashboard')", "Dashboard", "1", help="Services, API health, rates and queue depth"),
    Command("app.show('tenants')", "Tenants", "2", help="Every tenant: plan, status, users, usage"),
    Command("app.show('services')", "Services", "3", help="Supervised programs: start, stop, reload"),
    Command("app.show('logs')", "Logs", "4", help="Live tail of any program's log"),
    Command("app.show('health')", "Health", "5", help="Every health check and its recent history"),
    Command("app.show('audit')", "Audit", "6", help="The platform's audit trail, with filters"),
    Command("app.show('backups')", "Backups", "7", help="Backup archives: take, verify, restore"),
    Command(
        "app.show('jobs')",
        "Jobs",
        "8",
        help="Every tenant's jobs: retry dead ones, cancel queued ones",
        footer=False,
    ),
    Command(
        "app.show('apps')",
        "Apps",
        "9",
        help="Monitored applications: up, down, uptime, incidents",
        footer=False,
    ),
    Command(
        "app.show('webhooks')", "Webhooks", "0", help="Webhook endpoints, deliveries, replays", footer=False
    ),
    Command(
        "app.show('operators')",
        "Operators",
        "o",
        help="Operator accounts: create, disable, reset",
        footer=False,
    ),
    Command(
        "app.command_palette", "Commands", "ctrl+p", help="Find any action, tenant or service", key_label="^p"
    ),
    Command("app.keys", "Keys", "question_mark", help="Every key of every view", key_label="?"),
    Command("app.sign_in", "Sign in", "ctrl+l", help="Sign in to the API (or as someone else)", footer=False),
    Command("app.sign_out", "Sign out", "ctrl+o", help="End the session and forget its token", footer=False),
    Command("app.quit", "Quit", "q", help="Leave the console"),
    # tenants
    Command("filter", "Filter", "slash", "tenants", help="Filter the rows as you type", key_label="/"),
    Command("create", "New", "n", "tenants", writes=True, help="Create a tenant"),
    Command("plan", "Plan", "p", "tenants", writes=True, help="Change the selected tenant's plan"),
    Command("suspend", "Suspend", "s", "tenants", writes=True, help="Stop all access to the selected tenant"),
    Command("resume", "Resume", "u", "tenants", writes=True, help="Lift a suspension or undo a deletion"),
    Command(
        "delete", "Delete", "D", "tenants", writes=True, help="Delete the selected tenant (type its slug)"
    ),
    Command("reload_rows", "Refresh", "r", "tenants", help="Load every tenant again"),
    # services
    Command("filter", "Filter", "slash", "services", help="Filter the rows as you type", key_label="/"),
    Command("start", "Start", "s", "services", writes=True, help="Start the selected program"),
    Command("stop", "Stop", "x", "services", writes=True, help="Stop the selected program"),
    Command("restart", "Restart", "r", "services", writes=True, help="Restart the selected program"),
    Command("reload", "Reload", "l", "services", writes=True, help="Roll new processes in, one at a time"),
    Command("logs", "Logs", "enter", "services", help="Tail the selected program's log", key_label="⏎"),
    # logs
    Command("filter", "Filter", "slash", "logs", help="Show only lines containing a text", key_label="/"),
    Command("toggle_follow", "Follow/pause", "f", "logs", help="Pause or resume following new lines"),
    Command("toggle_raw", "Raw", "v", "logs", help="Show the lines as written (JSON) or readable"),
    Command("pick", "Program", "p", "logs", help="Choose the program whose log is shown"),
    Command("save", "Save", "w", "logs", help="Write the shown lines to a file"),
    Command("clear", "Clear", "c", "logs", help="Empty the buffer"),
    # health
    Command("refresh_now", "Check now", "r", "health", help="Run the health checks and the doctor now"),
    # audit
    Command("filter", "Filter", "slash", "audit", help="Filter the shown records as you type", key_label="/"),
    Command("query", "Query", "a", "audit", help="Ask the API for records by action, actor or time"),
    Command("reload_rows", "Refresh", "r", "audit", help="Load the newest records again"),
    # backups
    Command("create", "Back up now", "b", "backups", writes=True, help="Back up the whole appliance now"),
    Command(
        "verify",
        "Verify",
        "v",
        "backups",
        writes=True,
        help="Check the selected archive in a scratch database",
    ),
    Command(
        "restore",
        "Restore",
        "R",
        "backups",
        writes=True,
        help="Bring the whole appliance back to the selected archive (type its name)",
    ),
    Command("reload_rows", "Refresh", "r", "backups", help="List the archives again"),
    # dashboard
    Command("dead_jobs", "Dead jobs", "d", "dashboard", help="Show the jobs that failed for good"),
    # jobs
    Command("filter", "Filter", "slash", "jobs", help="Filter the rows as you type", key_label="/"),
    Command("query", "Query", "a", "jobs", help="Ask the API for jobs by state, kind or tenant"),
    Command("retry", "Retry", "t", "jobs", writes=True, help="Run the selected dead job again"),
    Command("cancel", "Cancel", "x", "jobs", writes=True, help="Cancel the selected queued job"),
    Command("reload_rows", "Refresh", "r", "jobs", help="Load the jobs again"),
    # apps
    Command("filter", "Filter", "slash", "apps", help="Filter the rows as you type", key_label="/"),
    Command("reload_rows", "Refresh", "r", "apps", help="Load the apps again"),
    # webhooks
    Command("filter", "Filter", "slash", "webhooks", help="Filter the endpoints as you type", key_label="/"),
    Command(
        "switch_pane", "Endpoints/log", "tab", "webhooks", help="Move between the endpoints and their log"
    ),
    Command(
        "replay", "Replay", "p", "webhooks", writes=True, help="Send the selected delivery's message again"
    ),
    Command(
        "replay_failed",
        "Replay failed",
        "P",
        "webhooks",
        writes=True,
        help="Send again everything that failed since a time",
    ),
    Command("enable", "Re-enable", "e", "webhooks", writes=True, help="Turn the selected endpoint on again"),
    Command("reload_rows", "Refresh", "r", "webhooks", help="Load the endpoints again"),
    # operators
    Command("filter", "Filter", "slash", "operators", help="Filter the rows as you type", key_label="/"),
    Command("create", "New", "n", "operators", writes=True, help="Create an operator (one-time password)"),
    Command(
        "disable", "Disable", "x", "operators", writes=True, help="Stop the selected operator signing in"
    ),
    Command("enable", "Enable", "e", "operators", writes=True, help="Let a disabled operator sign in again"),
    Command(
        "reset_password",
        "Reset password",
        "p",
        "operators",
        writes=True,
        help="Give the selected operator a new one-time password",
    ),
    Command(
        "toggle_read_only",
        "Read-only",
        "t",
        "operators",
        writes=True,
        help="Make the selected operator read-only, or full again",
    ),
    Command(
        "remove",
        "Remove",
        "D",
        "operators",
        writes=True,
        help="Remove the selected operator (type the address)",
    ),
    Command("reload_rows", "Refresh", "r", "operators", help="Load the operators again"),
)


def bindings(screen: str) -> list[Binding]:
    """The Textual bindings of one screen (or of the app, for GLOBAL)."""
    return [
        Binding(c.key, c.action, c.title, show=c.footer, key_display=c.key_label)
        for c in COMMANDS
        if c.screen == screen
    ]


def writes(screen: str, action: str) -> bool:
    """Whether `action` (a name without parameters) on `screen` changes anything."""
    return any(c.writes for c in COMMANDS if c.screen == screen and c.action.split("(", 1)[0] == action)
