"""Synaptic delays: a known train shifted, DCLS taps and gradients, the sigma schedule, the
trainer's epoch hook and the delay-longer-than-T check."""

from __future__ import annotations

import math

import pytest
import torch

from snnkit.assembly.assemble import assemble
from snnkit.components.delays import DCLSDelay, Delay, dcls_kernel, dcls_sigma, delay_shift
from snnkit.components.functional import reset_net, start_epoch
from snnkit.errors import RecipeError
from snnkit.plugins.loader import get_registry
from snnkit.recipes.loader import load_recipe

pytestmark = pytest.mark.usefixtures("only_builtins")


def test_delay_shifts_a_known_train_per_channel() -> None:
    x = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]).view(5, 1, 2)
    y = delay_shift(x, torch.tensor([0, 2]))
    assert y.view(5, 2).tolist() == [[1, 0], [0, 0], [1, 1], [0, 1], [0, 0]]


@pytest.mark.parametrize("delays", [[1, 3], 2])
def test_delay_layer_is_the_same_in_both_step_modes(delays: list[int] | int) -> None:
    layer = Delay(delays)
    x = torch.randn(6, 3, 2, 4)  # [T, B, C, L]: channels are the first per-step axis
    y = layer(x)
    d = torch.tensor(delays if isinstance(delays, list) else [delays] * 2)
    for c in range(2):
        torch.testing.assert_close(y[d[c] :, :, c], x[: 6 - d[c], :, c])
        assert not y[: d[c], :, c].any()
    layer.step_mode = "s"
    ys = torch.stack([layer(x[t]) for t in range(6)])
    torch.testing.assert_close(ys, y)
    reset_net(layer)
    assert layer._buffer is None


def test_dcls_kernel_is_a_normalised_gaussian_at_the_position() -> None:
    w = torch.tensor([[2.0]])
    taps = dcls_kernel(w, torch.tensor([[1.0]]), 1.0, 4)
    g = [math.exp(-0.5 * (k - 1.0) ** 2) for k in range(4)]
    expect = [2.0 * v / sum(g) for v in g]
    torch.testing.assert_close(taps.view(-1), torch.tensor(expect), rtol=1e-5, atol=1e-6)
    sharp = dcls_kernel(w, torch.tensor([[2.0]]), 0.05, 4)  # σ → 0: an integer delay of 2
    torch.testing.assert_close(sharp.view(-1), torch.tensor([0.0, 0.0, 2.0, 0.0]))


def test_dcls_positions_get_the_gradient_of_the_equation() -> None:
    p = torch.tensor([[1.3]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[0.7]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, w: dcls_kernel(w, p, 0.8, 5), (p, w))


def test_dcls_layer_delays_the_input_by_its_learned_positions() -> None:
    layer = DCLSDelay(1, 1, max_delay=3, sigma_init=0.05, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.positions.fill_(2.0)
    x = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0]).view(5, 1, 1)
    assert layer(x).view(-1).tolist() == pytest.approx([0, 0, 1, 0, 0], abs=1e-6)
    layer.step_mode = "s"
    ys = torch.stack([layer(x[t]) for t in range(5)])
    layer.step_mode = "m"
    torch.testing.assert_close(ys, layer(x))


def test_dcls_both_step_modes_agree_and_positions_learn() -> None:
    torch.manual_seed(0)
    layer = DCLSDelay(3, 2, max_delay=4, bias=True)
    x = torch.randn(7, 2, 3)
    y = layer(x)
    y.square().sum().backward()
    assert layer.positions.grad is not None and layer.positions.grad.abs().sum() > 0
    layer.step_mode = "s"
    ys = torch.stack([layer(x[t]) for t in range(7)])
    torch.testing.assert_close(ys, y.detach(), rtol=1e-5, atol=1e-6)


def test_sigma_schedule_and_the_epoch_hook() -> None:
    assert dcls_sigma(1, 5, 4.0, 0.5) == 4.0
    assert dcls_sigma(5, 5, 4.0, 0.5) == pytest.approx(0.5)
    assert dcls_sigma(3, 5, 4.0, 0.5) == pytest.approx(4.0 * (0.5 / 4.0) ** 0.5)
    model = torch.nn.Sequential(DCLSDelay(2, 2, max_delay=7))  # sigma_init = 4
    start_epoch(model, 5, 5)
    assert float(model[0].sigma) == pytest.approx(0.5)
    assert float(model.state_dict()["0.sigma"]) == pytest.approx(0.5)


def _recipe(layer: dict, time_steps: int = 4):
    return load_recipe(
        {
            "time_steps": time_steps,
            "dataset": {"name": "synthetic", "num_samples": 8, "shape": [6], "num_classes": 10},
            "encoder": "direct",
            "model": {
                "name": "sequential",
                "layers": [
                    {"name": "linear", "in_features": 6, "out_features": 5},
                    "lif",
                    layer,
                    "lif",
                ],
            },
            "loss": "ce_rate",
            "optimizer": "adam",
            "train": {"epochs": 3, "batch_size": 4, "device": "cpu"},
        }
    )


def test_a_delay_longer_than_t_is_refused_with_its_path() -> None:
    layer = {"name": "dcls_delay", "in_features": 5, "out_features": 10, "max_delay": 4}
    with pytest.raises(RecipeError, match=r"model\.layers\[2\] \(dcls_delay\): a delay of 4 steps"):
        assemble(_recipe(layer), get_registry())
    fixed = {"name": "delay", "delays": [0, 1, 2, 3, 9]}
    with pytest.raises(RecipeError, match=r"model\.layers\[2\] \(delay\).*time_steps 4"):
        assemble(_recipe(fixed), get_registry())


def test_the_trainer_sharpens_dcls_every_epoch(tmp_path) -> None:
    import snnkit

    layer = {"name": "dcls_delay", "in_features": 5, "out_features": 10, "max_delay": 3,
             "sigma_init": 2.0, "sigma_final": 0.5}  # fmt: skip
    recipe = _recipe(layer).to_dict()
    recipe["train"]["max_batches"] = 1
    recipe["output"] = {"tensorboard": False}
    result = snnkit.run(recipe, out=tmp_path / "run")
    state = torch.load(result.run_dir / "last.pt", weights_only=False)
    sigma = [v for k, v in _flat(state).items() if k.endswith("sigma")]
    assert sigma and float(sigma[0]) == pytest.approx(0.5)  # epoch 3 of 3


def _flat(state, prefix: str = "") -> dict:
    out = {}
    if isinstance(state, dict):
        for k, v in state.items():
            out.update(_flat(v, f"{prefix}{k}."))
    elif isinstance(state, torch.Tensor):
        out[prefix.rstrip(".")] = state
    return out
