"""The Open Neuromorphic SNN library benchmark workload: one ``Linear(n, n)`` + LIF layer,
batch 16, T = 500, forward + backward, for snnkit and (when importable beside it) SpikingJelly,
snnTorch and Norse.

Measured properly: input ``[T, 16, n]`` made once; every iteration builds a fresh graph
(a new forward from a reset state), runs ``out.sum().backward()``, and is synchronised
(``torch.cuda.synchronize`` on a GPU) before the clock stops; the figure is the median over
``--repeats`` iterations after one warm-up. Libraries are timed alternately (one iteration
each per round), so load on a shared machine falls on all of them alike. On CPU the default
sizes are n = 1024 and 4096 (the published benchmark's 4096 and 16384 are GPU sizes); on a GPU
``--dtype bf16`` runs the layer in bfloat16 autocast and the script reports peak memory.

    python benchmarks/open_neuromorphic.py --threads 2 [--sizes 1024 4096] [--repeats 5]
    python benchmarks/open_neuromorphic.py --device cuda --sizes 4096 16384 [--dtype bf16]

Published reference (RTX 4090, n = 16384): fastest fp32 PyTorch library 0.109 s, Spyx fp16
0.047 s, lowest peak memory 5.43 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

BATCH, STEPS = 16, 500
Layer = Callable[[torch.Tensor], torch.Tensor]


def snnkit_layer(n: int, device: torch.device) -> tuple[nn.Module, Layer]:
    from snnkit.components.functional import reset_net
    from snnkit.components.layers import Linear
    from snnkit.components.neurons import LIF

    net = nn.Sequential(Linear(n, n), LIF(tau=2.0)).to(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        reset_net(net)
        return net(x)

    return net, run


def spikingjelly_layer(n: int, device: torch.device) -> tuple[nn.Module, Layer]:
    from spikingjelly.activation_based import functional, layer, neuron

    net = nn.Sequential(layer.Linear(n, n), neuron.LIFNode(tau=2.0)).to(device)
    functional.set_step_mode(net, "m")

    def run(x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(net)
        return net(x)

    return net, run


def snntorch_layer(n: int, device: torch.device) -> tuple[nn.Module, Layer]:
    import snntorch as snn

    lin = nn.Linear(n, n).to(device)
    lif = snn.Leaky(beta=0.5).to(device)  # tau = 2: V decays by 1/2 per step
    net = nn.ModuleList([lin, lif])

    def run(x: torch.Tensor) -> torch.Tensor:
        mem = lif.init_leaky()
        cur = lin(x)  # the whole sequence in one matmul, as the others do
        out = []
        for t in range(x.shape[0]):
            spk, mem = lif(cur[t], mem)
            out.append(spk)
        return torch.stack(out)

    return net, run


def norse_layer(n: int, device: torch.device) -> tuple[nn.Module, Layer]:
    import norse.torch as norse

    lin = nn.Linear(n, n).to(device)
    lif = norse.LIF().to(device)  # loops over the first (time) dimension
    net = nn.ModuleList([lin, lif])

    def run(x: torch.Tensor) -> torch.Tensor:
        out, _ = lif(lin(x))
        return out

    return net, run


LIBRARIES: dict[str, tuple[str, Callable[[int, torch.device], tuple[nn.Module, Layer]]]] = {
    "snnkit": ("snnkit", snnkit_layer),
    "SpikingJelly": ("spikingjelly", spikingjelly_layer),
    "snnTorch": ("snntorch", snntorch_layer),
    "Norse": ("norse", norse_layer),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _once(run: Layer, x: torch.Tensor, autocast: contextlib.AbstractContextManager) -> float:
    _sync(x.device)
    t0 = time.perf_counter()
    with autocast:
        out = run(x)
    out.float().sum().backward()
    _sync(x.device)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # strict fp32
        torch.backends.cudnn.allow_tf32 = False
    sizes = args.sizes or ([1024, 4096] if device.type == "cpu" else [4096, 16384])
    libs = {
        name: make
        for name, (module, make) in LIBRARIES.items()
        if importlib.util.find_spec(module) is not None
    }
    missing = [name for name in LIBRARIES if name not in libs]
    print(
        f"Open Neuromorphic workload: Linear(n, n) + LIF, batch {BATCH}, T = {STEPS}, "
        f"forward + backward, {args.dtype}, {device} ({args.threads} threads), median of "
        f"{args.repeats}" + (f"; not installed: {', '.join(missing)}" if missing else "")
    )
    for n in sizes:
        torch.manual_seed(0)
        x = (torch.rand(STEPS, BATCH, n, device=device) < 0.2).float()
        runs = {name: make(n, device) for name, make in libs.items()}
        times: dict[str, list[float]] = {name: [] for name in runs}
        peaks: dict[str, float] = {}
        for r in range(args.repeats + 1):
            for name, (net, run) in runs.items():
                autocast: contextlib.AbstractContextManager = (
                    torch.autocast(device.type, dtype=torch.bfloat16)
                    if args.dtype == "bf16"
                    else contextlib.nullcontext()
                )
                net.zero_grad(set_to_none=True)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                t = _once(run, x, autocast)
                if device.type == "cuda":
                    peaks[name] = torch.cuda.max_memory_allocated(device) / 2**30
                if r > 0:
                    times[name].append(t)
        best = min(statistics.median(t) for t in times.values())
        for name, t in times.items():
            med = statistics.median(t)
            mem = f", peak {peaks[name]:.2f} GiB" if name in peaks else ""
            print(f"  n = {n:5d}  {name:12} {med:8.3f} s  ({med / best:.2f}x the fastest){mem}")


if __name__ == "__main__":
    main()
