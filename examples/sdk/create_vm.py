"""Create a VM through the REST API and wait until it is Ready.

corral certs init --dir certs && corral certs host corral-api --dir certs --ip 127.0.0.1
corral up examples/demo --api 127.0.0.1:8480 --api-certs certs/hosts/corral-api &
export CORRAL_TOKEN=$(corral token create me --role operator)
python examples/sdk/create_vm.py --url https://127.0.0.1:8480 --ca certs/ca.crt
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from corral_sdk import Client, Conflict, WaitTimeout
from schemas import VirtualMachine


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", default="https://127.0.0.1:8480")
    parser.add_argument("--ca", help="the fleet CA (certs/ca.crt)")
    parser.add_argument("--name", default="sdk-demo")
    parser.add_argument("--network", default="demo-net")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()

    vm = VirtualMachine.model_validate(
        {
            "kind": "VirtualMachine",
            "metadata": {"name": args.name, "labels": {"app": "sdk-demo"}},
            "spec": {
                "cpus": 1,
                "memory": "96Mi",
                "boot": {
                    "kernel": "/var/cache/corral/guest/vmlinuz",
                    "initrd": "/var/cache/corral/guest/initrd.img",
                    "cmdline": "console=ttyS0 panic=-1",
                },
                "nics": [{"name": "eth0", "network": args.network}],
            },
        }
    )
    with Client(args.url, os.environ["CORRAL_TOKEN"], ca=args.ca) as client:
        try:
            client.vms.create(vm)
            print(f"created VirtualMachine/{args.name}")
        except Conflict:
            print(f"VirtualMachine/{args.name} exists already")
        try:
            ready = client.vms.wait(args.name, "Ready", timeout=args.timeout)
        except WaitTimeout as exc:
            print(exc, file=sys.stderr)
            return 1
        status = ready.status
        print(f"{args.name} is Ready: {status.phase.value} on {status.host}")  # type: ignore[union-attr]
    return 0


if __name__ == "__main__":
    sys.exit(main())
