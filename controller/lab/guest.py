"""The tiny guest: a Debian cloud kernel and a busybox initramfs that proves a VM is running.

The guest boots in about 4 s under TCG with 80 MiB of memory, prints `GUEST-UP`, then one
heartbeat line `HB <n> <uptime-seconds>` per second on its serial console (read them with
`controller.lab.heartbeat`), keeps a busybox shell on the console for interactive use, and
powers off (printing `GUEST-DOWN`) when it gets an ACPI power-button press, so a graceful
shutdown (`virsh shutdown`) really is graceful.

Both files are built once and cached (default /var/cache/corral/guest, or $CORRAL_GUEST_DIR):
- `kernel-<abi>/vmlinuz` and the two modules ACPI shutdown needs (`button.ko`, `evdev.ko`)
  from the newest `linux-image-6.1.0-*-cloud-amd64-unsigned` apt knows, fetched with
  `apt-get download` (the only step that needs the network);
- `initrd-<hash>.img`: a deterministic gzip'ed newc cpio of busybox-static, the modules and
  `/init`, named by the hash of its inputs, so changed inputs give a new file.
Symlinks `vmlinuz` and `initrd.img` in the cache dir point at the current pair, so manifests
can name stable paths. Concurrent builders serialise on a file lock in the cache dir; files
and links appear atomically.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from controller.lab import cpio

DEFAULT_CACHE_DIR = Path("/var/cache/corral/guest")
CACHE_DIR_ENV = "CORRAL_GUEST_DIR"
STABLE_KERNEL = "vmlinuz"
STABLE_INITRD = "initrd.img"
BUSYBOX_PATH = Path("/bin/busybox")
KERNEL_PACKAGE_RE = re.compile(r"^linux-image-(6\.1\.0-(\d+)-cloud-amd64)-unsigned$")
GUEST_MODULES = (
    "kernel/drivers/acpi/button.ko",
    "kernel/drivers/input/evdev.ko",
    "kernel/net/core/failover.ko",
    "kernel/drivers/net/net_failover.ko",
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
    "kernel/drivers/net/virtio_net.ko",
)
"""Built as modules in the cloud kernel: the ACPI power button and the input device acpid
reads, then virtio-net with what it needs, in load (dependency) order."""
KERNEL_CMDLINE = "console=ttyS0 panic=-1"
"""Serial console for the heartbeats; reboot at once if /init ever dies, never hang."""
MIN_MEMORY_MIB = 80
"""Below 80 MiB the kernel dies silently while decompressing (measured: 64 MiB never boots)."""

# The heartbeat loop uses shell builtins (`read` from /proc/uptime) so that a second of
# guest time costs almost no TCG CPU; the shell on the console is restarted if it exits.
INIT_SCRIPT = """\
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in /lib/modules/*.ko; do insmod "$module"; done
acpid -l /dev/null
echo GUEST-UP
heartbeat() {
    n=0
    while :; do
        n=$((n + 1))
        read up _ < /proc/uptime
        echo "HB $n $up"
        sleep 1
    done
}
heartbeat >/dev/console 2>&1 &
if [ -e /sys/class/net/eth0 ]; then
    echo '[ "$1" = bound ] && ifconfig "$interface" "$ip" netmask "$subnet"; exit 0' >/etc/dhcp.sh
    chmod 755 /etc/dhcp.sh
    ip link set eth0 up
    udhcpc -i eth0 -s /etc/dhcp.sh -b -S >/dev/null 2>&1 &
fi
while :; do
    setsid cttyhack sh
    sleep 1
done
"""

POWER_BUTTON_SCRIPT = """\
#!/bin/sh
echo GUEST-DOWN >/dev/console
poweroff -f
"""
"""Run by busybox acpid for the power button (its built-in table maps it to PWRF/00000080)."""


class GuestBuildError(RuntimeError):
    """The tiny guest could not be built (apt, dpkg-deb or busybox missing or failing)."""


@dataclass(frozen=True)
class GuestImage:
    """Paths of a built tiny guest, readable by QEMU on every lab host."""

    kernel: Path
    initrd: Path
    cmdline: str = KERNEL_CMDLINE


def cache_dir_default() -> Path:
    """Returns $CORRAL_GUEST_DIR if set, else /var/cache/corral/guest."""
    return Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR)


def newest_kernel_package(names: Iterable[str]) -> str | None:
    """Returns the cloud kernel package with the highest ABI number among `names`, or None."""
    found = [(int(m.group(2)), name) for name in names if (m := KERNEL_PACKAGE_RE.match(name))]
    return max(found)[1] if found else None


def initramfs_entries(
    busybox: bytes, modules: dict[str, bytes], init_script: str = INIT_SCRIPT
) -> list[cpio.Entry]:
    """Returns the initramfs members: directory skeleton, /dev/console, busybox, kernel modules
    (by file name, loaded in name order), the power-button handler and /init.
    """
    dirs = ["bin", "dev", "etc", "etc/acpi", "etc/acpi/PWRF", "lib", "lib/modules", "proc",
            "root", "sbin", "sys", "tmp", "usr", "usr/bin", "var", "var/log"]  # fmt: skip
    return [
        *(cpio.directory(d) for d in dirs),
        cpio.char_device("dev/console", 5, 1),
        cpio.file("bin/busybox", busybox, 0o755),
        cpio.symlink("bin/sh", "busybox"),
        *(cpio.file(f"lib/modules/{name}", modules[name]) for name in sorted(modules)),
        cpio.file("etc/acpi/PWRF/00000080", POWER_BUTTON_SCRIPT.encode(), 0o755),
        cpio.file("init", init_script.encode(), 0o755),
    ]


def build_initrd(
    busybox: bytes, modules: dict[str, bytes], init_script: str = INIT_SCRIPT
) -> bytes:
    """Returns the gzip'ed newc initramfs; equal inputs give identical bytes (gzip mtime 0)."""
    raw = cpio.build_newc(initramfs_entries(busybox, modules, init_script))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    return out.getvalue()


def initrd_name(busybox: bytes, modules: dict[str, bytes], init_script: str = INIT_SCRIPT) -> str:
    """Returns the cache file name of the initrd built from these inputs."""
    digest = hashlib.sha256()
    for part in (busybox, init_script.encode(), POWER_BUTTON_SCRIPT.encode()):
        digest.update(hashlib.sha256(part).digest())
    for name in sorted(modules):
        digest.update(name.encode() + b"\0" + hashlib.sha256(modules[name]).digest())
    return f"initrd-{digest.hexdigest()[:16]}.img"


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise GuestBuildError(f"{argv[0]} not found: the tiny guest needs apt and dpkg") from exc


def _known_kernel_packages() -> list[str]:
    pattern = r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$"
    proc = _run(["apt-cache", "search", "--names-only", pattern])
    return [line.split(" ", 1)[0] for line in proc.stdout.splitlines() if line]


def resolve_kernel_package() -> str:
    """Returns the newest cloud kernel package apt knows, running `apt-get update` once if none.

    Raises GuestBuildError when apt knows none even after an update.
    """
    package = newest_kernel_package(_known_kernel_packages())
    if package is None:
        _run(["apt-get", "update", "-qq"])
        package = newest_kernel_package(_known_kernel_packages())
    if package is None:
        raise GuestBuildError(
            "apt knows no linux-image-6.1.0-*-cloud-amd64-unsigned package; "
            "check the Debian bookworm sources in /etc/apt and run apt-get update"
        )
    return package


def _extract_kernel(deb: Path, abi: str, into: Path) -> None:
    """Writes vmlinuz and GUEST_MODULES of the kernel package `deb` into `into`."""
    wanted = {f"./boot/vmlinuz-{abi}": "vmlinuz"}
    wanted |= {f"./lib/modules/{abi}/{m}": Path(m).name for m in GUEST_MODULES}
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.name in wanted else None
            if handle is not None:
                (into / wanted.pop(member.name)).write_bytes(handle.read())
    if proc.wait() != 0 or wanted:
        raise GuestBuildError(
            f"{deb.name}: missing {sorted(wanted)} (dpkg-deb exit {proc.returncode})"
        )


def download_kernel(package: str, cache_dir: Path) -> Path:
    """Returns the cached kernel dir (vmlinuz + modules) of `package`, downloading and
    extracting it if missing. Raises GuestBuildError with apt's message if the download fails.
    """
    match = KERNEL_PACKAGE_RE.match(package)
    if not match:
        raise GuestBuildError(f"{package!r} is not a linux-image-6.1.0-*-cloud-amd64-unsigned name")
    target = cache_dir / f"kernel-{match.group(1)}"
    if _has_modules(target):
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
        # apt drops privileges to _apt for downloads; it must be able to write here.
        os.chmod(tmp, 0o777)
        proc = _run(["apt-get", "download", "-qq", package], cwd=Path(tmp))
        debs = sorted(Path(tmp).glob("*.deb"))
        if proc.returncode != 0 or not debs:
            detail = (proc.stderr or proc.stdout).strip() or f"exit {proc.returncode}"
            raise GuestBuildError(f"apt-get download {package} failed: {detail}")
        staging = Path(tmp) / "kernel"
        staging.mkdir(mode=0o755)
        _extract_kernel(debs[0], match.group(1), staging)
        if not target.exists():
            os.replace(staging, target)
        else:  # cached before GUEST_MODULES grew: add what is missing, file by file
            for extracted in staging.iterdir():
                if not (target / extracted.name).exists():
                    os.replace(extracted, target / extracted.name)
    return target


def _has_modules(kernel_dir: Path) -> bool:
    """Returns True if `kernel_dir` holds vmlinuz and every module of GUEST_MODULES."""
    names = ["vmlinuz", *(Path(m).name for m in GUEST_MODULES)]
    return all((kernel_dir / name).exists() for name in names)


def _cached_kernel(cache_dir: Path) -> Path | None:
    def abi(path: Path) -> int:
        match = re.search(r"-(\d+)-cloud-amd64$", path.name)
        return int(match.group(1)) if match else -1

    kernels = sorted(cache_dir.glob("kernel-6.1.0-*-cloud-amd64"), key=abi)
    return kernels[-1] if kernels else None


def ensure_initrd(cache_dir: Path, kernel_dir: Path, busybox_path: Path = BUSYBOX_PATH) -> Path:
    """Returns the cached initrd for the installed busybox-static and the modules of
    `kernel_dir`, building it if missing.
    """
    try:
        busybox = busybox_path.read_bytes()
    except OSError as exc:
        raise GuestBuildError(f"{busybox_path}: {exc.strerror} (install busybox-static)") from exc
    # Named by load position: /init loads /lib/modules/*.ko in name order.
    modules = {
        f"{index:02d}-{Path(m).name}": (kernel_dir / Path(m).name).read_bytes()
        for index, m in enumerate(GUEST_MODULES)
    }
    target = cache_dir / initrd_name(busybox, modules)
    if not target.exists():
        _write_atomic(target, build_initrd(busybox, modules))
    return target


def ensure_tiny_guest(cache_dir: Path | None = None, refresh: bool = False) -> GuestImage:
    """Returns the tiny guest's kernel and initrd, building what is not cached yet.

    A cached kernel is reused without asking apt unless `refresh` is set (then the newest
    package apt knows is fetched if it is not cached). Safe to call from several processes.
    Raises GuestBuildError naming the failing step.
    """
    directory = cache_dir or cache_dir_default()
    with _locked(directory):
        kernel_dir = None if refresh else _cached_kernel(directory)
        if kernel_dir is not None and not _has_modules(kernel_dir):
            abi = kernel_dir.name.removeprefix("kernel-")
            kernel_dir = download_kernel(f"linux-image-{abi}-unsigned", directory)
        if kernel_dir is None:
            kernel_dir = download_kernel(resolve_kernel_package(), directory)
        initrd = ensure_initrd(directory, kernel_dir)
        _link_atomic(directory / STABLE_KERNEL, (kernel_dir / "vmlinuz").relative_to(directory))
        _link_atomic(directory / STABLE_INITRD, initrd.relative_to(directory))
    return GuestImage(kernel=kernel_dir / "vmlinuz", initrd=initrd)


def _link_atomic(link: Path, target: Path) -> None:
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)
