#!/bin/sh
# Make the container install's secret files, each once: a file already there is kept (a new signing key
# would sign everyone out; a new database password takes effect at PostgreSQL's next start).
#
#   sudo compose/make-secrets.sh [DIR]        DIR defaults to compose/secrets
#
# database_owner_password (the schema owner's), database_password (the app role's) and signing_key (the
# token signing key): random, mode 0600, owned by the appliance image's user (FORGE_UID, default 10001, the
# Dockerfile's APPLIANCE_UID), because compose v1 mounts secret files as they are on the host and the
# appliance refuses a signing key others can read. PostgreSQL's entrypoint reads them as root.
set -eu

dir=${1:-$(dirname "$0")/secrets}
uid=${FORGE_UID:-10001}
umask 077
mkdir -p "$dir"
for name in database_owner_password database_password signing_key; do
    file=$dir/$name
    if [ -s "$file" ]; then
        echo "kept    $file"
        continue
    fi
    # 48 random bytes as URL-safe base64: 64 characters, none of them a quote, ':' or '\'.
    head -c 48 /dev/urandom | base64 -w0 | tr '+/' '-_' > "$file.new"
    echo >> "$file.new"
    mv "$file.new" "$file"
    echo "created $file"
done
if [ "$(id -u)" = 0 ]; then
    chown "$uid:$uid" "$dir" "$dir"/database_owner_password "$dir"/database_password "$dir"/signing_key
elif [ "$(id -u)" != "$uid" ]; then
    echo "make-secrets.sh: run as root to give the files to uid $uid (the image's user), or build the image" \
         "with --build-arg APPLIANCE_UID=$(id -u)" >&2
fi
chmod 0700 "$dir"
chmod 0600 "$dir"/database_owner_password "$dir"/database_password "$dir"/signing_key
