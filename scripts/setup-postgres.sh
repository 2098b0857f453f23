#!/bin/sh
# PostgreSQL for the tests and for a production-like store on this machine: installs
# Debian's server if missing, makes sure cluster MAJOR/main exists and runs on
# 127.0.0.1:5432, lets loopback connect without a password, and creates database `test`
# owned by a superuser role named after the calling user (root under CI). Idempotent: a
# second run changes nothing and takes about a second.
#
#   setup-postgres.sh [--no-install]    --no-install skips apt (packages must be present)
#
# Trust on loopback is a test-machine setting (any local user may connect as any role):
# do not run this on a machine whose PostgreSQL holds anything else.
set -eu

say() { echo "setup-postgres: $*" >&2; }
ROLE=${CORRAL_PG_ROLE:-$(id -un)}
DATABASE=test
PORT=5432
MARK="# corral: loopback without a password (scripts/setup-postgres.sh)"

if [ "$(id -u)" != 0 ]; then
    say "must run as root"
    exit 1
fi

if [ "${1:-}" != "--no-install" ] && ! dpkg-query -W -f='${Status}' postgresql 2>/dev/null \
        | grep -q "install ok installed"; then
    say "installing postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
command -v pg_lsclusters >/dev/null || { say "pg_lsclusters not found (apt-get install postgresql)"; exit 1; }

MAJOR=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
[ -n "$MAJOR" ] || { say "no PostgreSQL server under /usr/lib/postgresql"; exit 1; }
if [ ! -d "/etc/postgresql/$MAJOR/main" ]; then
    say "creating cluster $MAJOR/main on port $PORT"
    pg_createcluster --port "$PORT" "$MAJOR" main >/dev/null
fi
CONF_DIR=/etc/postgresql/$MAJOR/main
HBA=$CONF_DIR/pg_hba.conf

# Loopback TCP connects without a password: these lines go first, since pg_hba.conf
# takes the first line that matches.
restart=0
if ! grep -qF "$MARK" "$HBA"; then
    tmp=$(mktemp)
    {
        echo "$MARK"
        echo "host    all             all             127.0.0.1/32            trust"
        echo "host    all             all             ::1/128                 trust"
        cat "$HBA"
    } >"$tmp"
    install -o postgres -g postgres -m 0640 "$tmp" "$HBA"
    rm -f "$tmp"
    restart=1
fi

status=$(pg_lsclusters -h "$MAJOR" main | awk '{print $4}')
if [ "$status" = online ] && [ "$restart" = 1 ]; then
    pg_ctlcluster --skip-systemctl-redirect "$MAJOR" main reload
elif [ "$status" != online ]; then
    say "starting cluster $MAJOR/main"
    pg_ctlcluster --skip-systemctl-redirect "$MAJOR" main start
fi

i=0
until pg_isready -q -h 127.0.0.1 -p "$PORT"; do
    i=$((i + 1))
    if [ $i -ge 300 ]; then
        say "PostgreSQL did not answer on 127.0.0.1:$PORT within 30 s"
        say "see /var/log/postgresql/postgresql-$MAJOR-main.log"
        exit 1
    fi
    sleep 0.1
done

psql_pg() { (cd / && runuser -u postgres -- psql -X -q -t -A -p "$PORT" -c "$1"); }
if [ -z "$(psql_pg "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" ]; then
    say "creating superuser role $ROLE"
    psql_pg "CREATE ROLE \"$ROLE\" SUPERUSER LOGIN"
fi
if [ -z "$(psql_pg "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" ]; then
    say "creating database $DATABASE"
    psql_pg "CREATE DATABASE $DATABASE OWNER \"$ROLE\""
fi
