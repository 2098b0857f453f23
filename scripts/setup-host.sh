#!/bin/sh
# Prepare this machine as a single libvirt host (see controller/lab/setup-host.sh).
exec "$(dirname "$0")/../controller/lab/setup-host.sh" "$@"
