"""The recurrent layer's Triton path against the reference loop: under ``TRITON_INTERPRET=1`` on
the CPU (in a subprocess, since the flag is read when triton is imported) and, with CUDA, on the
GPU. Spikes must be identical; gradients agree to float32 rounding."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[1]

CHECK = textwrap.dedent(
    """
    import torch
    from snnkit.components import neurons as N
    from snnkit.components.recurrent import Recurrent
    from snnkit.components.surrogates import ATan, Sigmoid
    from snnkit.kernels.cuda.triton_recurrent import triton_recurrent
    from snnkit.kernels.forms import form_of

    device = "{device}"
    g = torch.Generator().manual_seed(0)
    cases = [
        (N.LIF(ATan(), tau=3.0), "all_to_all"),
        (N.LIF(Sigmoid(), tau=2.0, v_reset=None, decay_input=False), "one_to_one"),
        (N.PLIF(Sigmoid(), init_tau=3.0), "all_to_all"),
        (N.IF(Sigmoid(), detach_reset=True), "one_to_one"),
    ]
    for neuron, mode in cases:
        layer = Recurrent(8, neuron, mode=mode, kernel="reference").to(device)
        with torch.no_grad():
            layer.weight.mul_(2)
            layer.bias.copy_(torch.rand(8, generator=g) * 0.4 - 0.2)
        x = (torch.rand(7, 3, 8, generator=g) * 2).to(device).requires_grad_(True)
        gout = torch.randn(7, 3, 8, generator=g).to(device)
        params = list(layer.parameters())
        ref = layer(x)
        want = torch.autograd.grad(ref, [x, *params], gout)
        out = triton_recurrent(form_of(layer.neuron), x, layer.weight, layer.bias)
        got = torch.autograd.grad(out, [x, *params], gout)
        assert torch.equal(out, ref), (type(neuron).__name__, mode)
        assert 0 < float(ref.detach().mean()) < 1
        for a, b in zip(got, want):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), (mode, float((a - b).abs().max()))
    print("ok")
    """
)


def test_triton_path_matches_the_reference_under_the_interpreter() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(device="cpu")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_triton_path_matches_the_reference_on_cuda() -> None:
    exec(CHECK.format(device="cuda"), {})  # the same check, in process


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_auto_picks_triton_on_cuda() -> None:
    from snnkit.components import neurons as N
    from snnkit.components.recurrent import Recurrent
    from snnkit.kernels.recurrent import select_kernel

    layer = Recurrent(4, N.LIF()).cuda()
    assert select_kernel(layer, torch.zeros(2, 1, 4, device="cuda"))[0] == "triton"


def test_triton_kernel_is_refused_on_the_cpu() -> None:
    from snnkit.components import neurons as N
    from snnkit.components.recurrent import Recurrent

    with pytest.raises(ValueError, match="CUDA float32"):
        Recurrent(4, N.LIF(), kernel="triton")(torch.rand(3, 2, 4))
