#!/bin/sh
# PostgreSQL's start in the container install: run as root, serves as the postgres user.
#
# First start (an empty volume): initdb (UTF-8, C.UTF-8, data checksums; peer on the socket, SCRAM over
# TCP). Every start, before the server listens on TCP: the schema owner FORGE_DB_OWNER owns the database
# FORGE_DB_NAME, and the appliance's role FORGE_DB_APP_ROLE has LOGIN and neither BYPASSRLS nor SUPERUSER
# (row-level security keeps tenants apart: ARCHITECTURE.md), each with the password of its secret file
# (FORGE_DB_OWNER_PASSWORD_FILE, FORGE_DB_APP_PASSWORD_FILE): the files are the truth, a changed file is a
# changed password at the next start. `appliance migrate` (as the owner) creates the schema and grants the
# app role what it needs.
set -eu

bin=/usr/lib/postgresql/15/bin
data=${PGDATA:?}
database=${FORGE_DB_NAME:?FORGE_DB_NAME is not set}
owner=${FORGE_DB_OWNER:?FORGE_DB_OWNER is not set}
app=${FORGE_DB_APP_ROLE:?FORGE_DB_APP_ROLE is not set}

read_secret() {  # name of the variable holding the file's path
    eval "file=\${$1:-}"
    if [ -z "$file" ] || [ ! -s "$file" ]; then
        echo "forge-postgresql: $1 names no readable, non-empty password file (${file:-unset})" >&2
        exit 1
    fi
    cat "$file"
}
owner_password=$(read_secret FORGE_DB_OWNER_PASSWORD_FILE)
app_password=$(read_secret FORGE_DB_APP_PASSWORD_FILE)

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

install -d -o postgres -g postgres -m 0700 "$data"
install -d -o postgres -g postgres -m 2775 /run/postgresql

if [ ! -s "$data/PG_VERSION" ]; then
    as_postgres "$bin/initdb" --pgdata="$data" --encoding=UTF8 --locale=C.UTF-8 --data-checksums \
        --auth-local=peer --auth-host=scram-sha-256 --username=postgres >/dev/null
    cat >> "$data/postgresql.conf" <<CONF

# Container install: listen on the compose network; only the appliance's roles may connect over TCP.
listen_addresses = '*'
CONF
    cat > "$data/pg_hba.conf" <<HBA
# TYPE  DATABASE  USER      ADDRESS  METHOD
local   all       postgres           peer
host    all       all       all      scram-sha-256
HBA
    echo "forge-postgresql: created the cluster in $data"
fi

# The roles and the database, on the socket only (no TCP yet: the health check is not ready until done).
as_postgres "$bin/pg_ctl" --pgdata="$data" --silent --wait -o "-c listen_addresses=''" start
# The passwords reach psql through its environment, not its command line (which `ps` shows).
export FORGE_OWNER_PASSWORD="$owner_password" FORGE_APP_PASSWORD="$app_password"
as_postgres "$bin/psql" --quiet --no-psqlrc --set=ON_ERROR_STOP=1 --dbname=postgres \
    --set=owner="$owner" --set=app="$app" --set=database="$database" <<'SQL'
\getenv owner_password FORGE_OWNER_PASSWORD
\getenv app_password FORGE_APP_PASSWORD
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') AS create_owner \gset
\if :create_owner
CREATE ROLE :"owner" LOGIN;
\endif
ALTER ROLE :"owner" LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :'owner_password';
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') AS create_app \gset
\if :create_app
CREATE ROLE :"app" LOGIN;
\endif
ALTER ROLE :"app" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') AS create_database \gset
\if :create_database
CREATE DATABASE :"database" OWNER :"owner";
\endif
ALTER DATABASE :"database" OWNER TO :"owner";
SQL
unset FORGE_OWNER_PASSWORD FORGE_APP_PASSWORD owner_password app_password
as_postgres "$bin/pg_ctl" --pgdata="$data" --silent --wait --mode=fast stop

exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$data"
