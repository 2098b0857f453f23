"""Lab infrastructure: the tiny guest, heartbeats, and real libvirtd hosts on one machine.

- `guest`: builds and caches the tiny guest (Debian cloud kernel + busybox initramfs).
- `heartbeat`: reads its serial-log heartbeats: running, gaps, running twice.
- `domain`: minimal libvirt XML for it, for tests that talk to libvirt directly.
- `libvirtd`: the machine's own libvirtd (`setup-host.sh`), and `Lab`, several libvirtd hosts
  in network + mount namespaces (`corral lab up/down`).

What the lab needs: root, the packages setup-host.sh installs, iproute2 and util-linux.
What it changes while up: a bridge `cl-<name>-br` with the lab's /24 (default 10.77.0.0/24),
a veth `cl-<name>-<i>` and a network namespace `corral-<name>-host-<i>` per host, processes
inside those namespaces, host state under /var/lib/corral-lab/<name>/ and a state file under
/run/corral-lab/. Mount points /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt
and /var/cache/libvirt are created if missing; the machine's own mounts are never changed (the
hosts' bind mounts live in private mount namespaces). `down` removes all the rest.
"""
