#!/usr/bin/env bash
# Install Forge Appliance from this checkout. Safe to run again: every step checks before it acts.
#
#   ./install.sh            install and start the appliance on embedded defaults (SQLite, one machine)
#   sudo ./install.sh --production
#                           install Python, the venv and Ansible, then converge this host with `appliance
#                           reconfigure` (PostgreSQL, Redis, the appliance under systemd, nginx with TLS)
#                           from the admin's choices in /etc/forge-appliance/reconfigure.yml
#   ./install.sh --test     install what the tests need (PostgreSQL and Redis servers included) and run
#                           the whole suite: lint, types, import contracts and tests
#
# Settings come from the usual places (see config/appliance.example.toml); APPLIANCE_* variables set when
# running this script apply to the install, e.g. APPLIANCE_API__PORT=9000 ./install.sh
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./install.sh [--test] [--admin-email EMAIL] [--no-start] [--bin-dir DIR] [-h|--help]
       sudo ./install.sh --production [--vars FILE] [-e KEY=VALUE ...] [--playbooks DIR]
                                      [--admin-email EMAIL]

  (no option)          install into .venv, initialise, migrate, create the first operator account,
                       start the appliance and wait until it is ready
  --production         as root: install Python, the venv and the production extra (Ansible), then converge
                       this host with `appliance reconfigure` and the bundled playbooks (PostgreSQL,
                       Redis, the appliance under systemd, nginx with TLS); create the first operator
                       account and print the HTTPS URL and its one-time password. Safe to run again.
                       Your choices (the playbooks' variables: ports, names, certificates...) go in
                       /etc/forge-appliance/reconfigure.yml; generated passwords are kept in
                       /etc/forge-appliance/credentials/ (root only). This checkout is recorded in
                       /etc/forge-appliance/source.yml: `sudo appliance reconfigure` converges again from it
  --vars FILE          with --production: the variables file to converge from instead of
                       /etc/forge-appliance/reconfigure.yml
  -e KEY=VALUE         with --production: a variable for the playbooks (repeatable; over the variables
                       file), e.g. -e nginx_server_name=forge.example.com
  --playbooks DIR      with --production: converge with the playbooks in DIR (its site.yml) instead
  --test               install the development and test needs (apt: PostgreSQL, Redis, tmux, Prometheus,
                       wrk, Docker, docker-compose, debootstrap, the SSH client; pip: the dev extra) and
                       run the whole test suite; exits with the suite's status
  --admin-email EMAIL  login of the first operator account (default: admin@appliance.local); created
                       only when no operator exists yet
  --no-start           install, initialise and migrate, but do not start the appliance
  --bin-dir DIR        where to link the `appliance` command (default: /usr/local/bin as root,
                       ~/.local/bin otherwise)

Run again after an update: it installs, migrates and restarts only when the checkout or the database
schema changed; with nothing to change it leaves a running appliance alone. A running appliance is
upgraded in place (`appliance upgrade`): no downtime, and rolled back on any failure.
EOF
}

MODE=install
ADMIN_EMAIL="${APPLIANCE_ADMIN_EMAIL:-admin@appliance.local}"
START=1
PLAYBOOKS=""
VARS_FILE=""
EXTRA_VARS=()
if [ "$(id -u)" -eq 0 ]; then BIN_DIR=/usr/local/bin; else BIN_DIR="$HOME/.local/bin"; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --test) MODE=test ;;
    --production) MODE=production ;;
    --playbooks) [ $# -ge 2 ] || { echo "install.sh: --playbooks needs a value" >&2; exit 2; }; PLAYBOOKS="$2"; shift ;;
    --vars) [ $# -ge 2 ] || { echo "install.sh: --vars needs a file" >&2; exit 2; }; VARS_FILE="$2"; shift ;;
    -e|--extra-var) [ $# -ge 2 ] || { echo "install.sh: $1 needs KEY=VALUE" >&2; exit 2; }; EXTRA_VARS+=(-e "$2"); shift ;;
    --admin-email) [ $# -ge 2 ] || { echo "install.sh: --admin-email needs a value" >&2; exit 2; }; ADMIN_EMAIL="$2"; shift ;;
    --no-start) START=0 ;;
    --bin-dir) [ $# -ge 2 ] || { echo "install.sh: --bin-dir needs a value" >&2; exit 2; }; BIN_DIR="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (see ./install.sh --help)" >&2; exit 2 ;;
  esac
  shift
done

CALLER_DIR="$(pwd)"   # where relative --vars and --playbooks paths start from
cd "$(dirname "$0")"
REPO="$(pwd)"
VENV="$REPO/.venv"

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else return 1
  fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "cannot install $* automatically (no apt-get); install them and run again"
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      || die "apt-get update failed (are you root, or is sudo available?); install $* by hand and run again"
    APT_UPDATED=1
  fi
  say "installing $* (apt)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

# --- Python >= 3.11 with venv ---------------------------------------------------------------------------
find_python() {
  local candidate
  for candidate in "${APPLIANCE_INSTALL_PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

# A production install bootstraps Debian's Python itself: a bare (minbase) Debian 12 has none.
if [ "$MODE" = production ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 \
   && ! find_python >/dev/null; then
  say "no Python 3.11 or newer on this host: installing Debian's"
  apt_install python3 python3-venv
fi
PYTHON="$(find_python)" || {
  found="$(command -v python3 >/dev/null 2>&1 && python3 -c 'import platform; print(platform.python_version())' || echo none)"
  die "Python 3.11 or newer is required (found: $found). On Debian 12: apt-get install python3 python3-venv"
}
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  say "$PYTHON has no venv module"
  ver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  apt_install "python${ver}-venv" 2>/dev/null || true
  "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
    || die "the Python venv module is missing: run 'apt-get install python${ver}-venv' as root, then run again"
fi

# --- the virtual environment and the package -----------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $PYTHON ($("$PYTHON" -c 'import platform; print(platform.python_version())'))"
  "$PYTHON" -m venv "$VENV" || die "could not create $VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --quiet)
upgrade_pip() { "${PIP[@]}" install --upgrade pip >/dev/null || die "could not upgrade pip in $VENV"; }

# What pip would install from this checkout, as one SHA-256: the same after a re-run with nothing new.
# Arguments: more top-level directories to include (the production install's playbooks).
source_fingerprint() {
  "$VENV/bin/python" - "$REPO" "$@" <<'PY'
import hashlib, pathlib, sys
root = pathlib.Path(sys.argv[1])
files = [root / "pyproject.toml"] + sorted(
    path for top in ("appliance", "console", *sys.argv[2:]) for path in (root / top).rglob("*")
    if path.is_file() and "__pycache__" not in path.parts
)
digest = hashlib.sha256()
for path in files:
    digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
print(digest.hexdigest())
PY
}

# Link the command into BIN_DIR, so that `appliance` works from any directory. Sets COMMAND to what the
# user should type: `appliance` when BIN_DIR is on the PATH, else the full path.
COMMAND=""
link_command() {
  local link="$BIN_DIR/appliance"
  COMMAND="$APPLIANCE"
  if [ -L "$link" ] && [ "$(readlink "$link")" = "$APPLIANCE" ]; then
    :
  elif [ -e "$link" ] && [ ! -L "$link" ]; then
    say "$link exists and is not a link to this install: left alone (run $APPLIANCE)"
    return 0
  elif mkdir -p "$BIN_DIR" 2>/dev/null && ln -sfn "$APPLIANCE" "$link" 2>/dev/null; then
    say "linked $link -> $APPLIANCE"
  else
    say "could not link $link (no write access to $BIN_DIR?): run $APPLIANCE, or choose --bin-dir"
    return 0
  fi
  case ":$PATH:" in
    *":$BIN_DIR:"*) COMMAND=appliance ;;
    *) say "$BIN_DIR is not on your PATH: add it (export PATH=\"$BIN_DIR:\$PATH\") or run $APPLIANCE" ;;
  esac
}

if [ "$MODE" = test ]; then
  upgrade_pip
  # Server packages for the throwaway PostgreSQL and Redis the tests start (never the system services).
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    # Install the binaries without creating and starting a default cluster on port 5432.
    as_root mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.d/forge-appliance.conf >/dev/null
    apt_install postgresql
  fi
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  command -v tmux >/dev/null 2>&1 || apt_install tmux
  command -v prometheus >/dev/null 2>&1 || apt_install prometheus
  command -v wrk >/dev/null 2>&1 || apt_install wrk
  # The container install's tests: their own Docker engine, compose v1 and a Debian base from debootstrap.
  command -v dockerd >/dev/null 2>&1 || apt_install docker.io
  command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  # The multi-host converge's test reaches its machines (containers) over SSH, as Ansible reaches servers.
  command -v ssh-keygen >/dev/null 2>&1 || apt_install openssh-client
  say "installing forge-appliance with the development extra (editable)"
  "${PIP[@]}" install -e "$REPO[dev]" || die "pip install failed"
  say "running the checks and the test suite"
  cd "$REPO"
  export PATH="$VENV/bin:$PATH"
  status=0
  ruff check . || status=1
  ruff format --check . || status=1
  mypy || status=1
  lint-imports || status=1
  python -m pytest -p no:cacheprovider || status=1   # extra pytest options: PYTEST_ADDOPTS
  [ "$status" -eq 0 ] && say "all checks and tests passed" || say "checks or tests FAILED"
  exit "$status"
fi

if [ "$MODE" = production ]; then
  [ "$(id -u)" -eq 0 ] || die "--production configures this host's services (PostgreSQL, Redis, systemd, \
nginx): run it as root (sudo ./install.sh --production)"
  APPLIANCE="$VENV/bin/appliance"
  STAMP="$VENV/.forge-appliance-source"
  FINGERPRINT="production:$(source_fingerprint playbooks)" || die "could not read the checkout in $REPO"
  if [ -x "$APPLIANCE" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$FINGERPRINT" ]; then
    say "forge-appliance with the production extra in $VENV is up to date with this checkout"
  else
    upgrade_pip
    say "installing forge-appliance with the production extra (Ansible) into $VENV"
    rm -f "$STAMP"
    "${PIP[@]}" install "$REPO[production]" || die "pip install failed"
    printf '%s\n' "$FINGERPRINT" >"$STAMP"
  fi
  link_command
  # The settings file the playbooks render and every command reads: the one named, else /etc's.
  CONFIG="${APPLIANCE_CONFIG:-/etc/forge-appliance/appliance.toml}"
  # The package comes from this checkout (over a source named in the variables file).
  RECONFIGURE=(reconfigure -e "appliance_source_dir=$REPO")
  absolute() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$CALLER_DIR" "$1" ;; esac; }
  if [ -n "$PLAYBOOKS" ]; then RECONFIGURE+=(--playbooks "$(absolute "$PLAYBOOKS")"); fi
  # After a converge, install.sh records this checkout beside the settings file (source.yml), where a plain
  # `appliance reconfigure` finds it: the next converge needs no -e.
  SOURCE_RECORD="$(dirname "$CONFIG")/source.yml"
  CONVERGE="$COMMAND --config $CONFIG reconfigure"
  CHOICES=/etc/forge-appliance/reconfigure.yml   # read by reconfigure when it exists
  if [ -n "$VARS_FILE" ]; then
    CHOICES="$(absolute "$VARS_FILE")"
    RECONFIGURE+=(--vars "$CHOICES")
    CONVERGE="$CONVERGE --vars $CHOICES"
  fi
  RECONFIGURE+=(${EXTRA_VARS[@]+"${EXTRA_VARS[@]}"})
  say "converging this host: $COMMAND ${RECONFIGURE[*]}"
  # From /, so that an appliance.toml in this checkout is not taken for the host's settings file.
  (cd / && "$APPLIANCE" "${RECONFIGURE[@]}") \
    || die "this host did not converge (the line above names the host, the task and the reason); fix it and \
run sudo ./install.sh --production again"
  "$VENV/bin/python" - "$SOURCE_RECORD" "$REPO" <<'PY' || die "could not write $SOURCE_RECORD"
import json, sys
from pathlib import Path
record, repo = Path(sys.argv[1]), sys.argv[2]
text = (
    "# Written by install.sh --production: where this host's appliance package comes from. `appliance\n"
    "# reconfigure` installs from it unless its variables file (reconfigure.yml) or -e names another.\n"
    f"appliance_source_dir: {json.dumps(repo)}\n"
)
if not record.is_file() or record.read_text() != text:
    record.write_text(text)
    record.chmod(0o644)
PY
  ADMIN_OUT="$("$APPLIANCE" --config "$CONFIG" admin create --email "$ADMIN_EMAIL" --if-none)" \
    || die "could not create the first operator account"
  printf '%s\n' "$ADMIN_OUT"
  URL="$("$VENV/bin/python" - "$CONFIG" <<'PY'
import socket, sys
from pathlib import Path
from appliance.configfile import load_settings
print(load_settings(Path(sys.argv[1])).api.public_url or f"https://{socket.getfqdn()}")
PY
)" || die "could not read the settings file $CONFIG"
  case "$ADMIN_OUT" in
    *"one-time password:"*) LOGIN="Log in as the operator account printed above; its password is shown only once." ;;
    *) LOGIN="Log in with an existing operator account ($COMMAND --config $CONFIG admin list shows them)." ;;
  esac
  cat <<EOF

Forge Appliance is running at $URL
  status:    $COMMAND --config $CONFIG status
  converge:  $CONVERGE   (--check shows what would change; safe to run again)
  choices:   $CHOICES (the playbooks' variables: edit, then converge)
  settings:  $CONFIG (rendered from those choices: change them, not this file)
$LOGIN
EOF
  exit 0
fi

APPLIANCE="$VENV/bin/appliance"
STAMP="$VENV/.forge-appliance-source"   # the fingerprint of the checkout installed last
FINGERPRINT="$(source_fingerprint)" || die "could not read the checkout in $REPO"
IN_PLACE=0   # upgraded while it ran, by `appliance upgrade`
if [ -x "$APPLIANCE" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$FINGERPRINT" ]; then
  say "forge-appliance in $VENV is up to date with this checkout"
  UPGRADED=0
elif [ -x "$APPLIANCE" ] && "$APPLIANCE" status >/dev/null 2>&1; then
  # Installed and running: upgrade it in place with no downtime: the checkout into a new venv beside this
  # one, the checks, a backup, the migrations, the venv path switched, a rolling restart, a rollback on any
  # failure. The checkout's own upgrade code runs it (the installed version may have none): from $REPO, with
  # the installed venv's Python, standard library only until it hands over to the new venv.
  say "the appliance is running: upgrading it in place (appliance upgrade; rolled back on any failure)"
  "$VENV/bin/python" -m appliance.upgrade "$REPO" --venv "$VENV" \
    || die "the appliance was not upgraded (the reason is above); it runs the version it ran before"
  printf '%s\n' "$FINGERPRINT" >"$STAMP"   # in the new venv, where $VENV leads now
  UPGRADED=0
  IN_PLACE=1
else
  upgrade_pip
  say "installing forge-appliance into $VENV"
  rm -f "$STAMP"
  "${PIP[@]}" install "$REPO" || die "pip install failed"
  printf '%s\n' "$FINGERPRINT" >"$STAMP"
  UPGRADED=1
fi
link_command

"$APPLIANCE" init
"$APPLIANCE" config check
RUNNING=0
if "$APPLIANCE" status >/dev/null 2>&1; then RUNNING=1; fi
PENDING=0
if ! "$APPLIANCE" migrate --check >/dev/null 2>&1; then PENDING=1; fi
if [ "$RUNNING" -eq 1 ]; then
  if [ "$UPGRADED" -eq 1 ] || [ "$PENDING" -eq 1 ]; then
    say "the appliance is running: stopping it to upgrade"
    "$APPLIANCE" down
    RUNNING=0
  elif [ "$IN_PLACE" -eq 0 ]; then
    say "the appliance is running and nothing changed: left running (settings changed since it started? \
run $COMMAND down, then $COMMAND up)"
  fi
fi
if [ "$PENDING" -eq 1 ]; then "$APPLIANCE" migrate; fi
ADMIN_OUT="$("$APPLIANCE" admin create --email "$ADMIN_EMAIL" --if-none)"
printf '%s\n' "$ADMIN_OUT"
PASSWORD_SHOWN=0
case "$ADMIN_OUT" in *"one-time password:"*) PASSWORD_SHOWN=1 ;; esac

if [ "$PASSWORD_SHOWN" -eq 1 ]; then
  LOGIN="Log in as the operator account printed above; its password is shown only once."
else
  LOGIN="Log in with an existing operator account ($COMMAND admin list shows them; \
$COMMAND admin reset-password EMAIL gives one a new one-time password)."
fi
if [ "$RUNNING" -eq 0 ]; then
  if [ "$START" -eq 0 ]; then
    say "installed; start it with: $COMMAND up"
    printf '%s\n' "$LOGIN"
    exit 0
  fi
  "$APPLIANCE" up
fi
URL="$("$VENV/bin/python" -c 'from appliance.configfile import load_settings; print(load_settings().api_url)')"
cat <<EOF

Forge Appliance is running at $URL
  health:    curl $URL/health
  API docs:  $URL/docs
  status:    $COMMAND status
  stop:      $COMMAND down        start again: $COMMAND up
  settings:  $COMMAND config show   (example: config/appliance.example.toml)
$LOGIN
EOF
