"""Run one CrypTen party script per rank over torch.distributed's gloo backend (CrypTen's own
transport), as CrypTen's launcher would: RANK, WORLD_SIZE, RENDEZVOUS and DISTRIBUTED_BACKEND in
the environment. Used by tests that compare against CrypTen as published, without our relay."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_gloo_parties(
    script: Path, folder: Path, *, world_size: int = 2, timeout_s: float = 180
) -> list[str]:
    """Every rank's stdout, in rank order; fails with a rank's stderr tail when a rank exits
    non-zero."""
    env = {
        **os.environ,
        "WORLD_SIZE": str(world_size),
        "RENDEZVOUS": f"file://{folder / 'rendezvous'}",
        "DISTRIBUTED_BACKEND": "gloo",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, str(script)],
            env={**env, "RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(world_size)
    ]
    outputs = []
    try:
        for rank, process in enumerate(processes):
            out, err = process.communicate(timeout=timeout_s)
            assert process.returncode == 0, (
                f"rank {rank} exited {process.returncode}: {err[-4000:]}"
            )
            outputs.append(out)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs
