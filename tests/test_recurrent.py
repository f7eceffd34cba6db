"""Tests of the recurrent layer: a hand-computed golden sequence, both step modes and every
kernel against a plain autograd loop (spikes exact, gradients float32 to 1e-5 relative), the
rsnn model, and recipes that wrap a non-neuron."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from snnkit.cli.app import app
from snnkit.components import functional as F
from snnkit.components import neurons as N
from snnkit.components.recurrent import Recurrent
from snnkit.components.surrogates import ATan, Sigmoid
from snnkit.kernels.cpu.build import cpu_extension

KERNELS = ["reference", "cpp"]


def needs(kernel: str) -> None:
    if kernel == "cpp" and cpu_extension() is None:
        pytest.skip("the C++ extension cannot be built here")


# -- golden -------------------------------------------------------------------------------
def golden_layer(mode: str = "all_to_all") -> Recurrent:
    layer = Recurrent(2, N.IF(), mode=mode).double()
    with torch.no_grad():
        if mode == "all_to_all":
            layer.weight.copy_(torch.tensor([[0.0, 0.5], [0.8, 0.0]]))
        else:
            layer.weight.copy_(torch.tensor([0.5, -2.0]))
        layer.bias.copy_(torch.tensor([0.1, 0.0]))
    return layer


X = [[1.0, 0.6], [0.2, 0.3], [0.5, 0.0]]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("step_mode", ["m", "s"])
def test_two_neurons_three_steps_all_to_all(kernel: str, step_mode: str) -> None:
    # I_i(t) = X_i(t) + sum_j W_ij S_j(t-1) + b_i, W = [[0, .5], [.8, 0]], b = [.1, 0]; IF, V_th 1
    # t1: S(0)=0: I = [1.1, 0.6]; H = [1.1, 0.6] -> S = [1, 0], V = [0, 0.6]
    # t2: I = [0.2 + 0 + .1, 0.3 + .8·1] = [0.3, 1.1]; H = [0.3, 1.7] -> S = [0, 1], V = [0.3, 0]
    # t3: I = [0.5 + .5·1 + .1, 0 + 0] = [1.1, 0]; H = [1.4, 0] -> S = [1, 0], V = [0, 0]
    needs(kernel)
    layer = golden_layer()
    layer.kernel = kernel
    x = torch.tensor(X, dtype=torch.float64).unsqueeze(1)  # [T=3, B=1, N=2]
    if step_mode == "m":
        out = layer(x)
    else:
        layer.step_mode = "s"
        out = torch.stack([layer(xt) for xt in x])
        assert layer.state[0].v.flatten().tolist() == pytest.approx([0.0, 0.0], abs=1e-12)
    assert out.squeeze(1).tolist() == [[1, 0], [0, 1], [1, 0]]


def test_two_neurons_three_steps_one_to_one() -> None:
    # I = X + w ⊙ S(t-1) + b, w = [.5, -2], b = [.1, 0]; IF
    # t1: I = [1.1, 0.6] -> S = [1, 0], V = [0, 0.6]
    # t2: I = [0.2 + .5 + .1, 0.3] = [0.8, 0.3]; H = [0.8, 0.9] -> S = [0, 0]
    # t3: I = [0.5 + 0 + .1, 0] = [0.6, 0]; H = [1.4, 0.9] -> S = [1, 0]
    layer = golden_layer("one_to_one")
    out = layer(torch.tensor(X, dtype=torch.float64).unsqueeze(1))
    assert out.squeeze(1).tolist() == [[1, 0], [0, 0], [1, 0]]


def test_recurrent_input_equation() -> None:
    x, s = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 1.0]])
    w, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([0.5, 0.25])
    assert F.recurrent_input(x, s, w, b).tolist() == [[4.5, 9.25]]  # 1+3+.5, 2+7+.25
    assert F.recurrent_input(x, s, torch.tensor([2.0, -1.0]), None).tolist() == [[3.0, 1.0]]


# -- against a plain autograd loop ----------------------------------------------------------
def plain_loop(x, w, b, *, tau, decay_input, v_reset, detach_reset, surrogate, k=None):
    """I = X + W S + b written out; LIF (or PLIF with k) charge; fire; reset — plain torch."""
    v = torch.full_like(x[0], 0.0 if v_reset is None else v_reset)
    s = torch.zeros_like(x[0])
    rest = 0.0 if v_reset is None else v_reset
    outs = []
    for xt in x:
        i = xt + (s @ w.t() if w.dim() == 2 else s * w)
        if b is not None:
            i = i + b
        a = k if k is not None else 1.0 / tau
        h = v + (i - (v - rest)) * a if decay_input else v - (v - rest) * a + i
        if k is None:
            h = v + (i - (v - rest)) / tau if decay_input else v - (v - rest) / tau + i
        s = surrogate(h - 1.0)
        sr = s.detach() if detach_reset else s
        v = h - 1.0 * sr if v_reset is None else h * (1.0 - sr) + v_reset * sr
        outs.append(s)
    return torch.stack(outs)


CASES = [
    # neuron kwargs, mode
    ({"tau": 3.0, "decay_input": True, "v_reset": 0.0, "detach_reset": False}, "all_to_all"),
    ({"tau": 2.0, "decay_input": False, "v_reset": None, "detach_reset": False}, "all_to_all"),
    ({"tau": 5.0, "decay_input": True, "v_reset": -0.2, "detach_reset": True}, "one_to_one"),
    ({"tau": 4.0, "decay_input": False, "v_reset": 0.0, "detach_reset": False}, "one_to_one"),
]


def _grads(out, tensors, gout):
    return torch.autograd.grad(out, tensors, gout)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("step_mode", ["m", "s"])
@pytest.mark.parametrize(("params", "mode"), CASES)
def test_matches_plain_autograd_loop(kernel, step_mode, params, mode) -> None:
    needs(kernel)
    g = torch.Generator().manual_seed(3)
    T, B, n = 12, 5, 16
    layer = Recurrent(n, N.LIF(ATan(alpha=2.0), **params), mode=mode, kernel=kernel)
    with torch.no_grad():
        layer.weight.mul_(3.0)
        layer.bias.uniform_(-0.2, 0.2, generator=g)
    x = (torch.rand(T, B, n, generator=g) * 3.0).requires_grad_(True)
    gout = torch.randn(T, B, n, generator=g)
    ref = plain_loop(x, layer.weight, layer.bias, surrogate=ATan(alpha=2.0), **params)
    if step_mode == "m":
        out = layer(x)
    else:
        layer.step_mode = "s"
        out = torch.stack([layer(xt) for xt in x])
    assert torch.equal(out, ref)
    assert 0.05 < float(out.detach().mean()) < 0.95
    mine = _grads(out, (x, layer.weight, layer.bias), gout)
    theirs = _grads(ref, (x, layer.weight, layer.bias), gout)
    for a, b in zip(mine, theirs):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max())), (
            (a - b).abs().max()
        )


@pytest.mark.parametrize("kernel", KERNELS)
def test_plif_and_if_match_the_reference_kernel(kernel) -> None:
    needs(kernel)
    g = torch.Generator().manual_seed(5)
    for neuron in (N.PLIF(Sigmoid(), init_tau=3.0), N.IF(Sigmoid(alpha=2.0), v_reset=None)):
        layer = Recurrent(8, neuron, kernel="reference")
        x = (torch.rand(10, 3, 8, generator=g) * 1.2).requires_grad_(True)
        gout = torch.randn(10, 3, 8, generator=g)
        ref = layer(x)
        r_grads = _grads(ref, (x, *layer.parameters()), gout)
        layer.kernel = kernel
        out = layer(x)
        assert torch.equal(out, ref)
        for a, b in zip(_grads(out, (x, *layer.parameters()), gout), r_grads):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (a - b).abs().max()


def test_alif_runs_the_reference_loop_and_the_kernel_refuses_it() -> None:
    layer = Recurrent(4, N.ALIF(), kernel="auto")
    x = torch.rand(5, 2, 4)
    assert layer(x).shape == (5, 2, 4)
    layer.kernel = "cpp"
    with pytest.raises(ValueError, match="no fused form"):
        layer(x)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode must be"):
        Recurrent(4, N.LIF(), mode="dense")
    with pytest.raises(ValueError, match="not a neuron"):
        Recurrent(4, torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="expects"):
        Recurrent(4, N.LIF())(torch.rand(3, 2, 5))


# -- recipes ------------------------------------------------------------------------------
RECIPE = """
time_steps: 28
dataset: {{name: synthetic, num_samples: 32, shape: [28, 28]}}
encoder: {{name: sequence, time_dim: -2}}
model:
  name: sequential
  layers:
    - flatten
    - {{name: linear, in_features: 28, out_features: 16}}
    - {{name: recurrent, features: 16, neuron: {neuron}}}
    - {{name: linear, in_features: 16, out_features: 10}}
    - li
loss: tet
optimizer: adam
train: {{epochs: 1, batch_size: 8}}
"""


@pytest.mark.parametrize(
    ("neuron", "expected"),
    [
        ("flatten", "model.layers[2]: layer 'recurrent': neuron: Flatten is not a neuron"),
        ("nope", "model.layers[2].neuron: unknown layer or neuron 'nope'"),
    ],
)
def test_a_recurrent_layer_around_a_non_neuron_is_one_line(neuron, expected, tmp_path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.format(neuron=neuron))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], lines


def test_recurrent_recipe_validates_with_a_neuron(tmp_path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.format(neuron="{name: alif, surrogate: atan}"))
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 0
