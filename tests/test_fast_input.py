"""Fast input: the event input layer has the same draws, currents and gradients as the dense
path, and assembly rewrites the forward module to use it where it fits."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from snnkit.assembly.fast_input import FastInput, build_forward, fast_input_module
from snnkit.assembly.forward import EncodedForward
from snnkit.components import encoders, layers
from snnkit.components import neurons as N
from snnkit.kernels.cpu import build
from snnkit.kernels.event_linear import dense_event_linear, event_linear
from snnkit.kernels.random_stream import draw_seed, poisson_spikes, threshold16

pytestmark = pytest.mark.usefixtures("cpu_isa")  # every SIMD path of this CPU


@pytest.fixture
def ext(cpu_isa: str):
    module = build.cpu_extension()
    if module is None:
        pytest.skip("the C++ kernels cannot be built here")
    return module


def _images(b: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (b, d), generator=g, dtype=torch.uint8)
    x[torch.rand(b, d, generator=g) < 0.4] = 0  # MNIST-like: many dark pixels
    x[0, :3] = torch.tensor([0, 255, 1], dtype=torch.uint8)
    return x


def test_threshold_is_intensity_within_one_65536th() -> None:
    # thr(v) = round(v · 65536 / 255): thr(0) = 0, thr(1) = round(257.0039) = 257,
    # thr(128) = round(32896.50196) = 32897, thr(255) = 65536.
    v = torch.arange(256, dtype=torch.uint8)
    thr = threshold16(v)
    assert thr[0] == 0 and thr[1] == 257 and thr[128] == 32897 and thr[255] == 65536
    err = (thr.double() / 65536 - v.double() / 255).abs().max()
    assert err <= 0.5 / 65536 + 1e-15


@pytest.mark.parametrize("steps", [1, 5, 64, 70, 130])
def test_compiled_draws_equal_pytorch_generator(ext, steps: int) -> None:
    x = _images(4, 23)
    for seed in (0, 1, -(2**63), 2**63 - 1, 123456789):
        assert torch.equal(ext.event_spikes(x, steps, seed), poisson_spikes(x, steps, seed))


def test_spike_probability_matches_intensity(ext) -> None:
    values = torch.tensor([0, 1, 51, 128, 200, 254, 255], dtype=torch.uint8)
    x = values.repeat(64, 1)  # [64, 7]
    steps = 2048
    rate = ext.event_spikes(x.contiguous(), steps, draw_seed()).mean((0, 1))  # 131072 draws/value
    assert rate[0] == 0 and rate[-1] == 1
    p = values.double() / 255
    sd = (p * (1 - p) / (64 * steps)).sqrt()
    assert ((rate.double() - p).abs() <= 5 * sd + 1e-12).all(), (rate, p)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("bias", [True, False])
def test_event_layer_equals_dense_layer(ext, dtype: torch.dtype, tol: float, bias: bool) -> None:
    x = _images(5, 3 * 7, seed=1)
    x[:, 5] = 0  # a pixel dark in every sample
    x = x.view(5, 3, 7)
    g = torch.Generator().manual_seed(2)
    w = torch.randn(4, 21, generator=g, dtype=dtype, requires_grad=True)
    b = torch.randn(4, generator=g, dtype=dtype, requires_grad=True) if bias else None
    steps, seed = 70, 987654321
    out = event_linear(x, w, b, steps, seed, ext=ext)
    grad = torch.randn(out.shape, generator=g, dtype=dtype)
    params = [w, b] if bias else [w]
    grads = torch.autograd.grad(out, params, grad)
    dense = dense_event_linear(x, w, b, steps, seed)
    torch.testing.assert_close(out, dense, rtol=tol, atol=tol)
    for mine, want in zip(grads, torch.autograd.grad(dense, params, grad)):
        torch.testing.assert_close(mine, want, rtol=tol, atol=tol)
    # dark pixels never fire, so their weight columns get no gradient
    assert (grads[0][:, 5] == 0).all()


def test_hand_computed_event_layer(ext) -> None:
    # v = 255 always fires and v = 0 never: x = [[255, 0]], W = [[2, 5]], b = [1], T = 3:
    # out[t] = 2 + 1 = 3 at every step; dL/dW = [Σ_t g_t, 0] = [6, 0] for g = [1, 2, 3]; dL/db = 6.
    x = torch.tensor([[255, 0]], dtype=torch.uint8)
    w = torch.tensor([[2.0, 5.0]], requires_grad=True)
    b = torch.tensor([1.0], requires_grad=True)
    out = event_linear(x, w, b, 3, ext=ext)
    assert out.flatten().tolist() == [3.0, 3.0, 3.0]
    out.backward(torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1))
    assert w.grad.tolist() == [[6.0, 0.0]] and b.grad.tolist() == [6.0]


def test_seed_comes_from_torch_global_rng(ext) -> None:
    x = _images(3, 10)
    w = torch.randn(2, 10)
    torch.manual_seed(5)
    a = event_linear(x, w, None, 20, ext=ext)
    b = event_linear(x, w, None, 20, ext=ext)
    torch.manual_seed(5)
    assert torch.equal(event_linear(x, w, None, 20, ext=ext), a)
    assert not torch.equal(a, b)


def _model(double: bool = True) -> nn.Sequential:
    model = nn.Sequential(layers.Flatten(), layers.Linear(12, 3), N.LIF(tau=2.0))
    return model.double() if double else model


def test_fast_input_runs_event_layer_then_rest(ext) -> None:
    enc = encoders.PoissonEncoder(time_steps=16)
    model = _model()
    fast = fast_input_module(enc, model)
    assert isinstance(fast, FastInput)
    resets: list[int] = []
    model[2].reset = lambda: resets.append(1)  # neuron state is cleared after every batch
    x = _images(4, 12, seed=3).view(4, 3, 4)
    torch.manual_seed(0)
    out = fast(x)
    torch.manual_seed(0)
    seed = draw_seed()
    lin = model[1]
    expect = model[2](dense_event_linear(x, lin.weight, lin.bias, 16, seed))
    assert out.shape == (16, 4, 3) and torch.equal(out, expect)
    out.sum().backward()
    assert lin.weight.grad is not None and lin.bias.grad is not None
    assert resets == [1]


def test_event_layer_spikes_count_as_saved_activations(ext) -> None:
    """The spike bitmask the event layer keeps for its weight gradient (one bit per input
    value and step, in int64 words) is a saved tensor, so the memory meter and the memory
    estimate built on it count it."""
    model = _model()
    fast = fast_input_module(encoders.PoissonEncoder(time_steps=16), model)
    x = _images(4, 12, seed=3).view(4, 3, 4)
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fast(x)
    masks = [t for t in saved if t.dtype == torch.int64]
    assert [tuple(t.shape) for t in masks] == [(4, 12, 1)]  # 16 steps fit one word
    out.sum().backward()
    assert model[1].weight.grad is not None


def test_fast_input_falls_back_for_float_input(ext) -> None:
    enc = encoders.PoissonEncoder(time_steps=8)
    model = _model(double=False)
    fast = fast_input_module(enc, model)
    x = torch.rand(2, 3, 4)
    torch.manual_seed(1)
    out = fast(x)
    torch.manual_seed(1)
    assert torch.equal(out, model(enc(x)))


def test_fast_input_recognises_only_poisson_then_linear(ext) -> None:
    enc = encoders.PoissonEncoder(time_steps=8)
    assert fast_input_module(enc, nn.Sequential(layers.Linear(12, 3), N.LIF())) is not None
    assert fast_input_module(encoders.LatencyEncoder(time_steps=8), _model()) is None
    conv = nn.Sequential(layers.Conv2d(1, 2, 3), layers.Flatten(), N.LIF())
    assert fast_input_module(enc, conv) is None
    single = _model()
    for m in single:
        m.step_mode = "s"
    assert fast_input_module(enc, single) is None
    assert fast_input_module(enc, N.LIF()) is None


def test_build_forward_rewrites_only_when_asked(ext) -> None:
    enc, model = encoders.PoissonEncoder(time_steps=8), _model(double=False)
    assert isinstance(build_forward(enc, model, fast_input=True), FastInput)
    dense = build_forward(enc, model, fast_input=False)
    assert isinstance(dense, EncodedForward)
    assert isinstance(
        build_forward(encoders.LatencyEncoder(time_steps=8), model, fast_input=True), EncodedForward
    )
    x = torch.rand(2, 3, 4)
    torch.manual_seed(2)
    out = dense(x)
    torch.manual_seed(2)
    assert torch.equal(out, model(enc(x)))


def test_assembly_builds_the_forward_module_the_engine_asks_for(ext) -> None:
    from snnkit.assembly.assemble import assemble
    from snnkit.plugins.loader import build_registry
    from snnkit.recipes.loader import load_recipe

    recipe = {
        "seed": 0,
        "time_steps": 4,
        "dataset": {"name": "synthetic", "num_samples": 8, "shape": [1, 4, 4], "num_classes": 4},
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": ["flatten", {"name": "linear", "in_features": 16, "out_features": 4}, "lif"],
        },
        "loss": "mse_rate",
        "optimizer": "adam",
        "train": {"device": "cpu"},
    }
    registry = build_registry(entry_points=False)
    fast = assemble(load_recipe(recipe), registry, fast_input=True)
    assert isinstance(fast.forward_module, FastInput) and fast.forward_module.model is fast.model
    assert isinstance(assemble(load_recipe(recipe), registry).forward_module, EncodedForward)
    off = load_recipe(recipe, ["train.fast_input=false"])
    assert isinstance(assemble(off, registry, fast_input=True).forward_module, EncodedForward)


def test_uint8_input_gets_no_gradient(ext) -> None:
    x = _images(2, 6)
    w = torch.randn(3, 6, requires_grad=True)
    out = event_linear(x, w, None, 10, ext=ext)
    (gw,) = torch.autograd.grad(out.sum(), [w])
    assert not x.requires_grad and math.isfinite(float(gw.sum()))


def test_fast_input_leaves_models_off_the_cpu_alone(ext) -> None:
    model = _model().to("meta")  # stands in for a CUDA model: the dense (Triton) path runs there
    assert fast_input_module(encoders.PoissonEncoder(time_steps=8), model) is None


_TRITON_POISSON_SCRIPT = """
import torch
from snnkit.kernels.random_stream import poisson_spikes
from snnkit.kernels.cuda.triton_poisson import triton_poisson_spikes

g = torch.Generator().manual_seed(0)
for b, d, t, seed in [(3, 50, 7, 12345), (2, 17, 1, -5), (4, 33, 100, 2**63 - 7), (1, 5, 9, 1),
                      (2, 3, 4, 0), (1, 1, 5, -(2**63))]:
    x = torch.randint(0, 256, (b, d), dtype=torch.uint8, generator=g)
    x[0, 0], x[-1, -1] = 0, 255
    got, want = triton_poisson_spikes(x, t, seed), poisson_spikes(x, t, seed)
    assert got.dtype == torch.float32 and torch.equal(got, want), (b, d, t, seed)
    seed_t = torch.tensor(seed if seed < 2**63 else seed - 2**64, dtype=torch.int64)
    assert torch.equal(triton_poisson_spikes(x, t, seed_t), want), (b, d, t, seed)
print("ok")
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the compiled kernel is tested")
def test_triton_poisson_kernel_draws_the_same_spikes_in_interpreter() -> None:
    """The CUDA Poisson kernel, run by Triton's CPU interpreter (set before triton is imported,
    hence a subprocess), reproduces the PyTorch generator bit for bit, odd T and extreme seeds
    included."""
    pytest.importorskip("triton")
    import os
    import subprocess
    import sys

    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _TRITON_POISSON_SCRIPT],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_poisson_encoder_equals_cpu_generator() -> None:
    pytest.importorskip("triton")
    x = _images(64, 784)
    enc = encoders.PoissonEncoder(time_steps=100)
    torch.manual_seed(5)
    seed = draw_seed("cuda")
    torch.manual_seed(5)
    got = enc(x.cuda())
    assert got.is_cuda and torch.equal(got.cpu(), poisson_spikes(x, 100, seed))


def _unpack(masks: torch.Tensor, steps: int) -> torch.Tensor:
    """Bitmask words [B, D, ceil(T/64)] (bit t % 64 of word t // 64) -> spikes [T, B, D]."""
    words = masks.view(torch.int64)
    bits = torch.arange(64, dtype=torch.int64)
    per_bit = (words.unsqueeze(-1) >> bits) & 1  # [B, D, NW, 64]
    return per_bit.flatten(2)[..., :steps].permute(2, 0, 1).float()


@pytest.mark.parametrize("steps", [1, 5, 31, 32, 33, 64, 70, 100, 130])
def test_event_forward_draws_equal_pytorch_generator(ext, steps: int) -> None:
    """The draws the training kernel makes (vectorised where the CPU allows) are the generator's."""
    x = _images(19, 37, seed=4)
    x[3, :] = 255
    w = torch.zeros(10, 37)
    for seed in (0, 1, -(2**63), 2**63 - 1, 123456789):
        _, masks = ext.event_forward(x, w, steps, seed, True)
        assert torch.equal(_unpack(masks, steps), poisson_spikes(x, steps, seed)), seed


@pytest.mark.parametrize("classes", [1, 10, 16, 17])
@pytest.mark.parametrize("batch,steps", [(5, 70), (19, 33), (64, 100), (3, 1)])
def test_event_layer_equals_dense_for_every_width(
    ext, classes: int, batch: int, steps: int
) -> None:
    """Float32 widths up to 16 take the one-vector path, wider ones the general loop; batches
    beyond one group of 8 samples sum partial gradients."""
    x = _images(batch, 50, seed=classes)
    g = torch.Generator().manual_seed(classes + batch)
    w = torch.randn(classes, 50, generator=g, requires_grad=True)
    out = event_linear(x, w, None, steps, 2024, ext=ext)
    grad = torch.randn(out.shape, generator=g)
    (mine,) = torch.autograd.grad(out, [w], grad)
    dense = dense_event_linear(x, w, None, steps, 2024)
    (want,) = torch.autograd.grad(dense, [w], grad)
    torch.testing.assert_close(out, dense, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mine, want, rtol=1e-5, atol=1e-4)


def test_event_gradient_does_not_depend_on_thread_count(ext) -> None:
    x = _images(64, 784, seed=9)
    w = torch.randn(10, 784, generator=torch.Generator().manual_seed(0), requires_grad=True)
    grad = torch.randn(100, 64, 10, generator=torch.Generator().manual_seed(1))
    threads = torch.get_num_threads()
    grads = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            out = event_linear(x, w, None, 100, 77, ext=ext)
            grads.append(torch.autograd.grad(out, [w], grad)[0])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(grads[0], grads[1]) and torch.equal(grads[0], grads[2])


@pytest.mark.usefixtures("only_builtins")
def test_a_training_run_asks_assembly_for_fast_input(ext, tmp_path, monkeypatch) -> None:
    import snnkit
    from snnkit.assembly import assemble as assembly

    built: list[nn.Module] = []

    def recording(*args, **kwargs):
        built.append(build_forward(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(assembly, "build_forward", recording)
    recipe = {
        "seed": 0,
        "time_steps": 4,
        "dataset": {"name": "synthetic", "num_samples": 32, "shape": [1, 4, 4], "num_classes": 4},
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": ["flatten", {"name": "linear", "in_features": 16, "out_features": 4}, "lif"],
        },
        "loss": "mse_rate",
        "optimizer": "adam",
        "train": {"epochs": 1, "batch_size": 16, "device": "cpu"},
        "output": {"tensorboard": False},
    }
    snnkit.run(recipe, out=tmp_path / "fast")
    fast_run = type(built[-1])  # the memory estimate measures `full` through one before
    snnkit.run(recipe, ["train.fast_input=false"], out=tmp_path / "dense")
    assert [fast_run, type(built[-1])] == [FastInput, EncodedForward]
