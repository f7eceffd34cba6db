"""The default recipe's training step, snnkit's engine vs SpikingJelly 2.0, interleaved.

On a shared or busy machine two benchmarks run one after the other see different loads, so
their ratio says more about the load than about the code. Here both run in one process, in
rounds: each round times ``--per-round`` batches of snnkit's real engine step
(:class:`snnkit.engine.trainer.Trainer`: the batch source, the step strategy, the loss read,
the optimizer step — what ``snnkit run`` does per batch, without the epoch's checkpoints and
test) and then one batch of SpikingJelly's multi-step network
(``spikingjelly_baseline.Baseline``: encode, forward, loss, backward, Adam, reset). Figures:
the median ms/batch of each over all rounds, their ratio, and the median over rounds of the
per-round ratio (SpikingJelly's batch / the median of that round's snnkit batches), which is
the one to quote under load. The same figures are also given in CPU time of this process
(``time.process_time``): with one thread, the time the step ran, without the time it waited
for a core that other processes held — a millisecond step on an oversubscribed machine often
waits a whole scheduler slice, a 100 ms one averages that out. Prints the CPU model, the SIMD
path (``SNNKIT_CPU_ISA``) and the load average before and after. Usage::

    SNNKIT_DATA=/work/shared/data python benchmarks/bench_interleaved.py [--threads 1] \
        [--rounds 30] [--per-round 10]

(run with an interpreter that has ``spikingjelly==2.0.0``; see ``spikingjelly_baseline.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RECIPE = HERE.parent / "recipes" / "lif_mnist.yaml"


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``?`` when unreadable)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def load_average() -> str:
    """The 1-minute load average and the number of CPUs, e.g. ``3.1 on 2 CPUs``."""
    try:
        one = f"{os.getloadavg()[0]:.1f}"
    except OSError:
        one = "?"
    return f"{one} on {os.cpu_count()} CPUs"


def _trainer(out: str):  # type: ignore[no-untyped-def]
    """A Trainer of the default recipe (fast input, as ``snnkit run`` assembles it)."""
    from snnkit.assembly.assemble import assemble
    from snnkit.engine.progress import SilentReporter
    from snnkit.engine.trainer import Trainer
    from snnkit.plugins.loader import get_registry
    from snnkit.recipes.loader import load_recipe

    recipe = load_recipe(str(RECIPE), ["train.epochs=1", "train.device=cpu"])
    torch.manual_seed(recipe.seed)
    exp = assemble(recipe, get_registry(), fast_input=True)
    return Trainer(exp, Path(out), SilentReporter())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--per-round", type=int, default=10, help="snnkit batches per round")
    args = ap.parse_args()
    os.environ.setdefault("SNNKIT_DATA", "/work/shared/data")
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(HERE))
    import spikingjelly_baseline as sjb

    if not sjb.available():
        sys.exit("spikingjelly is not importable: run with an environment that has it")
    from snnkit.kernels.cpu.isa import resolve_isa

    print(
        f"{cpu_model()}, SIMD path {resolve_isa()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), {time.strftime('%Y-%m-%d %H:%M')}, "
        f"load average {load_average()}"
    )
    with tempfile.TemporaryDirectory() as out:
        trainer = _trainer(out)
        data = trainer.train_data
        bs = trainer.recipe.train.batch_size
        batches = (args.rounds * args.per_round) + 3
        perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
        source = data.epoch(perm, bs, 0, batches, 1)
        xs, ys = data.inputs[perm], data.targets[perm]
        base = sjb.Baseline()

        def ours(b: int) -> tuple[float, float]:
            t0, c0 = time.perf_counter(), time.process_time()
            x, y = next(source)
            trainer._train_step(x, y, 1, b)
            return time.perf_counter() - t0, time.process_time() - c0

        def theirs(b: int) -> tuple[float, float]:
            x, y = xs[b * bs : (b + 1) * bs], ys[b * bs : (b + 1) * bs]
            t0, c0 = time.perf_counter(), time.process_time()
            base.step(x, y)
            return time.perf_counter() - t0, time.process_time() - c0

        for b in range(3):  # warm-up: first calls allocate, build or load kernels
            ours(b)
        for b in range(sjb.WARMUP_BATCHES):
            theirs(b)
        mine: list[tuple[float, float]] = []
        sj: list[tuple[float, float]] = []
        for r in range(args.rounds):
            mine += [ours(3 + r * args.per_round + k) for k in range(args.per_round)]
            sj.append(theirs(sjb.WARMUP_BATCHES + r))
    print(f"SpikingJelly {base.version}; load average now {load_average()}")
    for clock, name in ((0, "wall"), (1, "CPU")):
        ours_s = [t[clock] for t in mine]
        sj_s = [t[clock] for t in sj]
        rounds = [
            sj_s[r] / statistics.median(ours_s[r * args.per_round : (r + 1) * args.per_round])
            for r in range(args.rounds)
        ]
        ms, sj_ms = statistics.median(ours_s) * 1e3, statistics.median(sj_s) * 1e3
        print(
            f"{name:>4} time: snnkit engine step median {ms:.3f} ms/batch (min "
            f"{min(ours_s) * 1e3:.3f}, {len(ours_s)} batches), SpikingJelly multi-step median "
            f"{sj_ms:.2f} ms/batch (min {min(sj_s) * 1e3:.2f}, {len(sj_s)} batches): ratio of "
            f"medians {sj_ms / ms:.1f}x, median per-round ratio {statistics.median(rounds):.1f}x "
            f"({min(rounds):.1f}x to {max(rounds):.1f}x)"
        )


if __name__ == "__main__":
    main()
