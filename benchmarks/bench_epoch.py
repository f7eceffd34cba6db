"""One training epoch of the default recipe (recipes/lif_mnist.yaml) on real MNIST.

Prints seconds per epoch (938 batches of 64), ms per batch, test accuracy after the epoch and
peak RSS, for the fast input path (``FastInput``: event-driven Poisson + Linear, C++ LIF
kernel). For comparison it times a few batches of the dense path (Poisson encoder, Linear,
C++ LIF) and of the plain reference path (dense, autograd loop) in the same process and prints
their extrapolated epoch time and ratio. When ``spikingjelly`` is importable it also times
SpikingJelly 2.0's multi-step network on the same tensors (``spikingjelly_baseline.py``,
``--sj-batches`` batches) and prints its extrapolated epoch time and the ratio. Usage::

    SNNKIT_DATA=/work/shared/data python benchmarks/bench_epoch.py [--threads 2] [--compare 40] \
        [--sj-batches 30]

``--via-run`` instead times ``snnkit.run`` (the real engine, whatever it wires up) for one
epoch and reports its ``train_seconds``.

``--device cuda`` times the GPU path instead (data held on the GPU, Triton Poisson encoder,
cuBLAS Linear, Triton LIF): one epoch with the loss read every batch (as the engine does), one
without, test accuracy, and a few batches with the plain PyTorch encoder and the reference LIF
loop for comparison. With ``--via-run`` it times the engine on the GPU.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "lif_mnist.yaml"


def _experiment(device: str = "cpu"):
    from snnkit.assembly.assemble import assemble
    from snnkit.plugins.loader import get_registry
    from snnkit.recipes.loader import load_recipe

    recipe = load_recipe(str(RECIPE), ["train.epochs=1", f"train.device={device}"])
    return assemble(recipe, get_registry())


def _set_kernel(model: torch.nn.Module, name: str) -> None:
    for m in model.modules():
        if hasattr(m, "kernel"):
            m.kernel = name


def _step(exp, forward, x, y, read: bool = True) -> float:
    from snnkit.components.functional import reset_net

    exp.optimizer.zero_grad(set_to_none=True)
    out = forward(x)
    loss = exp.loss(out.float(), y)
    value = loss.item() if read else 0.0
    loss.backward()
    exp.optimizer.step()
    reset_net(exp.model)
    return value


def _dense(exp):
    """The dense path: encoder, then the whole multi-step model."""
    return lambda x: exp.model(exp.encoder(x))


def _accuracy(exp, forward, xs, ys, bs: int = 1000) -> float:
    from snnkit.components.functional import reset_net

    correct = 0
    exp.model.eval()
    with torch.no_grad():
        for i in range(0, len(ys), bs):
            out = forward(xs[i : i + bs])
            reset_net(exp.model)
            correct += int((out.mean(0).argmax(-1) == ys[i : i + bs]).sum())
    exp.model.train()
    return correct / len(ys)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _per_batch_ms(exp, forward, xs, ys, batches: int, bs: int = 64) -> float:
    times = []
    for b in range(batches):
        x, y = xs[b * bs : (b + 1) * bs], ys[b * bs : (b + 1) * bs]
        t0 = time.perf_counter()
        _step(exp, forward, x, y)
        _sync(xs.device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[2:] if len(times) > 4 else times) * 1e3


def _spikingjelly(xs, ys, epoch_s: float, batches: int, sj_batches: int) -> None:
    """Time SpikingJelly's multi-step network on the same tensors and print the ratio."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import spikingjelly_baseline as sjb

    if sj_batches <= 0:
        return
    if not sjb.available():
        print(
            "spikingjelly not importable: no baseline (run this script with the interpreter "
            "of an environment that has spikingjelly==2.0.0, see benchmarks/README.md)"
        )
        return
    sj = sjb.time_baseline(xs, ys, sj_batches, epoch_batches=batches)
    print(sj.summary())
    print(
        f"snnkit {epoch_s:.2f} s/epoch vs SpikingJelly {sj.epoch_s:.2f} s/epoch "
        f"(extrapolated): {sj.epoch_s / epoch_s:.1f}x (target: <= 8 s and >= 15x)"
    )


def _epoch_s(exp, forward, xs, ys, bs: int, read: bool) -> float:
    batches = math.ceil(len(ys) / bs)
    _sync(xs.device)
    t0 = time.perf_counter()
    for b in range(batches):
        _step(exp, forward, xs[b * bs : (b + 1) * bs], ys[b * bs : (b + 1) * bs], read)
    _sync(xs.device)
    return time.perf_counter() - t0


def _cuda_main(args: argparse.Namespace) -> None:
    """The GPU path: dense Triton Poisson encoder + Linear + Triton LIF, data on the GPU."""
    from snnkit.assembly.assemble import on_device

    dev = torch.device("cuda")
    print(f"GPU: {torch.cuda.get_device_name(dev)}")
    torch.manual_seed(0)
    exp = _experiment("cuda")
    xs, ys = on_device(exp.train_data, dev)
    tx, ty = on_device(exp.test_data, dev)
    order = torch.randperm(len(ys), generator=torch.Generator().manual_seed(0)).to(dev)
    xs, ys = xs[order], ys[order]
    bs = 64
    batches = math.ceil(len(ys) / bs)
    forward = _dense(exp)
    for b in range(3):  # warm-up: Triton compiles its kernels on first use
        _step(exp, forward, xs[b * bs : (b + 1) * bs], ys[b * bs : (b + 1) * bs])
    epoch = _epoch_s(exp, forward, xs, ys, bs, read=True)
    t1 = time.perf_counter()
    acc = _accuracy(exp, forward, tx, ty)
    _sync(dev)
    test_s = time.perf_counter() - t1
    print(
        f"cuda, loss read every batch: {epoch:.2f} s/epoch ({epoch / batches * 1e3:.3f} "
        f"ms/batch), test acc after 1 epoch {acc:.2%} (eval {test_s:.2f} s; target <= 2 s/epoch)"
    )
    lean = _epoch_s(exp, forward, xs, ys, bs, read=False)
    print(f"cuda, no per-batch read: {lean:.2f} s/epoch ({lean / batches * 1e3:.3f} ms/batch)")
    fast_ms = _per_batch_ms(exp, forward, xs, ys, args.compare)
    import snnkit.kernels.random_stream as ev

    ref_poisson = ev.poisson_spikes
    plain = lambda x: exp.model(ref_poisson(x.reshape(len(x), -1), 100, ev.draw_seed(dev)))  # noqa: E731
    plain_ms = _per_batch_ms(exp, plain, xs, ys, args.compare)
    _set_kernel(exp.model, "reference")
    ref_ms = _per_batch_ms(exp, plain, xs, ys, args.compare)
    _set_kernel(exp.model, "auto")
    print(
        f"median ms/batch over {args.compare} batches (synchronised): triton encoder + triton "
        f"LIF {fast_ms:.3f}, pytorch encoder + triton LIF {plain_ms:.3f} "
        f"({plain_ms / fast_ms:.1f}x), pytorch encoder + reference LIF {ref_ms:.3f} "
        f"({ref_ms / fast_ms:.1f}x)"
    )
    print(f"peak GPU memory {torch.cuda.max_memory_allocated(dev) / 2**20:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compare", type=int, default=40, help="batches timed per comparison path")
    ap.add_argument("--via-run", action="store_true", help="time snnkit.run for one epoch")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument(
        "--sj-batches",
        type=int,
        default=30,
        help="batches of SpikingJelly's multi-step baseline to time (0: skip)",
    )
    args = ap.parse_args()
    os.environ.setdefault("SNNKIT_DATA", "/work/shared/data")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {time.strftime('%Y-%m-%d %H:%M')}")

    if args.via_run:
        import snnkit

        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            res = snnkit.run(
                str(RECIPE),
                overrides=[
                    "train.epochs=1",
                    f"train.device={args.device}",
                    f"train.num_threads={args.threads}",
                ],
                out=out,
            )
            wall = time.perf_counter() - t0
        m = res.metrics[0]
        print(
            f"snnkit.run: train {m['train_seconds']:.2f} s/epoch, test {m['test_seconds']:.2f} s,"
            f" wall {wall:.1f} s, test acc {m['test_acc']:.2%}"
        )
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        return
    if args.device == "cuda":
        _cuda_main(args)
        return

    from snnkit.assembly.assemble import on_device
    from snnkit.assembly.fast_input import fast_input_module

    torch.manual_seed(0)
    exp = _experiment()
    xs, ys = on_device(exp.train_data, torch.device("cpu"))
    tx, ty = on_device(exp.test_data, torch.device("cpu"))
    fast = fast_input_module(exp.encoder, exp.model)
    if fast is None:
        sys.exit("fast_input_module returned None (C++ kernels unavailable?)")
    order = torch.randperm(len(ys), generator=torch.Generator().manual_seed(0))
    xs, ys = xs[order], ys[order]
    bs = 64
    batches = math.ceil(len(ys) / bs)
    _step(exp, fast, xs[:bs], ys[:bs])  # warm-up (compiles on first use)
    t0 = time.perf_counter()
    for b in range(batches):
        _step(exp, fast, xs[b * bs : (b + 1) * bs], ys[b * bs : (b + 1) * bs])
    epoch = time.perf_counter() - t0
    t1 = time.perf_counter()
    acc = _accuracy(exp, fast, tx, ty)
    test_s = time.perf_counter() - t1
    print(
        f"event input + cpp LIF: {epoch:.2f} s/epoch ({batches} batches, "
        f"{epoch / batches * 1e3:.2f} ms/batch), test acc after 1 epoch {acc:.2%} "
        f"(eval {test_s:.2f} s)"
    )

    fast_ms = _per_batch_ms(exp, fast, xs, ys, args.compare)
    dense_ms = _per_batch_ms(exp, _dense(exp), xs, ys, args.compare)
    _set_kernel(exp.model, "reference")
    ref_ms = _per_batch_ms(exp, _dense(exp), xs, ys, args.compare)
    _set_kernel(exp.model, "auto")
    print(
        f"median ms/batch over {args.compare} batches: event {fast_ms:.2f}, dense+cpp "
        f"{dense_ms:.2f} ({dense_ms / fast_ms:.1f}x), dense+reference {ref_ms:.2f} "
        f"({ref_ms / fast_ms:.1f}x; {ref_ms * batches / 1e3:.1f} s/epoch extrapolated)"
    )
    _spikingjelly(xs, ys, epoch, batches, args.sj_batches)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
