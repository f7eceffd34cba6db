"""Resident memory of a long run, epoch by epoch: does anything grow late?

Runs a recipe (default ``recipes/lif_mnist.yaml``) for ``--epochs`` epochs in a fresh child
process through ``snnkit.run`` (run folder with TensorBoard and checkpoints, as ``snnkit run``
writes it). After every epoch the child reads its own ``VmRSS`` / ``VmHWM`` from
``/proc/self/status``; the parent also takes the child's lifetime peak (``ru_maxrss`` from
``wait4``, which counts start-up and exit too). It prints one row per epoch, then::

    growth = mean RSS of the last W epochs / mean RSS of the first W epochs
    peak   = lifetime peak RSS / mean RSS of the first W epochs

and exits with status 1 when either exceeds ``--threshold`` (default 1.25: a healthy run of
the default recipe measures about 1.0 and 1.1; the issue's run peaked at 2.5x). Linux only.

    SNNKIT_DATA=/work/shared/data python benchmarks/bench_memory.py                  # 100 epochs
    SNNKIT_DATA=/work/shared/data python benchmarks/bench_memory.py --epochs 30 \\
        --set train.max_batches=50                                                   # shorter
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG = "@@mem "


def vm_status() -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` of this process in MB (1 MB = 2^20 bytes)."""
    found: dict[str, float] = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    return found


def child(recipe: str, overrides: list[str], out: str) -> None:
    """Run the recipe here, printing one tagged JSON line per epoch."""
    sys.path.insert(0, str(ROOT))
    import snnkit
    from snnkit.engine.progress import SilentReporter

    start = time.perf_counter()

    class MemoryReporter(SilentReporter):
        def epoch_done(self, metrics: dict) -> None:
            row = {
                "epoch": metrics["epoch"],
                "test_acc": metrics["test_acc"],
                "seconds": time.perf_counter() - start,
                **vm_status(),
            }
            print(TAG + json.dumps(row), flush=True)

    snnkit.run(recipe, overrides, out=out, reporter=MemoryReporter())


def parent(args: argparse.Namespace) -> int:
    overrides = [f"train.epochs={args.epochs}", *(args.set or [])]
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--recipe",
            args.recipe,
            "--out",
            str(Path(tmp) / "run"),
        ]
        for item in overrides:
            cmd += ["--set", item]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        rows = []
        assert proc.stdout is not None
        print(f"{'epoch':>5} {'RSS MB':>8} {'HWM MB':>8} {'test acc':>9} {'s':>7}", flush=True)
        for line in proc.stdout:
            if not line.startswith(TAG):
                print(line.rstrip(), flush=True)
                continue
            row = json.loads(line[len(TAG) :])
            rows.append(row)
            print(
                f"{row['epoch']:>5} {row['VmRSS']:>8.0f} {row['VmHWM']:>8.0f} "
                f"{row['test_acc']:>9.2%} {row['seconds']:>7.1f}",
                flush=True,
            )
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not rows:
        print(f"the run failed (exit status {os.waitstatus_to_exitcode(status)})")
        return 2
    w = max(1, min(args.window, len(rows) // 2 or 1))
    first = sum(r["VmRSS"] for r in rows[:w]) / w
    last = sum(r["VmRSS"] for r in rows[-w:]) / w
    peak = usage.ru_maxrss / 1024
    growth, peak_ratio = last / first, peak / first
    print(
        f"RSS first {w} epochs {first:.0f} MB, last {w} epochs {last:.0f} MB: "
        f"growth {growth:.3f}x; lifetime peak {peak:.0f} MB: {peak_ratio:.3f}x "
        f"(threshold {args.threshold}x)"
    )
    if growth > args.threshold or peak_ratio > args.threshold:
        print("FAIL: resident memory grows over the run")
        return 1
    print("ok: resident memory stays flat")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "lif_mnist.yaml"))
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="recipe override, as snnkit run --set (repeatable)",
    )
    ap.add_argument("--window", type=int, default=5, help="epochs averaged at each end")
    ap.add_argument("--threshold", type=float, default=1.25)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.recipe, list(args.set or []), args.out)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
