"""controller.malloc: glibc takes the settings; the process keeps working under them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from controller.malloc import SETTINGS, tune_malloc


def test_glibc_accepts_every_setting() -> None:
    assert SETTINGS
    assert tune_malloc() is True


def test_a_tuned_process_returns_freed_large_blocks_to_the_system() -> None:
    """After a 16 MiB block is freed, untuned glibc serves 1 MiB blocks from its heap, where
    small live blocks between them keep the memory from going back when they are freed
    (a pass's documents and lists between the objects it keeps); tuned, they are mapped
    on their own and returned on free."""
    script = textwrap.dedent(
        """
        import sys
        from controller.malloc import tune_malloc
        if sys.argv[1] == "tuned":
            tune_malloc()
        def rss():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) // 1024
        big = bytearray(16 * 2**20)
        del big
        base = rss()
        kept, blocks = [], []
        for _ in range(64):
            blocks.append(bytearray(2**20))
            kept.append(bytearray(600))
        del blocks
        print(rss() - base)
        """
    )
    grown = {}
    for mode in ("tuned", "default"):
        out = subprocess.run(
            [sys.executable, "-c", script, mode], capture_output=True, text=True, check=True
        )
        grown[mode] = int(out.stdout)
    assert grown["tuned"] < 8, grown
    assert grown["default"] > 32, grown
