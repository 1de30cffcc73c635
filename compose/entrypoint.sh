#!/bin/sh
# The appliance container's start (tini is PID 1 and runs this; the supervisor ends up as tini's child).
#
# 1. The database passwords, read from the secret files named by FORGE_DB_OWNER_PASSWORD_FILE and
#    FORGE_DB_APP_PASSWORD_FILE, go into a pgpass file (PGPASSFILE, owner-only) for the roles FORGE_DB_OWNER
#    and FORGE_DB_APP_ROLE: libpq reads them from there, so the settings file's database URLs carry no
#    password and no password is in any process's environment.
# 2. For `appliance supervise` (the default command): `appliance init` (the data directory) and
#    `appliance migrate` (as database.migrations_url's role), then the supervisor in the foreground, in
#    place of this shell. Any other command (`docker-compose run appliance appliance status`) runs as given.
set -eu

write_pgpass() {
    pgpass=${PGPASSFILE:?PGPASSFILE is not set}
    umask 077
    : > "$pgpass.new"
    for pair in "${FORGE_DB_OWNER:-}=${FORGE_DB_OWNER_PASSWORD_FILE:-}" \
                "${FORGE_DB_APP_ROLE:-}=${FORGE_DB_APP_PASSWORD_FILE:-}"; do
        role=${pair%%=*}
        file=${pair#*=}
        [ -n "$role" ] && [ -n "$file" ] || continue
        if [ ! -r "$file" ]; then
            echo "entrypoint: the password file $file of the database role $role is missing or not readable" \
                 "by uid $(id -u) (make it with compose/make-secrets.sh)" >&2
            exit 1
        fi
        password=$(cat "$file")
        # pgpass escapes ':' and '\' with a backslash.
        escaped=$(printf '%s' "$password" | sed -e 's/\\/\\\\/g' -e 's/:/\\:/g')
        printf '*:*:*:%s:%s\n' "$role" "$escaped" >> "$pgpass.new"
    done
    mv "$pgpass.new" "$pgpass"
}

write_pgpass
if [ "$#" -ge 2 ] && [ "$1" = appliance ] && [ "$2" = supervise ]; then
    appliance init
    appliance migrate
fi
exec "$@"
