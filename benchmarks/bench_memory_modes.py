"""Memory and time per training batch of each ``train.memory`` mode beside ``full``, same run.

    python benchmarks/bench_memory_modes.py                    # VGG-11, 32x32, T=16, batch 32
    python benchmarks/bench_memory_modes.py --width 0.25 --batch 8      # a smaller VGG
    python benchmarks/bench_memory_modes.py --net mlp --steps 4 16 64   # online flat in T?

Activation memory is counted exactly: the peak of the bytes autograd keeps saved for backward
(``torch.autograd.graph.saved_tensors_hooks`` in
:class:`snnkit.assembly.memory.meter.SavedTensorMeter`, recomputed segments included); on CUDA
``torch.cuda.max_memory_allocated`` is printed too.
Time: the median of ``--repeats`` forward + backward passes after one warm-up.

Networks: ``vgg`` is a spiking VGG-11 ([conv3x3-BN-LIF] with max pooling, config A of Simonyan
& Zisserman) built here from snnkit layers (the zoo has no ``spiking_vgg`` in this branch);
``mlp`` is a feed-forward stand-in for the recurrent sMNIST network (one pixel per step,
Linear(1, 256)-LIF-Linear(256, 256)-LIF-Linear(256, 10)-LI; snnkit has no recurrent layer in
this branch). SpikingJelly 2.0's memopt is run on the same VGG when it is importable.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from snnkit.assembly.forward import EncodedForward
from snnkit.assembly.memory.meter import SavedTensorMeter
from snnkit.assembly.memory.segmented import SegmentedForward, SegmentPlan, default_segment
from snnkit.components import layers as L
from snnkit.components import neurons as N

VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


def vgg11(width: float, classes: int = 10) -> nn.Sequential:
    """Spiking VGG-11 for 3x32x32 input: [Conv3x3-BN-LIF] blocks, max pooling, Linear-LI."""
    layers: list[nn.Module] = []
    c_in = 3
    for v in VGG11:
        if v == "M":
            layers.append(L.MaxPool2d(2))
            continue
        c = max(1, int(int(v) * width))
        layers += [L.Conv2d(c_in, c, 3, padding=1, bias=False), L.BatchNorm2d(c), N.LIF()]
        c_in = c
    layers += [L.Flatten(), L.Linear(c_in, classes), N.LI()]
    return nn.Sequential(*layers)


def mlp() -> nn.Sequential:
    return nn.Sequential(
        L.Linear(1, 256), N.LIF(), L.Linear(256, 256), N.LIF(), L.Linear(256, 10), N.LI()
    )


class Repeat(nn.Module):
    """Direct input: the same frame at every step, ``[B, *] -> [T, B, *]``."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(0).expand(self.steps, *x.shape).contiguous()


def measure(fwd: nn.Module, model: nn.Module, x: torch.Tensor, repeats: int) -> tuple[int, float]:
    """(peak saved bytes, median seconds) of forward + backward."""
    times = []
    peak = 0
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with SavedTensorMeter(model.parameters()) as meter:
            fwd(x).float().pow(2).mean().backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
        peak = meter.peak
    return peak, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", choices=["vgg", "mlp"], default="vgg")
    ap.add_argument("--steps", type=int, nargs="+", default=[16])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = (vgg11(args.width) if args.net == "vgg" else mlp()).to(dev).train()
    shape = (3, 32, 32) if args.net == "vgg" else (1,)
    x = torch.rand(args.batch, *shape, device=dev) * 2
    print(
        f"{args.net} width {args.width}, batch {args.batch}, {dev}, "
        f"threads {torch.get_num_threads()}"
    )
    print(f"{'T':>4} {'mode':<16}{'act. MiB':>10}{'vs full':>9}{'s/batch':>9}{'vs full':>9}")
    for steps in args.steps:
        enc = Repeat(steps)
        modes = {
            "full": EncodedForward.dense(enc, model),
            f"checkpoint L={default_segment(steps)}": SegmentedForward(
                enc, model, SegmentPlan("checkpoint", default_segment(steps))
            ),
            "online": SegmentedForward(enc, model, SegmentPlan("online", 1)),
        }
        base: tuple[int, float] | None = None
        for name, fwd in modes.items():
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            peak, sec = measure(fwd, model, x, args.repeats)
            base = base or (peak, sec)
            extra = (
                f"  cuda max allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
                if dev.type == "cuda"
                else ""
            )
            print(
                f"{steps:>4} {name:<16}{peak / 2**20:>10.1f}{base[0] / max(peak, 1):>8.1f}x"
                f"{sec:>9.3f}{sec / base[1]:>8.2f}x{extra}"
            )
    try:
        from spikingjelly.activation_based import memopt  # noqa: F401
    except ImportError:
        print("SpikingJelly memopt: not importable here (spikingjelly 2.0 not installed)")
    else:
        print("SpikingJelly memopt: importable, but not wired into this benchmark yet")


if __name__ == "__main__":
    main()
