"""Recurrent LIF layer forward + backward through time: the fused C++ kernel against the
reference autograd loop (and SpikingJelly's ``LinearRecurrentContainer`` when importable).

Layer: ``recurrent`` around LIF(tau=2, Sigmoid α=4), all-to-all W_rec with bias, float32;
shapes ``[T, B, N]`` = ``[28, 128, 256]`` (the rsnn_smnist recipe's hidden layer) and
``[100, 32, 128]``. Each figure is the median of ``--reps`` timed iterations of
``out = layer(x); out.backward(grad)`` after 3 warm-up runs, all in this process. SpikingJelly's
container is built with its own LIF in single-step mode (its container steps through time), with
the same weights. Usage::

    python benchmarks/bench_recurrent.py [--threads 2] [--reps 11]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from snnkit.components import neurons as N
from snnkit.components.recurrent import Recurrent
from snnkit.kernels.recurrent import select_kernel

SHAPES = ((28, 128, 256), (100, 32, 128))


def time_fwd_bwd(layer: torch.nn.Module, shape: tuple[int, ...], reps: int) -> float:
    """Median ms of forward + backward over ``reps`` runs (3 warm-up runs first)."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(shape, generator=g) * 1.5).requires_grad_(True)
    grad = torch.randn(shape, generator=g)
    times = []
    for i in range(reps + 3):
        t0 = time.perf_counter()
        layer(x).backward(grad)
        if i >= 3:
            times.append(time.perf_counter() - t0)
        x.grad = None
    return statistics.median(times) * 1e3


def _layer(n: int, kernel: str) -> Recurrent:
    torch.manual_seed(0)
    return Recurrent(n, N.LIF(tau=2.0), kernel=kernel)


def _spikingjelly(n: int, shape: tuple[int, ...], reps: int) -> float | None:
    try:
        from spikingjelly.activation_based import functional, layer, neuron, surrogate
    except ImportError:
        return None
    lif = neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(alpha=4.0))
    container = layer.LinearRecurrentContainer(lif, in_features=n, out_features=n, bias=True)
    container.step_mode = "m"

    def run(x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(container)
        return container(x)

    wrapper = torch.nn.Module()
    wrapper.forward = run  # type: ignore[method-assign]
    return time_fwd_bwd(wrapper, shape, reps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=11)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {time.strftime('%Y-%m-%d %H:%M')}")
    for shape in SHAPES:
        n = shape[-1]
        ref = time_fwd_bwd(_layer(n, "reference"), shape, args.reps)
        line = [f"recurrent LIF fwd+bwd {list(shape)}: reference {ref:.2f} ms"]
        if select_kernel(_layer(n, "auto"), torch.zeros(1, 1, n))[0] == "cpp":
            cpp = time_fwd_bwd(_layer(n, "cpp"), shape, args.reps)
            line.append(f"cpp {cpp:.2f} ms ({ref / cpp:.1f}x)")
        else:
            line.append("cpp unavailable")
        sj = _spikingjelly(n, shape, args.reps)
        line.append("SpikingJelly not importable" if sj is None else f"SpikingJelly {sj:.2f} ms")
        print(", ".join(line), flush=True)


if __name__ == "__main__":
    main()
