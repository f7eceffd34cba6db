"""``csnn_mnist``'s network per training batch: snnkit vs the same network as a plain ANN vs
SpikingJelly 2.0 (when importable), measured alternately in one run.

- snnkit: the recipe's model and TET loss through the forward module ``snnkit run`` assembles
  (its fast paths: the direct-input prefix once per sample, channels-last; direct input over
  T = 4 steps, Conv-BN-LIF-MaxPool x 2, Linear-LIF, Linear-LI), AdamW.
- plain ANN: the same convolutions, batch norms, pools and linear layers with ReLU in place of
  LIF (and no LI readout), run once over the T·B images ``[T*B, 1, 28, 28]``, cross-entropy,
  AdamW: the cost the issue compares against (target: snnkit ≤ 0.7x of it).
- SpikingJelly: the same network with ``layer.*`` and ``neuron.LIFNode(tau=2, detach_reset,
  ATan(2), step_mode='m')``, TET-like mean cross-entropy over steps.

Each round times one batch of each (forward + loss + backward + optimizer step) in turn, so the
load on a shared machine falls on all of them alike; the script prints the median ms per batch
over the rounds and the ratios. Usage::

    python benchmarks/bench_conv.py --threads 2 --rounds 20 [--batch 64] [--dense]
        [--ann-channels-last] [--bf16]

``--dense`` adds snnkit's dense path (encoder then model over T·B copies, contiguous layout:
what ran before issue 17), ``--ann-channels-last`` the plain ANN with channels-last weights,
``--bf16`` snnkit under CPU bf16 autocast.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "csnn_mnist.yaml"


def snnkit_step(
    batch: int, fast: bool = True, bf16: bool = False
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """One training step of the recipe's model through ``forward_module`` as ``snnkit run``
    assembles it (``fast``: its fast paths, as in single-process training; else the dense
    encoder-then-model path; ``bf16``: forward and loss under CPU bf16 autocast, as
    ``train.amp`` runs them)."""
    from snnkit.assembly.assemble import assemble
    from snnkit.components.functional import reset_net
    from snnkit.plugins.loader import get_registry
    from snnkit.recipes.loader import load_recipe

    recipe = load_recipe(str(RECIPE), ["train.device=cpu", f"train.batch_size={batch}"])
    exp = assemble(recipe, get_registry(), fast_input=fast)
    exp.model.train()
    forward = exp.forward_module

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        exp.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = exp.loss(forward(x), y)
        loss.backward()
        exp.optimizer.step()
        reset_net(exp.model)

    return step


def ann_network() -> nn.Module:
    """csnn_mnist's layers with ReLU for LIF: a plain CNN over T·B images."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(3136, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


def ann_step(
    steps: int, channels_last: bool = False
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    net = ann_network().train()
    if channels_last:
        net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        xs = x.float().div(255).repeat(steps, 1, 1, 1) if x.dtype == torch.uint8 else x
        xs = xs.repeat(steps, 1, 1, 1) if xs.shape[0] == x.shape[0] else xs
        loss = F.cross_entropy(net(xs), y.repeat(steps))
        loss.backward()
        opt.step()

    return step


def sj_step(steps: int) -> Callable[[torch.Tensor, torch.Tensor], None] | None:
    if importlib.util.find_spec("spikingjelly") is None:
        return None
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def lif() -> nn.Module:
        return neuron.LIFNode(
            tau=2.0,
            detach_reset=True,
            surrogate_function=surrogate.ATan(alpha=2.0),
            step_mode="m",
        )

    net = nn.Sequential(
        layer.Conv2d(1, 32, 3, padding=1, bias=False),
        layer.BatchNorm2d(32),
        lif(),
        layer.MaxPool2d(2),
        layer.Conv2d(32, 64, 3, padding=1, bias=False),
        layer.BatchNorm2d(64),
        lif(),
        layer.MaxPool2d(2),
        layer.Flatten(),
        layer.Dropout(0.2),
        layer.Linear(3136, 256),
        lif(),
        layer.Linear(256, 10),
    )
    functional.set_step_mode(net, "m")
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        xs = x.float().div(255) if x.dtype == torch.uint8 else x
        out = net(xs.unsqueeze(0).repeat(steps, 1, 1, 1, 1))  # [T, B, 10]
        loss = F.cross_entropy(out.flatten(0, 1), y.repeat(steps))
        loss.backward()
        opt.step()
        functional.reset_net(net)

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument(
        "--dense", action="store_true", help="also time snnkit's dense path (no fast paths)"
    )
    ap.add_argument(
        "--ann-channels-last",
        action="store_true",
        help="also time the plain ANN with channels-last weights (a tuned baseline)",
    )
    ap.add_argument(
        "--bf16", action="store_true", help="also time snnkit under CPU bf16 autocast (opt-in)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))
    runners: dict[str, Callable[[torch.Tensor, torch.Tensor], None]] = {
        "snnkit": snnkit_step(args.batch),
        "plain ANN over T*B images": ann_step(args.steps),
    }
    if args.dense:
        runners["snnkit, dense path (before #17)"] = snnkit_step(args.batch, fast=False)
    if args.bf16:
        runners["snnkit, bf16 autocast (opt-in)"] = snnkit_step(args.batch, bf16=True)
    if args.ann_channels_last:
        runners["plain ANN, channels-last"] = ann_step(args.steps, channels_last=True)
    sj = sj_step(args.steps)
    if sj is not None:
        runners["SpikingJelly 2.0 (torch backend)"] = sj
    times: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(args.rounds + 2):
        for name, step in runners.items():
            t0 = time.perf_counter()
            step(x, y)
            if r >= 2:  # two warm-up rounds (allocator, oneDNN primitives)
                times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    print(
        f"csnn_mnist network, batch {args.batch}, T = {args.steps}, {args.threads} threads, "
        f"median of {args.rounds} alternating rounds (torch {torch.__version__})"
    )
    for name, ms in med.items():
        print(f"  {name:34} {ms:8.1f} ms/batch")
    ann = med["plain ANN over T*B images"]
    print(f"snnkit / plain ANN: {med['snnkit'] / ann:.2f}x (target <= 0.7x)")
    if sj is None:
        print("spikingjelly not importable: no SpikingJelly baseline (see benchmarks/README.md)")
    else:
        sjm = med["SpikingJelly 2.0 (torch backend)"]
        print(f"SpikingJelly / snnkit: {sjm / med['snnkit']:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
