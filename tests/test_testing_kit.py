"""The conformance kit catches broken components: each check fails on a deliberately wrong one.

Every broken component is a small toy with a switch; with the switch off the same toy passes
the same check (the positive control), so each failure below is caused by the one bug.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import Tensor, nn

from snnkit.components import neurons, surrogates
from snnkit.components.surrogates import Surrogate, heaviside
from snnkit.testing import check_encoder, check_loss, check_neuron, check_surrogate


# --------------------------------------------------------------------------- surrogates
class ToySigmoid(Surrogate):
    """g(x) = σ(4x); switches break one rule each."""

    def __init__(
        self,
        spiking: bool = True,
        *,
        derivative_scale: float = 1.0,
        strict_forward: bool = False,
        detached_primitive: bool = False,
        wrong_dtype: bool = False,
        ignore_spiking: bool = False,
        wrong_near_one: bool = False,
    ) -> None:
        super().__init__(spiking)
        self.derivative_scale = derivative_scale
        self.strict_forward = strict_forward
        self.detached_primitive = detached_primitive
        self.wrong_dtype = wrong_dtype
        self.ignore_spiking = ignore_spiking
        self.wrong_near_one = wrong_near_one

    def primitive(self, x: Tensor) -> Tensor:
        if self.detached_primitive:  # autograd sees slope 1, the values are σ(4x)
            return torch.sigmoid(4 * x.detach()) + x - x.detach()
        return torch.sigmoid(4 * x)

    def derivative(self, x: Tensor) -> Tensor:
        if self.detached_primitive:
            return torch.ones_like(x)  # agrees with (wrong) autograd, not with the values
        s = torch.sigmoid(4 * x)
        d = self.derivative_scale * 4 * s * (1 - s)
        if self.wrong_near_one:
            d = torch.where((x - 1).abs() < 0.1, d + 0.5, d)
        return d

    def forward(self, x: Tensor) -> Tensor:
        if self.spiking or self.ignore_spiking:
            theta = (x > 0) if self.strict_forward else (x >= 0)
            # Θ in the forward pass; d·x − (d·x).detach() is 0 but has gradient d = g'(x).
            d = self.derivative(x.detach())
            out = theta.to(x.dtype) + (d * x - (d * x).detach())
            return out.float() if self.wrong_dtype else out
        return self.primitive(x)


def test_toy_surrogate_passes() -> None:
    check_surrogate(ToySigmoid())


def test_derivative_twice_too_large_fails() -> None:
    with pytest.raises(AssertionError, match=r"derivative\(x\) must equal d/dx primitive"):
        check_surrogate(ToySigmoid(derivative_scale=2.0))


def test_forward_strictly_greater_fails_at_zero() -> None:
    # (x > 0) gives Θ(0) = 0; the convention is Θ(0) = 1.
    with pytest.raises(AssertionError, match=r"forward must be Θ\(x\).*at x=0:"):
        check_surrogate(ToySigmoid(strict_forward=True))


def test_primitive_with_wrong_autograd_fails_on_finite_differences() -> None:
    # derivative == autograd(primitive) == 1, but the primitive's values are σ(4x): only the
    # finite differences see it.
    with pytest.raises(AssertionError, match="central finite difference"):
        check_surrogate(ToySigmoid(detached_primitive=True))


def test_forward_changing_dtype_fails() -> None:
    with pytest.raises(AssertionError, match="keep shape, dtype and device"):
        check_surrogate(ToySigmoid(wrong_dtype=True), dtype=torch.float64)


def test_primitive_mode_must_return_primitive() -> None:
    with pytest.raises(AssertionError, match="spiking=False"):
        check_surrogate(ToySigmoid(ignore_spiking=True))


def test_skip_interval_excludes_points() -> None:
    broken = ToySigmoid(wrong_near_one=True)  # derivative off by 0.5 on |x - 1| < 0.1
    with pytest.raises(AssertionError, match=r"at x=0\.9"):
        check_surrogate(broken, dtype=torch.float64)
    # The backward pass uses the same derivative, so only the primitive comparison is skipped.
    check_surrogate(broken, dtype=torch.float64, skip=[(0.85, 1.15)])


def test_kinks_are_detected_without_being_listed() -> None:
    # rect's derivative jumps at ±1/(2α) = ±0.5, which lie on the default grid; autograd of
    # clamp disagrees with the closed form exactly there. The check must skip them by itself...
    check_surrogate(surrogates.Rect(alpha=1.0))
    # ...and only them: without kink detection the same surrogate fails at a kink.
    with pytest.raises(AssertionError, match=r"at x=-?0\.5"):
        check_surrogate(surrogates.Rect(alpha=1.0), detect_kinks=False)


# --------------------------------------------------------------------------- neurons
class ToyIF(nn.Module):
    """IF neuron H = V + X, S = Θ(H − 1), hard reset to 0; switches break one rule each."""

    def __init__(
        self,
        surrogate: nn.Module | None = None,
        *,
        leak_state: bool = False,
        single_threshold: float = 1.0,
        emit_voltage: bool = False,
        detach_input: bool = False,
    ) -> None:
        super().__init__()
        self.surrogate = surrogates.Sigmoid() if surrogate is None else surrogate
        self.leak_state = leak_state
        self.single_threshold = single_threshold
        self.emit_voltage = emit_voltage
        self.detach_input = detach_input
        self.step_mode = "m"
        self.v: Tensor | None = None

    def reset(self) -> None:
        self.v = None

    def _step(self, x: Tensor, threshold: float) -> Tensor:
        if self.detach_input:
            x = x.detach()
        h = (torch.zeros_like(x) if self.v is None else self.v) + x
        s = self.surrogate(h - threshold)
        self.v = h * (1 - s)
        return h if self.emit_voltage else s

    def forward(self, x: Tensor) -> Tensor:
        if self.step_mode == "s":
            return self._step(x, self.single_threshold)
        if not self.leak_state:
            self.v = None
        out = torch.stack([self._step(step, 1.0) for step in x])
        if not self.leak_state:
            self.v = None
        return out


def test_toy_neuron_passes() -> None:
    check_neuron(ToyIF)


def test_neuron_leaking_state_between_calls_fails() -> None:
    with pytest.raises(AssertionError, match="state leaks between multi-step calls"):
        check_neuron(functools.partial(ToyIF, leak_state=True))


def test_neuron_whose_single_step_differs_fails() -> None:
    with pytest.raises(AssertionError, match="single-step output differs from multi-step"):
        check_neuron(functools.partial(ToyIF, single_threshold=0.9))


def test_neuron_with_non_binary_output_fails() -> None:
    with pytest.raises(AssertionError, match="spikes must be 0 or 1"):
        check_neuron(functools.partial(ToyIF, emit_voltage=True))


def test_neuron_cutting_the_input_gradient_fails() -> None:
    with pytest.raises(AssertionError, match="gradient does not reach the input"):
        check_neuron(functools.partial(ToyIF, detach_input=True))


def test_neuron_sharing_a_default_surrogate_fails() -> None:
    shared = surrogates.Sigmoid()  # the trap: one default instance for every neuron

    def factory(surrogate: nn.Module = shared) -> nn.Module:
        return ToyIF(surrogate)

    with pytest.raises(AssertionError, match="share surrogate"):
        check_neuron(factory)


def test_neuron_ignoring_the_supplied_surrogate_fails() -> None:
    def factory(surrogate: nn.Module) -> nn.Module:
        del surrogate
        return ToyIF()

    with pytest.raises(AssertionError, match="never used the surrogate it was given"):
        check_neuron(factory)


def test_readout_is_non_spiking_unless_forced() -> None:
    check_neuron(neurons.LI)  # a BaseNeuron that is not a SpikingNeuron outputs V
    with pytest.raises(AssertionError, match="spikes must be 0 or 1"):
        check_neuron(neurons.LI, spiking=True)


def test_neuron_that_never_fires_is_reported() -> None:
    with pytest.raises(AssertionError, match="never fires"):
        check_neuron(neurons.IF, inputs=torch.full((4, 2, 3), -1.0))


# --------------------------------------------------------------------------- encoders
class ToyEncoder(nn.Module):
    """Repeats x over T steps; switches break one rule each."""

    def __init__(
        self, time_steps: int, *, batch_first: bool = False, integer_output: bool = False
    ) -> None:
        super().__init__()
        self.time_steps = time_steps
        self.batch_first = batch_first
        self.integer_output = integer_output

    def forward(self, x: Tensor) -> Tensor:
        p = x.float() / 255 if x.dtype == torch.uint8 else x
        out = p.unsqueeze(0).repeat(self.time_steps, *([1] * x.dim()))
        if self.batch_first:
            out = out.transpose(0, 1)
        return (out > 0.5).long() if self.integer_output else out


def test_toy_encoder_passes() -> None:
    check_encoder(ToyEncoder, 4)


def test_encoder_with_wrong_shape_fails() -> None:
    with pytest.raises(AssertionError, match=r"output must be \[T, B, \*\]"):
        check_encoder(ToyEncoder(4, batch_first=True), 4)


def test_encoder_with_integer_output_fails() -> None:
    with pytest.raises(AssertionError, match="floating tensor"):
        check_encoder(ToyEncoder(4, integer_output=True), 4)


# --------------------------------------------------------------------------- losses
class _WrongBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return x.square()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * x  # should be 2x


class ToyRateMSE(nn.Module):
    """mean (rate − onehot)²; switches break one rule each."""

    def __init__(
        self,
        *,
        reduce: bool = True,
        detach: bool = False,
        wrong_backward: bool = False,
        predict_shape: str = "[B]",
    ) -> None:
        super().__init__()
        self.reduce, self.detach, self.wrong_backward = reduce, detach, wrong_backward
        self.predict_shape = predict_shape

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        rate = output.mean(0)
        if self.detach:
            rate = rate.detach()
        diff = rate - nn.functional.one_hot(target, output.shape[2]).to(rate.dtype)
        squared = _WrongBackward.apply(diff) if self.wrong_backward else diff.square()
        return squared.mean() if self.reduce else squared

    def predict(self, output: Tensor) -> Tensor:
        best = output.mean(0).argmax(-1)
        return best if self.predict_shape == "[B]" else best.unsqueeze(0)


def test_toy_loss_passes() -> None:
    check_loss(ToyRateMSE)


def test_loss_returning_non_scalar_fails() -> None:
    with pytest.raises(AssertionError, match=r"scalar \(0-d\) tensor, got \[3, 5\]"):
        check_loss(ToyRateMSE(reduce=False))


def test_loss_not_differentiable_fails() -> None:
    with pytest.raises(AssertionError, match="not differentiable"):
        check_loss(ToyRateMSE(detach=True))


def test_loss_with_wrong_backward_fails_gradcheck() -> None:
    with pytest.raises(AssertionError, match="gradcheck"):
        check_loss(ToyRateMSE(wrong_backward=True))


def test_loss_predict_with_wrong_shape_fails() -> None:
    with pytest.raises(AssertionError, match=r"predict\(output\) must have shape \[B\]"):
        check_loss(ToyRateMSE(predict_shape="[1, B]"))


def test_checks_reject_what_is_not_a_component() -> None:
    with pytest.raises(AssertionError, match="expected a built nn.Module"):
        check_surrogate(surrogates.Sigmoid)  # the class, not an instance
    with pytest.raises(AssertionError, match="no method 'primitive'"):
        check_surrogate(nn.Identity())
    with pytest.raises(AssertionError, match="not an nn.Module"):
        check_neuron(lambda: heaviside)
