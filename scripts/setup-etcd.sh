#!/bin/sh
# etcd, the HA arbiter (agents keep their fencing leases there): installs Debian's etcd-server
# and etcd-client if missing, and makes sure Debian's own etcd service is neither running nor
# started at boot. Corral never uses that service: tests start private members on free ports of
# 127.0.0.1 (tests/helpers/etcd.py) and `corral lab up` starts one member inside each lab host
# (controller/lab/etcd.py). Idempotent: a second run changes nothing and takes a few ms.
#
#   setup-etcd.sh [--no-install]    --no-install skips apt (packages must be present)
set -eu

PACKAGES="etcd-server etcd-client"
SERVICE=etcd
# Debian's init script and unit run etcd as this user; Corral's own members run as root.
SERVICE_USER=etcd

say() { echo "setup-etcd: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    say "must run as root"
    exit 1
fi

if [ "${1:-}" != "--no-install" ]; then
    missing=""
    for pkg in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        say "installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
fi

for bin in etcd etcdctl; do
    command -v "$bin" >/dev/null || { say "$bin not found (apt-get install $PACKAGES)"; exit 1; }
done

# The package enables and starts a member on 127.0.0.1:2379 with data in /var/lib/etcd
# (unless a policy-rc.d forbids it). Stop it and keep it from starting at boot: a stray
# member there would answer any client pointed at the default endpoint by mistake.
if [ -d /run/systemd/system ]; then
    if systemctl is-active --quiet "$SERVICE" 2>/dev/null; then
        say "stopping Debian's $SERVICE service"
        systemctl stop "$SERVICE"
    fi
    if systemctl is-enabled --quiet "$SERVICE" 2>/dev/null; then
        say "disabling Debian's $SERVICE service"
        systemctl disable --quiet "$SERVICE"
    fi
else
    if pgrep -u "$SERVICE_USER" -x etcd >/dev/null 2>&1; then
        say "stopping Debian's $SERVICE service"
        /etc/init.d/"$SERVICE" stop >/dev/null 2>&1 || true
    fi
    if ls /etc/rc[2345].d/S*"$SERVICE" >/dev/null 2>&1; then
        say "disabling Debian's $SERVICE service"
        update-rc.d "$SERVICE" disable >/dev/null 2>&1
    fi
fi

i=0
while pgrep -u "$SERVICE_USER" -x etcd >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -ge 100 ]; then
        say "Debian's etcd (user $SERVICE_USER) still runs after 10 s; stop it by hand"
        exit 1
    fi
    sleep 0.1
done
