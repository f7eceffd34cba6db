"""The C++ kernels' output-buffer pool gives back buffers of sizes that do not recur.

Outputs of a megabyte or more come from a pool that keeps a dead output's buffer for the next
call of the same size. A size that never comes back (a last partial batch, an evaluation
batch, a one-off shape) must not stay resident for the rest of the process: an idle buffer
that none of the next 64 requests reused is unmapped. Measured from ``VmRSS`` (Linux).
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch

from snnkit import kernels
from snnkit.components import neurons as N
from snnkit.kernels.cpu import build

MB = 2**20


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line in /proc/self/status")


def _spikes(lif: N.LIF, megabytes: int) -> None:
    """One forward of ``lif`` over ``[T=4, n]`` float32 input of ``megabytes`` MB, dropped."""
    x = torch.full((4, megabytes * MB // 16), 0.3)
    assert kernels.select_kernel(lif, x)[0] == "cpp"
    with torch.no_grad():
        lif(x)
    lif.reset()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS (Linux)")
def test_pool_frees_buffers_of_sizes_that_do_not_recur() -> None:
    if build.cpu_extension() is None:
        pytest.skip("the C++ kernels cannot be built here")
    lif = N.LIF(tau=2.0)
    _spikes(lif, 2)  # the recurring size: its buffer is in the pool from here on
    gc.collect()
    base = _rss_mb()
    one_off = [40 + 2 * i for i in range(8)]  # 8 sizes, 376 MB in all, each used once
    for size in one_off:
        _spikes(lif, size)
    for _ in range(100):  # the steady shape of a training loop
        _spikes(lif, 2)
    gc.collect()
    retained = _rss_mb() - base
    # Before the fix the pool kept all eight idle buffers (+322 MB measured) for good.
    assert retained < 64, f"{retained:.0f} MB of one-off kernel outputs stayed resident"
