"""Overhead of cost counting (snnkit.analysis.counting) on a test pass.

Times the same test batches through a recipe's model (eval mode, no gradients, encoder + time
loop as ``snnkit profile`` runs them) without and with the counting hooks, interleaved, and
prints the median seconds of each and their ratio (target: <= 1.05). The recipe's dataset is
replaced by synthetic data of MNIST's shape unless ``--mnist`` is given (then
``$SNNKIT_DATA`` must hold MNIST). Usage::

    python benchmarks/bench_counting.py [--recipe recipes/csnn_mnist.yaml] [--batches 40] \
        [--repeats 3] [--threads 2] [--device cpu] [--mnist]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnkit.analysis.counting import CostCounter  # noqa: E402
from snnkit.assembly.assemble import assemble, on_device  # noqa: E402
from snnkit.engine.checkpoint import seed_everything  # noqa: E402
from snnkit.plugins.loader import get_registry  # noqa: E402
from snnkit.recipes.loader import load_recipe  # noqa: E402

SYNTHETIC = "dataset={name: synthetic, num_samples: %d, shape: [1, 28, 28], num_classes: 10}"


HOOK_SECONDS = [0.0]


def _timed(method):  # the time spent inside the counting hooks themselves
    def wrapper(self, *args):
        t0 = time.perf_counter()
        method(self, *args)
        HOOK_SECONDS[0] += time.perf_counter() - t0

    return wrapper


def _pass(exp, xs, bs: int, batches: int, counter: CostCounter | None) -> float:
    sync = torch.cuda.synchronize if exp.device.type == "cuda" else (lambda: None)
    seed_everything(exp.recipe.seed)
    sync()
    t0 = time.perf_counter()
    if counter is not None:
        counter.attach()
    with torch.no_grad():
        for b in range(batches):
            exp.forward_module(xs[b * bs : (b + 1) * bs])
            if counter is not None:
                counter.add_samples(bs)
    if counter is not None:
        counter.report()  # the one host sync counting needs
        counter.detach()
    sync()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "csnn_mnist.yaml"))
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mnist", action="store_true", help="use real MNIST test data")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe0 = load_recipe(args.recipe)
    bs = recipe0.train.eval_batch_size or recipe0.train.batch_size
    sets = [f"train.device={args.device}"]
    if not args.mnist:
        sets.append(SYNTHETIC % (bs * args.batches))
    recipe = load_recipe(args.recipe, sets)
    seed_everything(recipe.seed)
    exp = assemble(recipe, get_registry())
    exp.model.eval()
    xs, _ = on_device(exp.test_data, exp.device)
    batches = min(args.batches, len(xs) // bs)
    counter = CostCounter(exp.model)
    _pass(exp, xs, bs, 2, None)  # warm-up (kernel builds, allocator)
    _pass(exp, xs, bs, 2, counter)
    for name in ("_synapse", "_bn", "_neuron", "_free"):
        setattr(CostCounter, name, _timed(getattr(CostCounter, name)))
    plain, counted, inside = [], [], []
    for _ in range(args.repeats):
        plain.append(_pass(exp, xs, bs, batches, None))
        counter = CostCounter(exp.model)
        HOOK_SECONDS[0] = 0.0
        counted.append(_pass(exp, xs, bs, batches, counter))
        inside.append(HOOK_SECONDS[0] / plain[-1])
    p, c = statistics.median(plain), statistics.median(counted)
    totals = counter.report().totals
    print(
        f"recipe {Path(args.recipe).name} on {exp.device}: {batches} test batches of {bs} "
        f"(T = {recipe.time_steps}), {args.repeats} repeats, torch threads "
        f"{torch.get_num_threads()}"
    )
    print(f"test pass without counting: {p:.3f} s (median)")
    print(f"test pass with counting:    {c:.3f} s (median)")
    print(f"overhead ratio: {c / p:.3f} (target <= 1.05)")
    print(
        f"time inside the hooks: {statistics.median(inside):.1%} of the plain pass (median; "
        "less sensitive to a loaded machine than the ratio)"
    )
    print(
        f"per sample: {totals['sops_per_sample']:,.0f} SOPs, {totals['macs_per_sample']:,.0f} "
        f"MACs, {totals['energy_pj_per_sample'] / 1e3:,.1f} nJ"
    )


if __name__ == "__main__":
    main()
