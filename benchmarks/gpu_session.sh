#!/usr/bin/env bash
# GPU checks and figures in one go, for a lent CUDA machine with PyTorch and Triton already
# installed and no network (run from the repository root). What it needs beside the tree:
#   .whl/      wheels of snnkit's pure-Python dependencies missing there (pydantic & co.)
#   .gpudata/  MNIST's four idx files, gzipped (snnkit reads .gz directly)
# Each step runs even if an earlier one failed; logs go to $OUT (or ./gpu-out).
#
#   bash benchmarks/gpu_session.sh            # everything: tests, kernel and epoch figures
#   QUICK=1 SKIP_NEURON_BENCH=1 FULL_SUITE=0 bash benchmarks/gpu_session.sh   # tests + engine
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
step() { echo; echo "=== $1 ($(date +%T))"; }

step environment
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
python3 -c "import sys, torch, triton; print(sys.version.split()[0], 'torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
nproc

if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || echo "wheel install failed"
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
if ls .gpudata/*.gz >/dev/null 2>&1; then
  mkdir -p /tmp/data/MNIST/raw && cp .gpudata/*.gz /tmp/data/MNIST/raw/
  export SNNKIT_DATA=/tmp/data
fi
python3 -c "import snnkit, pydantic; print('snnkit', snnkit.__version__, 'pydantic', pydantic.__version__)"

step "CUDA tests (Triton LIF/IF/PLIF vs reference, Poisson kernel, conformance on cuda, AMP)"
timeout 200 python3 -m pytest -q -p no:cacheprovider -n 12 -k "cuda or triton or Triton" \
  tests/test_kernels.py tests/test_fast_input.py tests/test_conformance.py \
  tests/test_surrogates.py tests/test_amp.py tests/test_optim.py tests/test_cuda_graphs.py 2>&1 | tee "$OUT/cuda_tests.log" | tail -25

if [ "${SKIP_NEURON_BENCH:-0}" != 1 ]; then
  step "LIF kernels (bench_neuron.py)"
  timeout 180 python3 benchmarks/bench_neuron.py --threads 16 --reps 51 2>&1 | tee "$OUT/bench_neuron.log"
fi

if [ "${QUICK:-0}" != 1 ]; then
step "default recipe, one epoch on the GPU (bench_epoch.py --device cuda)"
timeout 120 python3 benchmarks/bench_epoch.py --device cuda --compare 60 2>&1 | tee "$OUT/bench_epoch_cuda.log"

fi

step "default recipe through the engine: snnkit run, 3 epochs on cuda"
timeout 150 python3 -m snnkit run recipes/lif_mnist.yaml --set train.epochs=3 \
  --set train.device=cuda --out /tmp/run_cuda 2>&1 | tail -15
cp /tmp/run_cuda/metrics.jsonl "$OUT/metrics_cuda.jsonl" 2>/dev/null
python3 - <<'PY'
import json
for line in open("/tmp/run_cuda/metrics.jsonl"):
    m = json.loads(line)
    print(f"epoch {m['epoch']}: train {m['train_seconds']:.2f} s, test {m['test_seconds']:.2f} s, "
          f"test acc {m['test_acc']:.2%}")
PY

if [ "${QUICK:-0}" != 1 ]; then
step "the same without CUDA graphs (eager steps), 2 epochs"
timeout 120 python3 -m snnkit run recipes/lif_mnist.yaml --set train.epochs=2 \
  --set train.device=cuda --set train.cuda_graphs=false --out /tmp/run_eager 2>&1 | tail -4

step "where the engine's time goes on the GPU (cProfile, 1 epoch)"
timeout 90 python3 - <<'PY' 2>&1 | tee "$OUT/profile_cuda.txt" | head -45
import cProfile, pstats, tempfile
import snnkit
with tempfile.TemporaryDirectory() as out:
    snnkit.run("recipes/lif_mnist.yaml", overrides=["train.epochs=1", "train.device=cuda",
                                                    "train.max_batches=20"], out=out + "/warm")
    prof = cProfile.Profile()
    prof.enable()
    res = snnkit.run("recipes/lif_mnist.yaml", overrides=["train.epochs=1", "train.device=cuda"],
                     out=out + "/run")
    prof.disable()
print("train seconds", res.metrics[0]["train_seconds"])
pstats.Stats(prof).sort_stats("tottime").print_stats(30)
PY
fi

if [ "${FULL_SUITE:-1}" = 1 ]; then
  step "the whole test suite on this machine (xdist)"
  python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || echo "editable install failed"
  timeout 200 python3 -m pytest -q -p no:cacheprovider -n 14 --maxfail=25 2>&1 | tee "$OUT/suite_gpu.log" | tail -30
fi
echo "=== done ($(date +%T))"
