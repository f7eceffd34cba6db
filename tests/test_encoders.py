"""Encoders: shapes and dtypes, seeded statistics, and hand-computed spike trains."""

from __future__ import annotations

import math

import pytest
import torch

from snnkit.components.encoders import (
    DeltaEncoder,
    DirectEncoder,
    LatencyEncoder,
    PeriodicEncoder,
    PoissonEncoder,
    WeightedPhaseEncoder,
)
from snnkit.errors import DataError
from snnkit.plugins.loader import build_registry

# the catalogue registered by snnkit/builtins.py, sorted by name
BUILTIN_ENCODERS = [(c.name, c.factory) for c in build_registry(entry_points=False).list("encoder")]

ENCODERS = dict(BUILTIN_ENCODERS)


def test_catalogue_lists_every_encoder_once() -> None:
    assert list(ENCODERS) == sorted(
        ["poisson", "latency", "periodic", "weighted_phase", "direct", "delta", "sequence"]
    )


@pytest.mark.parametrize("name", list(ENCODERS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8])
def test_encoder_output_is_time_first_with_the_promised_dtype(
    name: str, dtype: torch.dtype
) -> None:
    torch.manual_seed(0)
    x = torch.rand(3, 4, 2)  # [B, L or C, W] in [0, 1]
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    if name == "sequence":  # time runs along the sample's first dimension (length 4)
        out, expected = ENCODERS[name](4, time_dim=0)(x), (4, 3, 2)
    else:
        out = ENCODERS[name](5)(x)
        expected = (5, 3, 2) if name == "delta" else (5, 3, 4, 2)
    assert out.shape == expected
    assert out.dtype == (torch.float32 if dtype == torch.uint8 else dtype)
    assert out.device == x.device


@pytest.mark.parametrize("name", list(ENCODERS))
@pytest.mark.parametrize("time_steps", [0, -3])
def test_encoder_rejects_non_positive_time_steps(name: str, time_steps: int) -> None:
    with pytest.raises(ValueError, match="time_steps must be"):
        ENCODERS[name](time_steps)


# -- Poisson ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
def test_poisson_rate_matches_intensity_and_is_exact_at_zero_and_one() -> None:
    torch.manual_seed(1)
    p = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    out = PoissonEncoder(4000)(p.expand(10, 5))  # 40,000 Bernoulli draws per intensity
    rate = out.mean(dim=(0, 1))
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert rate[0] == 0.0 and rate[4] == 1.0
    sigma = (p * (1 - p) / 40_000).sqrt()
    assert torch.all((rate - p).abs()[1:4] <= 5 * sigma[1:4])


@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
def test_poisson_uint8_spike_probability_is_value_over_255() -> None:
    torch.manual_seed(2)
    v = torch.tensor([0, 1, 128, 254, 255], dtype=torch.uint8)
    out = PoissonEncoder(2000)(v.expand(100, 5))  # 200,000 draws per value
    rate = out.double().mean(dim=(0, 1))
    p = v.double() / 255
    sigma = (p * (1 - p) / 200_000).sqrt()
    assert rate[0] == 0.0 and rate[4] == 1.0
    assert torch.all((rate - p).abs()[1:4] <= 5 * sigma[1:4])
    # 254/256 would be off by 0.0039, about 9 sigma: the test tells /255 from /256.
    assert abs(rate[3].item() - 254 / 256) > 5 * sigma[3].item()


@pytest.mark.usefixtures("cpu_isa")  # each SIMD path of this CPU
def test_poisson_draws_from_torch_global_rng() -> None:
    x = torch.rand(2, 6)
    torch.manual_seed(3)
    first = PoissonEncoder(7)(x)
    state = torch.get_rng_state()
    second = PoissonEncoder(7)(x)
    torch.manual_seed(3)
    assert torch.equal(PoissonEncoder(7)(x), first)
    torch.set_rng_state(state)
    assert torch.equal(PoissonEncoder(7)(x), second)
    assert not torch.equal(first, second)


@pytest.mark.parametrize("bad", [[-0.5, 0.2], [0.3, 2.0], [math.nan, 0.5]])
def test_poisson_rejects_intensities_outside_unit_interval(bad: list[float]) -> None:
    with pytest.raises(DataError, match=r"poisson.*\[0, 1\].*min.*max.*'direct'") as info:
        PoissonEncoder(3)(torch.tensor([bad]))
    assert "\n" not in str(info.value)


def test_poisson_range_message_reports_observed_extremes() -> None:
    with pytest.raises(DataError, match="min -0.5, max 2"):
        PoissonEncoder(3)(torch.tensor([[-0.5, 2.0]]))


# -- latency ---------------------------------------------------------------------------------


def _first_spike(out: torch.Tensor) -> list[int | None]:
    """Step of the single spike of each input of a [T, 1, N] train (None if silent)."""
    times: list[int | None] = []
    for column in out[:, 0].T:
        hits = column.nonzero().flatten().tolist()
        assert len(hits) <= 1
        times.append(hits[0] if hits else None)
    return times


def test_latency_linear_spike_times_by_hand() -> None:
    # T = 5: t_f = round(4 (1 - p)) = round(0, 1, 2, 3.6, 4) = 0, 1, 2, 4, and p = 0 is silent.
    x = torch.tensor([[1.0, 0.75, 0.5, 0.1, 0.0]])
    assert _first_spike(LatencyEncoder(5)(x)) == [0, 1, 2, 4, None]
    assert _first_spike(LatencyEncoder(5, zero_spikes=True)(x)) == [0, 1, 2, 4, 4]


def test_latency_log_spike_times_by_hand() -> None:
    # T = 11, tau = 5: t_f = round(10 ln(1 + 5 (1 - p)) / ln 6)
    #   p = 0.9: 10 ln 1.5 / ln 6 = 10 * 0.405465 / 1.791759 = 2.263 -> 2
    #   p = 0.5: 10 ln 3.5 / ln 6 = 10 * 1.252763 / 1.791759 = 6.992 -> 7
    #   p = 1 -> 0, p = 0 -> 10 (zero_spikes=True)
    x = torch.tensor([[1.0, 0.9, 0.5, 0.0]])
    out = LatencyEncoder(11, mode="log", tau=5.0, zero_spikes=True)(x)
    assert _first_spike(out) == [0, 2, 7, 10]


def test_latency_uint8_zero_is_silent_and_255_fires_first() -> None:
    out = LatencyEncoder(4)(torch.tensor([[0, 255]], dtype=torch.uint8))
    assert _first_spike(out) == [None, 0]


@pytest.mark.parametrize("kwargs", [{"mode": "exp"}, {"tau": 0.0}, {"tau": -1.0}])
def test_latency_rejects_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="mode|tau"):
        LatencyEncoder(5, **kwargs)


def test_latency_rejects_out_of_range_input() -> None:
    with pytest.raises(DataError, match="latency"):
        LatencyEncoder(5)(torch.tensor([[1.5]]))


# -- periodic --------------------------------------------------------------------------------


def test_periodic_pattern_by_hand() -> None:
    # p = 0.5, T = 4: floor((t+1)/2) > floor(t/2) holds at t = 1 and t = 3.
    out = PeriodicEncoder(4)(torch.tensor([[0.5]]))
    assert out[:, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_periodic_counts_are_floor_of_t_times_p() -> None:
    x = torch.tensor([[0.0, 0.25, 0.5, 1.0, 0.3, 0.99]])
    counts = PeriodicEncoder(10)(x).sum(0)[0]
    assert counts.tolist() == [0.0, 2.0, 5.0, 10.0, 3.0, 9.0]


def test_periodic_uint8_over_255_steps_fires_exactly_value_times() -> None:
    v = torch.arange(256, dtype=torch.uint8).unsqueeze(0)
    counts = PeriodicEncoder(255)(v).sum(0)[0]  # floor(255 * v / 255) = v
    assert torch.equal(counts, v[0].float())


# -- weighted phase --------------------------------------------------------------------------


def test_weighted_phase_bits_by_hand() -> None:
    # 0.625 = 0.1010 in binary: phases 0..3 fire 1, 0, 1, 0 and the pattern repeats.
    out = WeightedPhaseEncoder(8, phases=4)(torch.tensor([[0.625]]))
    assert out[:, 0, 0].tolist() == [1, 0, 1, 0, 1, 0, 1, 0]


def test_weighted_phase_bits_reconstruct_intensity_within_one_lsb() -> None:
    torch.manual_seed(4)
    p = torch.rand(1, 200, dtype=torch.float64)
    out = WeightedPhaseEncoder(6, phases=6)(p)
    weights = 2.0 ** -torch.arange(1, 7, dtype=torch.float64)
    recon = torch.einsum("tbn,t->bn", out, weights)
    assert torch.all(recon <= p) and torch.all(p - recon < 2.0**-6)


def test_weighted_phase_saturates_at_one() -> None:
    out = WeightedPhaseEncoder(3, phases=3)(torch.tensor([[1.0, 0.0]]))
    assert out[:, 0, 0].tolist() == [1, 1, 1] and out[:, 0, 1].tolist() == [0, 0, 0]


def test_weighted_phase_uint8_with_eight_phases_gives_the_byte_bits() -> None:
    v = torch.arange(256, dtype=torch.uint8).unsqueeze(0)
    out = WeightedPhaseEncoder(8, phases=8)(v)
    value = torch.einsum("tbn,t->bn", out.double(), 2.0 ** torch.arange(7, -1, -1).double())
    expected = v.double().clamp(max=255)  # floor(v * 256 / 255) = v for v < 255; 255 saturates
    assert torch.equal(value, expected)


@pytest.mark.parametrize("phases", [0, 33])
def test_weighted_phase_rejects_phase_count(phases: int) -> None:
    with pytest.raises(ValueError, match="phases"):
        WeightedPhaseEncoder(8, phases=phases)


# -- direct ----------------------------------------------------------------------------------


def test_direct_equals_repeat_and_passes_gradients() -> None:
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    out = DirectEncoder(4)(x)
    assert torch.equal(out, x.detach().unsqueeze(0).repeat(4, 1, 1))
    out.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 4.0))  # d/dx sum_t x = T


def test_direct_reads_uint8_as_value_over_255() -> None:
    out = DirectEncoder(2)(torch.tensor([[0, 51, 255]], dtype=torch.uint8))
    assert torch.allclose(out, torch.tensor([[0.0, 0.2, 1.0]]).expand(2, 1, 3))


# -- delta -----------------------------------------------------------------------------------


def test_delta_on_hand_made_sequence() -> None:
    # x = 0, 0.5, 0.45, 0.2 (x[-1] = 0) -> d = 0, 0.5, -0.05, -0.25; threshold 0.1:
    # on spikes at t = 1, off spike at t = 3; T = 6 > L = 4 pads two silent steps.
    x = torch.tensor([0.0, 0.5, 0.45, 0.2]).view(1, 4, 1)
    on = DeltaEncoder(6, threshold=0.1)(x)
    both = DeltaEncoder(6, threshold=0.1, off_spikes=True)(x)
    assert on[:, 0, 0].tolist() == [0, 1, 0, 0, 0, 0]
    assert both[:, 0, 0].tolist() == [0, 1, 0, -1, 0, 0]


def test_delta_first_frame_is_compared_with_zero_and_long_sequences_are_cropped() -> None:
    x = torch.tensor([0.3, 0.3, 0.9, 0.0]).view(1, 4, 1)
    out = DeltaEncoder(2, threshold=0.1, off_spikes=True)(x)
    assert out[:, 0, 0].tolist() == [1, 0]  # d = 0.3 (onset), 0; frames 2 and 3 cropped


def test_delta_rejects_non_sequence_input_and_negative_threshold() -> None:
    with pytest.raises(DataError, match=r"delta.*\[B, L, \*\]"):
        DeltaEncoder(3)(torch.rand(5))
    with pytest.raises(ValueError, match="threshold"):
        DeltaEncoder(3, threshold=-0.1)


def test_sequence_encoder_feeds_one_row_per_step() -> None:
    from snnkit.components.encoders import SequenceEncoder

    x = torch.arange(2 * 1 * 3 * 4, dtype=torch.uint8).view(2, 1, 3, 4)
    out = SequenceEncoder(3, time_dim=-2)(x)
    assert out.shape == (3, 2, 1, 4)
    # step t is row t of every sample, read as value / 255
    assert torch.equal(out[1, 0, 0], x[0, 0, 1].float() / 255)
    assert torch.equal(out[2, 1, 0], x[1, 0, 2].float() / 255)


def test_sequence_encoder_needs_time_steps_equal_to_the_length() -> None:
    from snnkit.components.encoders import SequenceEncoder
    from snnkit.errors import DataError

    with pytest.raises(DataError, match="must have length time_steps=5"):
        SequenceEncoder(5, time_dim=-2)(torch.zeros(2, 1, 3, 4))


def test_sequence_flatten_gives_one_pixel_per_step() -> None:
    from snnkit.components.encoders import SequenceEncoder
    from snnkit.errors import DataError

    x = torch.arange(12, dtype=torch.uint8).reshape(2, 1, 2, 3)  # two samples of 6 pixels
    out = SequenceEncoder(6, flatten=True)(x)
    assert out.shape == (6, 2, 1)
    assert out[:, 0, 0].tolist() == pytest.approx([v / 255 for v in range(6)])
    assert out[:, 1, 0].tolist() == pytest.approx([v / 255 for v in range(6, 12)])
    with pytest.raises(DataError, match="time_steps: 6"):
        SequenceEncoder(5, flatten=True)(x)
