"""The command line, `appliance ...`: the composition root. It builds the Settings once and hands them down.

main holds the `appliance` Typer app, its global options and the top-level commands (init, migrate, api,
worker, config, admin create, supervise, up, down, status), and registers one module per command group:
programs (`start|stop|restart|logs|...` through the supervisor), tenants, users, admins, audit, jobs, console.
shared holds what the groups spell the same way (options, the database of one command, tables and times);
processes/ how the command line runs the appliance's processes (serve, supervise, the up/down lifecycle).
A command module imports shared and processes, never a sibling; nothing outside the command line (and
`python -m appliance`) imports this package (import-linter holds both).
"""
