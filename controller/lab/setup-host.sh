#!/bin/sh
# Prepare this machine as one libvirt host for Corral (the single-host default used by
# `corral up` and the tests): packages, the users libvirt expects, state dirs, qemu.conf,
# and running virtlogd + libvirtd. Idempotent: a second run changes nothing.
#
#   setup-host.sh [--no-install]    --no-install skips apt (packages must be present)
#
# qemu runs as root without a security driver or ownership changes: a lab setting that lets
# guests read kernels, initrds and disks anywhere on the machine. Do not use it for real hosts.
set -eu

PACKAGES="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev qemu-system-x86
qemu-utils dnsmasq-base busybox-static cpio iptables nftables"
QEMU_CONF=/etc/libvirt/qemu.conf

say() { echo "setup-host: $*" >&2; }

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

for bin in libvirtd virtlogd qemu-system-x86_64 nft; do
    command -v "$bin" >/dev/null || { say "$bin not found (install $PACKAGES)"; exit 1; }
done

# Debian's libvirtd resolves its compiled-in qemu user and group (libvirt-qemu) at start,
# before qemu.conf overrides them, and refuses to start if either is missing.
getent group kvm >/dev/null || groupadd --system kvm
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent passwd libvirt-qemu >/dev/null \
    || useradd --system --no-create-home --gid libvirt-qemu --groups kvm \
        --shell /usr/sbin/nologin libvirt-qemu
mkdir -p /etc/libvirt /var/log/libvirt/qemu /var/run/libvirt /var/lib/libvirt \
    /var/cache/libvirt

# Rewrite only the keys Corral manages; keep every other line of an existing qemu.conf.
new_conf=$(mktemp)
trap 'rm -f "$new_conf"' EXIT
if [ -f "$QEMU_CONF" ]; then
    grep -Ev '^[[:space:]]*(user|group|security_driver|dynamic_ownership|remember_owner)[[:space:]]*=' \
        "$QEMU_CONF" >"$new_conf" || true
fi
cat >>"$new_conf" <<'CONF'
user = "root"
group = "root"
security_driver = "none"
dynamic_ownership = 0
remember_owner = 0
CONF
conf_changed=0
if ! cmp -s "$new_conf" "$QEMU_CONF"; then
    install -m 0644 "$new_conf" "$QEMU_CONF"
    conf_changed=1
fi

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! running /run/virtlogd.pid; then
    virtlogd -d
fi
if running /run/libvirtd.pid && [ "$conf_changed" = 1 ]; then
    say "qemu.conf changed: restarting libvirtd"
    kill "$(cat /run/libvirtd.pid)"
    i=0
    while running /run/libvirtd.pid && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
fi
if ! running /run/libvirtd.pid; then
    rm -f /run/libvirt/libvirt-sock
    libvirtd -d
fi

# The first start probes QEMU's capabilities (several seconds); wait until it answers.
i=0
until virsh -q -c qemu:///system uri >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -ge 600 ]; then
        say "libvirtd did not answer on qemu:///system within 60 s"
        exit 1
    fi
    sleep 0.1
done
