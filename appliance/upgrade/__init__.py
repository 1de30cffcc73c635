"""Upgrades in place: the new version into a venv beside the one in use, checked, backed up, migrated, then
switched to with a rolling restart; any failure switches back and restores what changed.

The appliance runs through one stable venv path (`<install>/.venv`, the path its programs and its command
are started from). From the first upgrade on, that path is a symbolic link to one of the venvs kept in
`<install>/.venvs/<version>-<time>/`, and an upgrade moves the link (layout). The new version is installed
first, aside, by whichever version runs `appliance upgrade` (stage, standard library only, so that a
checkout's install.sh can run it with the installed venv's Python); the rest is the new version's own code,
run from its new venv (preflight, steps, rollback), because only it knows its migrations, its settings and
the versions it must not skip (stops).
"""
