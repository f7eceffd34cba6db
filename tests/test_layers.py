"""Layers: multi-step equals the torch op per step, single-step, dropout masks, validation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from snnkit.components.layers import (
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Dropout2d,
    Flatten,
    Linear,
)
from snnkit.plugins.loader import build_registry

# the catalogue registered by snnkit/builtins.py, sorted by name
BUILTIN_LAYERS = [(c.name, c.factory) for c in build_registry(entry_points=False).list("layer")]

LAYERS = dict(BUILTIN_LAYERS)

T, B = 3, 2

# name -> (snnkit params, the plain torch module with the same configuration, one step's shape)
CASES: dict[str, tuple[dict, Callable[[], nn.Module], tuple[int, ...]]] = {
    "linear": ({"in_features": 4, "out_features": 3}, lambda: nn.Linear(4, 3), (B, 4)),
    "conv1d": (
        {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1},
        lambda: nn.Conv1d(2, 3, 3, padding=1),
        (B, 2, 6),
    ),
    "conv2d": (
        {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2},
        lambda: nn.Conv2d(2, 3, 3, stride=2),
        (B, 2, 7, 7),
    ),
    "batchnorm1d": ({"num_features": 4}, lambda: nn.BatchNorm1d(4), (B, 4)),
    "batchnorm2d": ({"num_features": 2}, lambda: nn.BatchNorm2d(2), (B, 2, 3, 3)),
    "maxpool2d": ({"kernel_size": 2}, lambda: nn.MaxPool2d(2), (B, 2, 4, 5)),
    "avgpool2d": (
        {"kernel_size": [2, 3], "padding": 1},
        lambda: nn.AvgPool2d((2, 3), padding=1),
        (B, 2, 4, 5),
    ),
    "adaptive_avgpool2d": ({"output_size": 2}, lambda: nn.AdaptiveAvgPool2d(2), (B, 2, 5, 5)),
    "flatten": ({}, lambda: nn.Flatten(), (B, 2, 3, 2)),
    "dropout": ({"p": 0.5}, lambda: nn.Identity(), (B, 5)),  # compared in eval mode
    "dropout2d": ({"p": 0.5}, lambda: nn.Identity(), (B, 2, 3, 3)),
    "identity": ({}, lambda: nn.Identity(), (B, 4)),
    "random_shift": ({"max_shift": 2}, lambda: nn.Identity(), (B, 1, 5, 5)),  # eval mode
}


def _pair(name: str) -> tuple[nn.Module, nn.Module, tuple[int, ...]]:
    """The snnkit layer and an eval-mode torch twin sharing its state (random BN statistics)."""
    params, make_reference, step_shape = CASES[name]
    layer = LAYERS[name](**params)
    reference = make_reference()
    for module in (layer, reference):
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 2)
    reference.load_state_dict(layer.state_dict())
    layer.eval()
    reference.eval()
    return layer, reference, step_shape


#: layers with no single torch op to compare with, each tested against its equation elsewhere
ELSEWHERE = {
    "recurrent": "tests/test_recurrent.py",
    "residual": "tests/test_blocks.py",
    "repeat": "tests/test_blocks.py",
    "branches": "tests/test_blocks.py",
    "delay": "tests/test_delays.py",
    "dcls_delay": "tests/test_delays.py",
}


def test_catalogue_covers_every_case() -> None:
    assert set(LAYERS) - set(ELSEWHERE) == set(CASES) and len(LAYERS) == len(BUILTIN_LAYERS)
    assert set(ELSEWHERE) <= set(LAYERS)


@pytest.mark.parametrize("name", list(CASES))
def test_multi_step_equals_torch_op_applied_per_step(name: str) -> None:
    torch.manual_seed(0)
    layer, reference, step_shape = _pair(name)
    x = torch.randn(T, *step_shape)
    assert layer.step_mode == "m"
    expected = torch.stack([reference(x[t]) for t in range(T)])
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("name", list(CASES))
def test_single_step_equals_torch_op(name: str) -> None:
    torch.manual_seed(1)
    params, _, step_shape = CASES[name]
    layer = LAYERS[name](**params, step_mode="s")
    _, reference, _ = _pair(name)
    reference.load_state_dict(layer.state_dict())
    layer.eval()
    x = torch.randn(*step_shape)
    torch.testing.assert_close(layer(x), reference(x))


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_keys_are_torch_keys(name: str) -> None:
    layer, reference, _ = _pair(name)
    assert list(layer.state_dict()) == list(reference.state_dict())


@pytest.mark.parametrize(
    "factory, step_shape", [(BatchNorm1d, (B, 4)), (BatchNorm2d, (B, 4, 2, 2))]
)
def test_batchnorm_multi_step_training_pools_statistics_over_time_and_batch(
    factory: type, step_shape: tuple[int, ...]
) -> None:
    torch.manual_seed(2)
    layer = factory(4)
    reference = (nn.BatchNorm1d if factory is BatchNorm1d else nn.BatchNorm2d)(4)
    x = torch.randn(T, *step_shape) * 3 + 1
    out = layer(x)
    torch.testing.assert_close(out, reference(x.flatten(0, 1)).unflatten(0, (T, B)))
    torch.testing.assert_close(layer.running_mean, reference.running_mean)


def test_multi_step_gradients_match_per_step_application() -> None:
    torch.manual_seed(3)
    layer = Conv2d(2, 2, 3, padding=1)
    reference = nn.Conv2d(2, 2, 3, padding=1)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(T, B, 2, 4, 4)
    layer(x).square().sum().backward()
    torch.stack([reference(x[t]) for t in range(T)]).square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad)


def test_flatten_keeps_time_and_batch_in_multi_step_and_batch_in_single_step() -> None:
    x = torch.zeros(T, B, 2, 3, 4)
    assert Flatten()(x).shape == (T, B, 24)
    assert Flatten(step_mode="s")(x[0]).shape == (B, 24)


def test_multi_step_rejects_input_without_time_and_batch() -> None:
    with pytest.raises(ValueError, match=r"\[T, B, \*\]"):
        Linear(4, 3)(torch.zeros(4))


# -- dropout ---------------------------------------------------------------------------------


def test_dropout_multi_step_shares_one_mask_over_time_and_scales_kept_units() -> None:
    torch.manual_seed(4)
    layer = Dropout(p=0.75)
    out = layer(torch.ones(5, 8, 50))
    assert set(out.unique().tolist()) == {0.0, 4.0}  # kept units scaled by 1 / (1 - 0.75)
    assert torch.equal(out, out[:1].expand_as(out))  # the same mask at every step
    assert not torch.equal(out[:, 0], out[:, 1])  # but one mask per sample
    kept = (out[0] > 0).float().mean().item()
    assert abs(kept - 0.25) < 0.06  # 400 draws: sigma = 0.022


def test_dropout2d_multi_step_drops_whole_channels_shared_over_time() -> None:
    torch.manual_seed(5)
    out = Dropout2d(p=0.5)(torch.ones(4, 6, 10, 3, 3))
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(out, out[:1, :, :, :1, :1].expand_as(out))


@pytest.mark.parametrize("factory, shape", [(Dropout, (6, 20)), (Dropout2d, (6, 20, 2, 2))])
def test_dropout_single_step_keeps_its_mask_until_reset(factory: type, shape: tuple) -> None:
    torch.manual_seed(6)
    layer = factory(p=0.5, step_mode="s")
    x = torch.ones(shape)
    first = layer(x)
    assert torch.equal(layer(x), first)
    assert torch.equal(layer(3 * x), 3 * first)
    layer.reset()
    assert not torch.equal(layer(x), first)


def test_dropout_single_step_refuses_a_kept_mask_of_another_shape() -> None:
    layer = Dropout(p=0.5, step_mode="s")
    layer(torch.ones(4, 3))
    with pytest.raises(RuntimeError, match="reset"):
        layer(torch.ones(2, 3))


@pytest.mark.parametrize("factory", [Dropout, Dropout2d])
@pytest.mark.parametrize("step_mode", ["m", "s"])
def test_dropout_is_identity_in_eval_mode_and_with_p_zero(factory: type, step_mode: str) -> None:
    x = torch.randn(3, 2, 4, 2, 2)[0] if step_mode == "s" else torch.randn(3, 2, 4, 2, 2)
    assert factory(p=0.5, step_mode=step_mode).eval()(x) is x
    assert factory(p=0.0, step_mode=step_mode)(x) is x


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, params, word",
    [
        ("linear", {"in_features": 0, "out_features": 3}, "in_features"),
        ("conv1d", {"in_channels": 1, "out_channels": 2, "kernel_size": 0}, "kernel_size"),
        (
            "conv2d",
            {"in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": -1},
            "padding",
        ),
        (
            "conv2d",
            {"in_channels": 1, "out_channels": 2, "kernel_size": 3, "stride": [1, 0]},
            "stride",
        ),
        ("batchnorm1d", {"num_features": 4, "eps": 0.0}, "eps"),
        ("batchnorm2d", {"num_features": 4, "momentum": 1.5}, "momentum"),
        ("maxpool2d", {"kernel_size": 2, "stride": 0}, "stride"),
        ("avgpool2d", {"kernel_size": -2}, "kernel_size"),
        ("adaptive_avgpool2d", {"output_size": 0}, "output_size"),
        ("dropout", {"p": 1.0}, "p must"),
        ("dropout2d", {"p": -0.1}, "p must"),
        ("identity", {"step_mode": "x"}, "step_mode"),
        ("linear", {"in_features": 2, "out_features": 3, "step_mode": "multi"}, "step_mode"),
    ],
)
def test_layer_rejects_bad_parameters_naming_them(name: str, params: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        LAYERS[name](**params)


def test_translate_shifts_each_sample_and_fills_zeros() -> None:
    from snnkit.components.layers import translate

    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).view(2, 1, 3, 3) + 1
    out = translate(x, torch.tensor([1, 0]), torch.tensor([0, -1]))
    # sample 0 moves down one row: out[h] = x[h - 1], row 0 becomes zeros
    assert torch.equal(out[0, 0], torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    # sample 1 moves left one column: out[w] = x[w + 1], last column zeros
    assert torch.equal(
        out[1, 0], torch.tensor([[11.0, 12.0, 0.0], [14.0, 15.0, 0.0], [17.0, 18.0, 0.0]])
    )


def test_random_shift_is_the_same_over_time_and_identity_in_eval() -> None:
    from snnkit.components.layers import RandomShift

    torch.manual_seed(0)
    layer = RandomShift(max_shift=2)
    x = torch.rand(1, 8, 1, 6, 6).expand(4, 8, 1, 6, 6)  # the same image at every step
    out = layer(x)
    assert out.shape == x.shape
    assert all(torch.equal(out[t], out[0]) for t in range(4))
    assert not torch.equal(out, x)  # 8 samples: some shift is non-zero
    assert torch.equal(layer.eval()(x), x)


def test_random_shift_keeps_its_shifts_over_single_steps_until_reset() -> None:
    from snnkit.components.layers import RandomShift

    torch.manual_seed(1)
    layer = RandomShift(max_shift=3, step_mode="s")
    x = torch.rand(5, 1, 7, 7)
    first, second = layer(x), layer(x)
    assert torch.equal(first, second)
    layer.reset()
    torch.manual_seed(2)
    assert not torch.equal(layer(x), first)
