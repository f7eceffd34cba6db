"""LIF forward + backward through time: fused kernels against the reference autograd loop.

Shapes: [T=8, B=64, N=25088] (a conv feature map) and [T=100, B=64, N=10] (the default
recipe's output layer), float32, LIF(tau=2) with the Sigmoid(alpha=4) surrogate. Each figure is
the median of ``--reps`` timed iterations of ``out = lif(x); out.backward(grad)`` after warm-up,
measured in this process for every kernel available here (and SpikingJelly's multi-step LIF
only if it is already importable). Usage::

    python benchmarks/bench_neuron.py [--threads 2] [--reps 21]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from snnkit.components import neurons as N
from snnkit.kernels import select_kernel

SHAPES = ((8, 64, 25088), (100, 64, 10))


def time_fwd_bwd(
    neuron: torch.nn.Module, shape: tuple[int, ...], reps: int, device: str = "cpu"
) -> float:
    """Median ms of forward + backward over ``reps`` runs (3 warm-up runs first)."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(shape, generator=g) * 1.5).to(device).requires_grad_(True)
    grad = torch.randn(shape, generator=g).to(device)
    times = []
    for i in range(reps + 3):
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = neuron(x)
        out.backward(grad)
        if device != "cpu":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
        x.grad = None
    return statistics.median(times) * 1e3


def _spikingjelly(shape: tuple[int, ...], reps: int) -> float | None:
    try:
        from spikingjelly.activation_based import neuron, surrogate
    except ImportError:
        return None
    lif = neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(alpha=4.0), step_mode="m")

    def run(x: torch.Tensor) -> torch.Tensor:
        lif.reset()
        return lif(x)

    wrapper = torch.nn.Module()
    wrapper.forward = run  # type: ignore[method-assign]
    return time_fwd_bwd(wrapper, shape, reps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=21)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {time.strftime('%Y-%m-%d %H:%M')}")
    for shape in SHAPES:
        ref_reps = max(5, args.reps // 3) if shape[0] * shape[2] > 10**5 else args.reps
        ref = time_fwd_bwd(N.LIF(kernel="reference"), shape, ref_reps)
        line = [f"LIF fwd+bwd {list(shape)}: reference {ref:.2f} ms"]
        probe = torch.zeros(shape[0], 1)
        if select_kernel(N.LIF(kernel="auto"), probe)[0] == "cpp":
            cpp = time_fwd_bwd(N.LIF(kernel="cpp"), shape, args.reps)
            line.append(f"cpp {cpp:.2f} ms ({ref / cpp:.1f}x)")
        if torch.cuda.is_available():
            try:
                tri = time_fwd_bwd(N.LIF(kernel="triton"), shape, args.reps, "cuda")
                line.append(f"triton(cuda) {tri:.3f} ms")
            except ValueError as err:
                line.append(f"triton unavailable ({err})")
        sj = _spikingjelly(shape, ref_reps)
        if sj is not None:
            line.append(f"spikingjelly {sj:.2f} ms")
        print(", ".join(line))


if __name__ == "__main__":
    main()
