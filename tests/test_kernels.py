"""Multi-step kernels: every fused kernel equals the reference autograd loop.

Spikes must be bit-identical (the fused kernels replay the PyTorch float operations in the same
order); gradients agree to rounding. ``torch.autograd.gradcheck`` does not apply to spiking
outputs (Θ is piecewise constant, so finite differences see 0 where the surrogate gives g'),
so float64 runs are compared with the reference at 1e-12 instead.
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch

from snnkit import kernels
from snnkit.components import neurons as N
from snnkit.components import surrogates as S
from snnkit.kernels.cpu import build
from snnkit.kernels.forms import ChargeMode, SurrogateForm, SurrogateKind, form_of, surrogate_form


def _cpp_or_skip() -> None:
    if build.cpu_extension() is None:
        pytest.skip("the C++ kernels cannot be built here")


class Cubic(S.Surrogate):
    """A plugin-style surrogate without a closed-form derivative (autograd of the primitive)."""

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(3 * x) + 0.1 * x**3


SURROGATES = [
    S.Sigmoid(),
    S.Sigmoid(alpha=7.5),
    S.ATan(),
    S.PiecewiseQuadratic(alpha=1.5),
    S.PiecewiseExp(),
    S.SoftSign(),
    S.Erf(),
    S.SuperSpike(alpha=0.7),
    S.FastSigmoid(slope=10.0),
    S.PiecewiseLeakyReLU(w=0.5, c=0.05),
    S.Rect(alpha=0.8),
    S.QPseudoSpike(alpha=3.0),
    S.StraightThrough(),
    Cubic(),
]

# (class, extra kwargs): LIF with a power-of-two tau takes the multiply path, tau=3 divides.
NEURONS = [
    (N.IF, {}),
    (N.LIF, {"tau": 2.0}),
    (N.LIF, {"tau": 3.0}),
    (N.LIF, {"tau": 3.0, "decay_input": False}),
    (N.LIF, {"tau": 4.0, "decay_input": False}),
    (N.PLIF, {"init_tau": 3.0}),
    (N.PLIF, {"init_tau": 2.5, "decay_input": False}),
]

RESETS = [
    {"v_reset": 0.0},
    {"v_reset": -0.3, "v_threshold": 0.8},
    {"v_reset": None},
    {"v_reset": None, "v_threshold": 0.6},
]


def _run(neuron: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    out = neuron(x)
    out.backward(grad)
    pgrads = [p.grad.clone() for p in neuron.parameters()]
    for p in neuron.parameters():
        p.grad = None
    return out.detach(), x.grad, pgrads, neuron.v_seq


def _compare(
    cls, kw, kernel: str, x: torch.Tensor, grad: torch.Tensor, rtol: float, atol: float
) -> None:
    ref = cls(kernel="reference", record_v=True, **kw).to(x.dtype)
    fused = cls(kernel=kernel, record_v=True, **kw).to(x.dtype)
    fused.load_state_dict(ref.state_dict())
    o1, g1, p1, v1 = _run(ref, x, grad)
    o2, g2, p2, v2 = _run(fused, x, grad)
    assert torch.equal(o1, o2), f"spikes differ for {fused!r}"
    assert torch.equal(v1, v2), f"voltages differ for {fused!r}"
    torch.testing.assert_close(g2, g1, rtol=rtol, atol=atol, msg=lambda m: f"{fused!r}: {m}")
    for a, b in zip(p2, p1):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m: f"{fused!r} w: {m}")


def _inputs(dtype: torch.dtype, shape=(7, 3, 11), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 0.7 + 0.45).to(dtype)
    grad = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    return x, grad


@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
@pytest.mark.parametrize("sur", SURROGATES, ids=lambda s: type(s).__name__)
def test_cpp_matches_reference_float32(sur: S.Surrogate) -> None:
    _cpp_or_skip()
    x, grad = _inputs(torch.float32)
    for (cls, kw), reset, detach in itertools.product(NEURONS, RESETS, (False, True)):
        _compare(
            cls,
            {**kw, **reset, "detach_reset": detach, "surrogate": sur},
            "cpp",
            x,
            grad,
            rtol=1e-5,
            atol=1e-6,
        )


@pytest.mark.parametrize(
    "sur", [S.Sigmoid(), S.Rect(), S.PiecewiseLeakyReLU(), Cubic()], ids=lambda s: type(s).__name__
)
@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
def test_cpp_matches_reference_float64(sur: S.Surrogate) -> None:
    _cpp_or_skip()
    x, grad = _inputs(torch.float64, seed=1)
    for (cls, kw), reset, detach in itertools.product(NEURONS, RESETS, (False, True)):
        _compare(
            cls,
            {**kw, **reset, "detach_reset": detach, "surrogate": sur},
            "cpp",
            x,
            grad,
            rtol=1e-12,
            atol=1e-12,
        )


@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
def test_cpp_long_sequence_and_many_elements() -> None:
    # T=100 and more elements than one 256-wide block and one thread chunk.
    _cpp_or_skip()
    x, grad = _inputs(torch.float32, shape=(100, 4, 300), seed=2)
    _compare(N.LIF, {"tau": 2.0}, "cpp", x * 0.6, grad, rtol=1e-5, atol=1e-6)
    _compare(N.PLIF, {"init_tau": 3.0}, "cpp", x * 0.6, grad, rtol=1e-5, atol=1e-5)


@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
def test_hand_computed_lif_gradient() -> None:
    # LIF tau=2, decay_input, hard reset to 0, detach_reset, straight-through g' = 1, x = [1, 1]:
    #   H1 = 0 + (1 − 0)/2 = 0.5 → S1 = 0, V1 = 0.5;  H2 = 0.5 + (1 − 0.5)/2 = 0.75 → S2 = 0.
    # L = S1 + S2. Backward: gH2 = 1·1 = 1, gX2 = 1/2 = 0.5, gV1 = 1 − 1/2 = 0.5;
    #   gH1 = 1·1 + gV1 (1 − S1) = 1.5, gX1 = 1.5/2 = 0.75.
    _cpp_or_skip()
    neuron = N.LIF(surrogate=S.StraightThrough(), detach_reset=True, kernel="cpp")
    x = torch.tensor([[1.0], [1.0]], requires_grad=True)
    out = neuron(x)
    out.sum().backward()
    assert out.tolist() == [[0.0], [0.0]]
    assert x.grad.tolist() == [[0.75], [0.5]]


@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
def test_threshold_is_inclusive() -> None:
    # IF with x = [1.0, 0.4, 0.6]: H1 = 1.0 = V_th fires (Θ(0) = 1), V1 = 0; H2 = 0.4; H3 = 1.0 fires.
    _cpp_or_skip()
    neuron = N.IF(kernel="cpp")
    out = neuron(torch.tensor([[1.0], [0.4], [0.6]]))
    assert out.flatten().tolist() == [1.0, 0.0, 1.0]


@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
def test_retain_graph_backward_twice() -> None:
    _cpp_or_skip()
    x, grad = _inputs(torch.float32)
    x.requires_grad_(True)
    out = N.LIF(kernel="cpp")(x)
    out.backward(grad, retain_graph=True)
    first = x.grad.clone()
    out.backward(grad)
    torch.testing.assert_close(x.grad, 2 * first)


@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
def test_plif_weight_only_and_noncontiguous_input() -> None:
    _cpp_or_skip()
    x, grad = _inputs(torch.float32, shape=(3, 11, 6))
    x = x.transpose(0, 1)  # [11, 3, 6], not contiguous
    ref, fused = N.PLIF(kernel="reference"), N.PLIF(kernel="cpp")
    (ref(x) * grad.transpose(0, 1)).sum().backward()
    (fused(x) * grad.transpose(0, 1)).sum().backward()
    torch.testing.assert_close(fused.w.grad, ref.w.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
def test_no_grad_and_frozen_plif() -> None:
    _cpp_or_skip()
    x, _ = _inputs(torch.float32, shape=(5, 2, 3, 4))
    ref = N.PLIF(kernel="reference")
    fused = N.PLIF(kernel="cpp")
    with torch.no_grad():
        assert torch.equal(fused(x), ref(x))
    fused.w.requires_grad_(False)
    xr = x.clone().requires_grad_(True)
    fused(xr).sum().backward()
    assert fused.w.grad is None and xr.grad is not None


@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
def test_multi_step_equals_single_step_with_fused_kernel() -> None:
    _cpp_or_skip()
    x, grad = _inputs(torch.float64)
    multi = N.LIF(tau=3.0, v_reset=None)  # auto → cpp on CPU
    single = N.LIF(tau=3.0, v_reset=None, step_mode="s")
    assert kernels.select_kernel(multi, x)[0] == "cpp"
    xm, xs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_m = multi(xm)
    out_s = torch.stack([single(step) for step in xs])
    assert torch.equal(out_m, out_s)
    out_m.backward(grad)
    out_s.backward(grad)
    torch.testing.assert_close(xm.grad, xs.grad, rtol=1e-12, atol=1e-12)


def test_kernel_names_are_validated() -> None:
    with pytest.raises(ValueError, match="'auto', 'reference', 'cpp', 'triton'"):
        N.LIF(kernel="cuda")
    with pytest.raises(ValueError, match="'auto', 'reference' for QIF"):
        N.QIF(kernel="cpp")
    assert "kernel='reference'" in repr(N.LIF(kernel="reference"))


def test_auto_selection() -> None:
    x = torch.rand(4, 2, 3)
    assert kernels.select_kernel(N.QIF(), x)[0] == "reference"
    assert kernels.select_kernel(N.LIF(kernel="reference"), x)[0] == "reference"
    # a callable that is not a Surrogate cannot be fused: auto keeps the reference loop,
    # an explicit request says why it cannot run
    odd = N.LIF(surrogate=S.Sigmoid(spiking=False))
    assert kernels.select_kernel(odd, x)[0] == "reference"
    with pytest.raises(ValueError, match="cannot be fused"):
        kernels.select_kernel(N.LIF(surrogate=S.Sigmoid(spiking=False), kernel="cpp"), x)
    with pytest.raises(ValueError, match="CUDA float32"):
        kernels.select_kernel(N.LIF(kernel="triton"), x)
    with pytest.raises(ValueError, match="CPU float32/float64"):
        kernels.select_kernel(N.LIF(kernel="cpp"), x.half())
    assert kernels.select_kernel(N.LIF(), x.half())[0] == "reference"


def test_surrogate_forms() -> None:
    assert surrogate_form(S.Sigmoid()).kind == SurrogateKind.SIGMOID == 1
    assert surrogate_form(S.Sigmoid(alpha=3.0)) == SurrogateForm(
        SurrogateKind.SIGMOID, (3.0, 0.0, 0.0)
    )
    assert surrogate_form(Cubic()).kind == SurrogateKind.GENERIC
    assert surrogate_form(S.ATan(spiking=False)) is None
    assert surrogate_form(lambda x: x) is None
    # LIF with tau = 2 runs the exact multiply path (x / 2 == x * 0.5)
    assert N.LIF(tau=2.0).kernel_form().leak == 0.5
    assert N.LIF(tau=2.0).kernel_form().charge == ChargeMode.MUL
    assert N.LIF(tau=3.0).kernel_form().leak == 3.0
    assert N.LIF(tau=3.0, decay_input=False).kernel_form().charge == ChargeMode.LIF_NODECAY
    assert N.PLIF().kernel_form().leak is None


def test_subclass_overriding_derivative_is_generic() -> None:
    """A closed form is compiled in only while ``derivative`` is the built-in one."""

    class Steeper(S.Sigmoid):
        def derivative(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().derivative(x)

    class Same(S.Sigmoid):
        pass

    assert Steeper().kernel_form().kind == SurrogateKind.GENERIC
    assert Same(alpha=2.0).kernel_form() == S.Sigmoid(alpha=2.0).kernel_form()


@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
def test_plugin_surrogate_opts_into_a_closed_form() -> None:
    """A plugin surrogate whose g' is a built-in closed form declares it; it is then compiled in
    and matches the reference loop, which calls its own ``derivative``."""
    _cpp_or_skip()

    class Box(S.Surrogate):  # g' = 2 for |x| < 0.25 (Rect with alpha = 2)
        def primitive(self, x: torch.Tensor) -> torch.Tensor:
            return (2 * x + 0.5).clamp(0.0, 1.0)

        def derivative(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * (x.abs() < 0.25).to(x.dtype)

        def kernel_form(self) -> SurrogateForm:
            return SurrogateForm.of(SurrogateKind.RECT, 2.0, 0.25)

    x, grad = _inputs(torch.float32)
    _compare(N.LIF, {"surrogate": Box(), "tau": 3.0}, "cpp", x, grad, rtol=1e-5, atol=1e-6)


def test_neuron_subclasses_keep_or_lose_the_fused_kernel() -> None:
    """A subclass that only changes parameters is still fused; one that swaps the step function
    keeps the reference loop; a plugin declaring ``kernel_charge`` for an IF step is fused."""
    from snnkit.components import functional as F
    from snnkit.components.neurons import SpikingNeuron

    class Tuned(N.LIF):
        pass

    class Swapped(N.LIF):
        step_fn = staticmethod(F.if_step)

    class PluginIF(SpikingNeuron):
        step_fn = staticmethod(F.if_step)
        kernel_charge = ChargeMode.IF  # step_kwargs() is derived from step_fn's arguments

    assert "cpp" in kernels.kernel_names(Tuned) and form_of(Tuned()) is not None
    assert kernels.kernel_names(Swapped) == ("auto", "reference")
    assert form_of(Swapped()) is None
    plugin, builtin = form_of(PluginIF()), form_of(N.IF())
    assert plugin._replace(derivative=None) == builtin._replace(derivative=None)
    assert form_of(N.QIF()) is None and form_of(torch.nn.Identity()) is None


def test_failed_build_falls_back_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.utils.cpp_extension as cpp_ext

    def broken(*args, **kwargs):
        raise OSError("no compiler")

    build.cpu_extension.cache_clear()
    monkeypatch.setattr(cpp_ext, "load", broken)
    try:
        with pytest.warns(RuntimeWarning, match="could not be compiled"):
            assert build.cpu_extension() is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert build.cpu_extension() is None  # cached: no second warning
            x, _grad = _inputs(torch.float32)
            assert kernels.select_kernel(N.LIF(kernel="cpp"), x)[0] == "reference"
            out = N.LIF()(x)
            assert torch.equal(out, N.LIF(kernel="reference")(x))
    finally:
        build.cpu_extension.cache_clear()
        monkeypatch.undo()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("sur", SURROGATES, ids=lambda s: type(s).__name__)
def test_triton_matches_reference(sur: S.Surrogate) -> None:
    pytest.importorskip("triton")
    x, grad = _inputs(torch.float32, shape=(9, 3, 700))
    x, grad = x.cuda(), grad.cuda()
    for (cls, kw), reset, detach in itertools.product(NEURONS, RESETS, (False, True)):
        _compare(
            cls,
            {**kw, **reset, "detach_reset": detach, "surrogate": sur},
            "triton",
            x,
            grad,
            rtol=1e-5,
            atol=1e-5,
        )


_INTERPRETER_SCRIPT = """
import torch
from snnkit.components import neurons as N
from snnkit.components import surrogates as S
from snnkit.kernels.cuda import triton_neuron as tk

class Cubic(S.Surrogate):
    def primitive(self, x):
        return torch.sigmoid(3 * x) + 0.1 * x**3

g = torch.Generator().manual_seed(3)
x = torch.randn(6, 2, 40, generator=g) * 0.7 + 0.45
grad = torch.randn(6, 2, 40, generator=g)
cases = [(N.LIF, {"tau": 3.0}, S.Sigmoid()), (N.LIF, {"tau": 2.0, "v_reset": None}, S.Erf()),
         (N.IF, {"detach_reset": True}, S.QPseudoSpike()),
         (N.PLIF, {"init_tau": 3.0}, S.PiecewiseLeakyReLU()),
         (N.PLIF, {"decay_input": False, "v_reset": None}, S.ATan()), (N.LIF, {}, Cubic())]
for cls, kw, sur in cases:
    ref = cls(kernel="reference", record_v=True, surrogate=sur, **kw)
    xr = x.clone().requires_grad_(True)
    o1 = ref(xr)
    o1.backward(grad)
    want = [p.grad.clone() for p in ref.parameters()]
    for p in ref.parameters():
        p.grad = None
    xt = x.clone().requires_grad_(True)
    o2, v2 = tk.triton_multi_step(ref.kernel_form(), xt, True)
    o2.backward(grad)
    assert torch.equal(o1, o2) and torch.equal(ref.v_seq, v2), (cls.__name__, kw)
    torch.testing.assert_close(xt.grad, xr.grad, rtol=1e-5, atol=1e-5)
    for p, w in zip(ref.parameters(), want):
        torch.testing.assert_close(p.grad, w, rtol=1e-5, atol=1e-5)
# PLIF's k read by the kernels from a 1-element tensor (the CUDA path) == k passed as a number
plif = N.PLIF(init_tau=3.0)
form = plif.kernel_form()
k = torch.sigmoid(plif.w.detach()).float().reshape(1)
s1, h1, v1 = tk._launch_forward(form, x, float(k), True, True)
s2, h2, v2 = tk._launch_forward(form, x, k, True, True)
assert torch.equal(s1, s2) and torch.equal(h1, h2) and torch.equal(v1, v2)
print("ok")
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the compiled kernels are tested")
def test_triton_kernel_logic_in_interpreter() -> None:
    """The Triton kernels run on CPU tensors under TRITON_INTERPRET=1 (set before triton is
    imported, hence a subprocess) and match the reference in spikes, V and gradients."""
    pytest.importorskip("triton")
    import os
    import subprocess
    import sys

    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _INTERPRETER_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def test_reference_only_forces_the_reference_loop_and_nests() -> None:
    x = torch.zeros(3, 2, 4)
    lif = N.LIF(kernel="cpp")
    with kernels.reference_only():
        with kernels.reference_only():
            assert kernels.select_kernel(lif, x)[0] == "reference"
        assert kernels.reference_forced()
        assert kernels.select_kernel(lif, x)[0] == "reference"
    assert not kernels.reference_forced()


def test_reference_only_is_local_to_its_context() -> None:
    """Another thread does not see this thread's ``reference_only`` (a ContextVar, no global)."""
    import threading

    seen = []
    with kernels.reference_only():
        worker = threading.Thread(target=lambda: seen.append(kernels.reference_forced()))
        worker.start()
        worker.join()
        assert kernels.reference_forced()
    assert seen == [False]


def test_recipe_checks_compile_nothing(monkeypatch) -> None:
    """Assembling a recipe (its encoder and shape checks run two samples, the memory estimate
    a few) needs no C++ build, so a CUDA run or `snnkit validate` never waits for one: with
    the kernels not compiled yet the estimate runs the reference loops."""
    from snnkit.assembly.assemble import assemble
    from snnkit.plugins.loader import build_registry
    from snnkit.recipes.loader import load_recipe

    def refuse() -> None:
        raise AssertionError("the recipe checks asked for the C++ kernels")

    monkeypatch.setattr(build, "cpu_extension", refuse)
    monkeypatch.setattr(build, "kernels_ready", lambda isa=None: False)  # none compiled yet
    recipe = load_recipe(
        {
            "time_steps": 6,
            "encoder": "poisson",
            "loss": "mse_rate",
            "optimizer": "adam",
            "dataset": {
                "name": "synthetic",
                "num_samples": 32,
                "shape": [1, 4, 4],
                "num_classes": 3,
            },
            "model": {
                "name": "sequential",
                "layers": [
                    "flatten",
                    {"name": "linear", "in_features": 16, "out_features": 3},
                    "lif",
                ],
            },
            "train": {"device": "cpu"},
        }
    )
    exp = assemble(recipe, build_registry(entry_points=False))
    assert exp.model is not None


def test_cuda_division_is_pytorchs_float32_reciprocal() -> None:
    """On CUDA, ``x / tau`` in PyTorch is ``x * (1.0f / tau)``: the Triton LIF does the same."""
    pytest.importorskip("triton")
    import numpy as np

    from snnkit.kernels.cuda.triton_neuron import cuda_division

    lif = cuda_division(N.LIF(tau=3.0).kernel_form())
    assert lif.charge == ChargeMode.MUL and lif.leak == float(np.float32(1.0) / np.float32(3.0))
    assert (
        cuda_division(N.LIF(tau=3.0, decay_input=False).kernel_form()).charge
        == ChargeMode.MUL_NODECAY
    )
    for neuron in (N.IF(), N.PLIF(), N.LIF(tau=2.0)):
        form = neuron.kernel_form()
        assert cuda_division(form) == form
