"""Overhead of cost counting (snnkit.costs.counting) on the engine's test pass.

Times the test pass the trainer runs after every epoch (``Trainer.evaluate``: the experiment's
forward module as ``snnkit run`` builds it — on the CPU the event input layer where the recipe
allows — loss, accuracy, firing rates) with ``costs.enabled: false`` (per-batch firing-rate
hooks, the path without counting) and with counting (the default), alternating one pass of
each per round, and prints the median seconds of each and their ratio (target: <= 1.05). Also
the time spent inside the counting hooks themselves, as a fraction of the plain pass (less
sensitive to a loaded machine than the ratio). The recipe's dataset is replaced by synthetic
data of MNIST's shape unless ``--mnist`` is given (then ``$SNNKIT_DATA`` must hold MNIST).
Usage::

    python benchmarks/bench_counting.py [--recipe recipes/csnn_mnist.yaml] [--batches 40] \
        [--repeats 5] [--threads 2] [--device cpu] [--mnist]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnkit.assembly.assemble import assemble  # noqa: E402
from snnkit.costs import counting  # noqa: E402
from snnkit.engine.checkpoint import seed_everything  # noqa: E402
from snnkit.engine.progress import SilentReporter  # noqa: E402
from snnkit.engine.trainer import Trainer  # noqa: E402
from snnkit.plugins.loader import get_registry  # noqa: E402
from snnkit.recipes.loader import load_recipe  # noqa: E402

SYNTHETIC = "dataset={name: synthetic, num_samples: %d, shape: [1, 28, 28], num_classes: 10}"
HOOK_SECONDS = [0.0]


def _timed(method):  # the time spent inside the counting hooks themselves
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        method(*args, **kwargs)
        HOOK_SECONDS[0] += time.perf_counter() - t0

    return wrapper


def _trainer(recipe_path: str, sets: list[str], out: Path) -> Trainer:
    recipe = load_recipe(recipe_path, sets)
    seed_everything(recipe.seed)
    exp = assemble(recipe, get_registry(), fast_input=True)  # as snnkit run assembles it
    return Trainer(exp, out, SilentReporter())


def _pass(trainer: Trainer) -> float:
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    trainer.evaluate()
    sync()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "csnn_mnist.yaml"))
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mnist", action="store_true", help="use real MNIST test data")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe0 = load_recipe(args.recipe)
    bs = recipe0.train.eval_batch_size or recipe0.train.batch_size
    sets = [f"train.device={args.device}", "output.tensorboard=false"]
    if not args.mnist:
        sets.append(SYNTHETIC % (bs * args.batches))
    out = Path(tempfile.mkdtemp(prefix="bench_counting_"))
    plain = _trainer(args.recipe, [*sets, "costs.enabled=false"], out)
    counted = _trainer(args.recipe, sets, out)
    counted.exp.model.load_state_dict(plain.exp.model.state_dict())
    for trainer in (plain, counted, plain, counted):  # warm-up (kernel builds, allocator)
        _pass(trainer)
    hooks = [counting._Hook.__call__, counting._Hook.count_events]
    timed_hooks = [_timed(h) for h in hooks]
    p_times, c_times, inside = [], [], []
    for _ in range(args.repeats):
        p_times.append(_pass(plain))
        HOOK_SECONDS[0] = 0.0
        counting._Hook.__call__, counting._Hook.count_events = timed_hooks  # type: ignore
        c_times.append(_pass(counted))
        counting._Hook.__call__, counting._Hook.count_events = hooks  # type: ignore
        inside.append(HOOK_SECONDS[0] / p_times[-1])
    p, c = statistics.median(p_times), statistics.median(c_times)
    _, _, _, costs = counted.evaluate()
    assert costs is not None
    n = len(counted.test_data)
    print(
        f"recipe {Path(args.recipe).name} on {counted.device}: the engine's test pass over "
        f"{n} samples in batches of {bs} (T = {recipe0.time_steps}), forward module "
        f"{type(counted.exp.forward_module).__name__}, {args.repeats} rounds alternating, "
        f"torch threads {torch.get_num_threads()}"
    )
    runs = {"costs.enabled false:": p_times, "counting (default):": c_times}
    for label, times in runs.items():
        each = ", ".join(f"{t:.3f}" for t in times)
        print(f"test pass, {label:21} {statistics.median(times):.3f} s (median of {each})")
    print(f"overhead ratio: {c / p:.3f} (target <= 1.05)")
    inner = statistics.median(inside)
    print(f"time inside the counting hooks: {inner:.1%} of the plain pass (median)")
    total = costs["totals"]
    print(
        f"per sample: {total['sops']:,.0f} SOPs, {total['macs']:,.0f} MACs, "
        f"{total['energy_pj'] / 1e3:,.1f} nJ"
    )


if __name__ == "__main__":
    main()
