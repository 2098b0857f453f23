"""API benchmark over real HTTPS on loopback: list 10,000 VMs, then 1,000 concurrent GETs.

The API runs in its own process (uvicorn, TLS with a fresh fleet CA, SQLite in a temp
dir); the client is httpx. Prints latency percentiles and throughput.

    python bench/bench_api.py [--objects 10000] [--gets 1000] [--concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.api.app import create_app
from controller.api.serve import API_CERT_NAME, build_server
from controller.api.tokens import TokenStore
from controller.store import open_store
from nodeagent.tls import make_ca, make_host_cert
from schemas import VirtualMachine


def make_vms(count: int) -> list[VirtualMachine]:
    """Return `count` VMs with labels, a disk, a NIC, HA and a placement selector."""
    return [
        VirtualMachine.model_validate(
            {
                "kind": "VirtualMachine",
                "metadata": {
                    "name": f"vm-{i:05}",
                    "labels": {"app": f"app-{i % 50}", "tier": "web"},
                },
                "spec": {
                    "cpus": 1 + i % 4,
                    "memory": "1Gi",
                    "disks": [{"name": "root", "volume": f"vm-{i:05}-root"}],
                    "nics": [{"name": "eth0", "network": "lan"}],
                    "ha": {"enabled": i % 3 == 0, "priority": i % 100},
                    "placement": {"hostSelector": {"matchLabels": {"zone": f"z{i % 3}"}}},
                },
            }
        )
        for i in range(count)
    ]


def serve(url: str, certs: Path, port: int) -> None:
    """Run the API (in a child process) until killed."""
    store = open_store(url)
    server = build_server(create_app(store, TokenStore.open(url)), f"127.0.0.1:{port}", certs)
    server.run()


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return (
        f"p50 {at(0.50):7.1f} ms  p90 {at(0.90):7.1f} ms  p99 {at(0.99):7.1f} ms  "
        f"max {ordered[-1] * 1000:7.1f} ms"
    )


async def concurrent_gets(
    base: str, token: str, context: ssl.SSLContext, names: list[str], concurrency: int
) -> tuple[list[float], float, int]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    failures = 0
    async with httpx.AsyncClient(
        base_url=base,
        verify=context,
        limits=limits,
        timeout=120,
        headers={"Authorization": f"Bearer {token}"},
    ) as client:

        async def one(name: str) -> None:
            nonlocal failures
            start = time.perf_counter()
            response = await client.get(f"/api/v1/virtualmachines/{name}")
            latencies.append(time.perf_counter() - start)
            failures += response.status_code != 200

        await client.get("/healthz")
        start = time.perf_counter()
        await asyncio.gather(*(one(n) for n in names))
        return latencies, time.perf_counter() - start, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--gets", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--port", type=int, default=18480)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="corral-bench-api-"))
    url = f"sqlite:///{work / 'corral.db'}"
    make_ca(work / "certs")
    certs = make_host_cert(work / "certs", API_CERT_NAME, ips=["127.0.0.1"])
    with open_store(url) as store:
        start = time.perf_counter()
        store.apply_snapshot("git:bench", "r1", make_vms(args.objects))
        print(f"seeded {args.objects} VMs in {time.perf_counter() - start:.1f} s")
    tokens = TokenStore.open(url)
    token = tokens.create("bench", "viewer")
    tokens.close()

    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(url, certs, args.port), daemon=True
    )
    server.start()
    base = f"https://127.0.0.1:{args.port}"
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    try:
        with httpx.Client(
            base_url=base, verify=context, timeout=300, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

            whole: list[float] = []
            for _ in range(3):
                start = time.perf_counter()
                body = client.get("/api/v1/virtualmachines").json()
                whole.append(time.perf_counter() - start)
                assert len(body["items"]) == args.objects
            print(
                f"list {args.objects} VMs in one response: best {min(whole):.2f} s, "
                f"median {statistics.median(whole):.2f} s"
            )

            start = time.perf_counter()
            count, pages, token_ = 0, 0, None
            while True:
                params = {"limit": 500, **({"continue": token_} if token_ else {})}
                page = client.get("/api/v1/virtualmachines", params=params).json()
                count += len(page["items"])
                pages += 1
                token_ = page["metadata"].get("continue")
                if not token_:
                    break
            print(f"list {count} VMs in {pages} pages of 500: {time.perf_counter() - start:.2f} s")

        names = [f"vm-{random.randrange(args.objects):05}" for _ in range(args.gets)]
        latencies, elapsed, failures = asyncio.run(
            concurrent_gets(base, token, context, names, args.concurrency)
        )
        print(
            f"{args.gets} GETs at once over {args.concurrency} connections "
            f"(latency includes waiting for a connection): {percentiles(latencies)}; "
            f"{args.gets / elapsed:.0f} req/s; {failures} failed"
        )
    finally:
        server.kill()
        server.join()


if __name__ == "__main__":
    main()
