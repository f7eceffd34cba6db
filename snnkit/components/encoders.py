"""Input encoders: a batch ``x[B, *]`` becomes a time-first tensor ``[T, B, *]``.

Contract shared by every encoder here: ``factory(time_steps, **params) -> nn.Module`` (snnkit
supplies ``time_steps`` = T > 0) and ``encoder(x)`` returns a floating tensor on ``x``'s device,
of ``x``'s dtype when ``x`` is floating and float32 otherwise. A uint8 input is read as the
intensity ``p = value / 255``; a bool or other integer input as its numeric value.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from snnkit.errors import DataError

__all__ = [
    "DeltaEncoder",
    "DirectEncoder",
    "Encoder",
    "LatencyEncoder",
    "PeriodicEncoder",
    "PoissonEncoder",
    "SequenceEncoder",
    "WeightedPhaseEncoder",
]


def _output_dtype(x: Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.float32


def intensity(x: Tensor) -> Tensor:
    """``x`` as floating intensities: uint8 -> float32 ``x / 255``, other integers -> float32."""
    if x.is_floating_point():
        return x
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x.to(torch.float32)


def _check_range(x: Tensor, name: str, high: float = 1.0) -> None:
    """Raise :class:`DataError` unless every intensity lies in ``[0, high]`` (NaN fails)."""
    if x.dtype == torch.uint8 or x.numel() == 0:
        return
    lo, hi = torch.aminmax(x.detach())
    lo_v, hi_v = float(lo), float(hi)
    if lo_v >= 0.0 and hi_v <= high:  # written so that NaN fails the test
        return
    raise DataError(
        f"{name} encoder: input intensities must lie in [0, {high:g}], got min {lo_v:g}, "
        f"max {hi_v:g} — normalise the inputs to [0, 1] (e.g. divide 8-bit images by 255) "
        "or use the 'direct' encoder for analog inputs"
    )


def _time_index(time_steps: int, ndim: int, device: torch.device) -> Tensor:
    """``arange(T)`` shaped ``[T, 1, ..., 1]`` to broadcast against a ``[B, *]`` tensor."""
    return torch.arange(time_steps, device=device).view(time_steps, *([1] * ndim))


class Encoder(nn.Module):
    """Base of the built-in encoders: stores and checks ``time_steps``."""

    def __init__(self, time_steps: int) -> None:
        super().__init__()
        if not isinstance(time_steps, int) or isinstance(time_steps, bool) or time_steps <= 0:
            raise ValueError(
                f"time_steps must be an int > 0 (steps to simulate), got {time_steps!r}"
            )
        self.time_steps = time_steps

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}"


class PoissonEncoder(Encoder):
    """Rate code: S[t] = 1 with probability p, independently at every step (Bernoulli per step).

    Intensities must lie in [0, 1] (else :class:`DataError`); p = 0 never spikes, p = 1 always
    does. Randomness comes from torch's global generator of ``x``'s device, so ``torch.manual_seed``
    and saved RNG states reproduce a run.

    Float input: ``S = rand() < p`` with ``rand()`` uniform in [0, 1).
    uint8 input ``v`` (p = v / 255): the counter-based generator of
    :mod:`snnkit.kernels.random_stream` — a 16-bit draw ``r`` per (step, sample, pixel) from a
    seed taken with one ``torch.randint`` per batch, ``S = r < round(v · 65536 / 255)``, so
    P(S = 1) = v / 255 within 2^-17. The event-driven input path draws exactly the same spikes,
    so dense and event-driven runs, and single- and multi-step runs, see the same input.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:
            from snnkit.kernels.event_linear import poisson_spikes_like
            from snnkit.kernels.random_stream import draw_seed_tensor

            return poisson_spikes_like(x, self.time_steps, draw_seed_tensor(x.device))
        shape = (self.time_steps, *x.shape)
        p = intensity(x)
        _check_range(p, "poisson")
        # rand is in [0, 1): p = 1 always passes, p = 0 never; lt_ writes 1.0 / 0.0 in place.
        return torch.rand(shape, dtype=p.dtype, device=p.device).lt_(p.detach())


class LatencyEncoder(Encoder):
    """Time-to-first-spike code: each input fires once, brighter inputs earlier.

    Spike time of intensity p in [0, 1] (rounded half to even, as ``torch.round``):

    - ``"linear"``: t_f = round((T - 1)(1 - p))
    - ``"log"``:    t_f = round((T - 1) · ln(1 + tau (1 - p)) / ln(1 + tau)), tau > 0

    Both map p = 1 to step 0 and p = 0 to step T - 1. The log map is concave in 1 - p: it
    spreads bright intensities over more steps and crowds dim ones near T - 1; it tends to the
    linear map as tau -> 0. With ``zero_spikes=False`` (default) an input of exactly 0 does
    not spike at all (silence carries no information); with True it fires at T - 1.
    Intensities outside [0, 1] raise :class:`DataError`.
    """

    def __init__(
        self, time_steps: int, mode: str = "linear", tau: float = 5.0, zero_spikes: bool = False
    ) -> None:
        super().__init__(time_steps)
        if mode not in ("linear", "log"):
            raise ValueError(f"mode must be 'linear' or 'log', got {mode!r}")
        if not tau > 0:
            raise ValueError(f"tau must be > 0 (the log map divides by ln(1 + tau)), got {tau!r}")
        self.mode = mode
        self.tau = float(tau)
        self.zero_spikes = zero_spikes

    def spike_times(self, x: Tensor) -> Tensor:
        """First-spike step t_f of each input as int64 ``[B, *]`` (before the p = 0 rule)."""
        p = intensity(x).detach()
        _check_range(p, "latency")
        p = p.to(torch.promote_types(p.dtype, torch.float32))
        last = self.time_steps - 1
        if self.mode == "linear":
            t = last * (1.0 - p)
        else:
            t = last * torch.log1p(self.tau * (1.0 - p)) / math.log1p(self.tau)
        return torch.round(t).long()

    def forward(self, x: Tensor) -> Tensor:
        t_f = self.spike_times(x)
        spikes = _time_index(self.time_steps, x.dim(), x.device) == t_f
        if not self.zero_spikes:
            spikes &= x != 0
        return spikes.to(_output_dtype(x))

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, mode={self.mode!r}, tau={self.tau}, "
            f"zero_spikes={self.zero_spikes}"
        )


class PeriodicEncoder(Encoder):
    """Deterministic rate code: S[t] = 1 iff floor((t + 1) p) > floor(t p), t = 0 ... T - 1.

    The sum telescopes, so an input fires exactly floor(T p) times in T steps, evenly spaced.
    uint8 inputs use exact integer arithmetic (p = v / 255); float inputs are computed in at
    least float32. Intensities outside [0, 1] raise :class:`DataError`.
    """

    def forward(self, x: Tensor) -> Tensor:
        t = _time_index(self.time_steps, x.dim(), x.device)
        if x.dtype == torch.uint8:
            v = x.to(torch.int64)
            spikes = (t + 1) * v // 255 > t * v // 255
        else:
            p = intensity(x).detach()
            _check_range(p, "periodic")
            p = p.to(torch.promote_types(p.dtype, torch.float32))
            spikes = torch.floor((t + 1) * p) > torch.floor(t * p)
        return spikes.to(_output_dtype(x))


class WeightedPhaseEncoder(Encoder):
    """Phase code with K phases weighted 2^-(k+1): S at phase k is bit k of p in binary.

    q = min(floor(p · 2^K), 2^K - 1) (p above 1 - 2^-K saturates to all ones); phase
    k = t mod K fires iff bit (K - 1 - k) of q is set, i.e. phase 0 carries the most
    significant bit. So sum_k S[k] 2^-(k+1) = q / 2^K, within 2^-K of p; the pattern repeats
    every K steps over the T steps. uint8 inputs use exact integer arithmetic (for K = 8 the
    bits are those of the byte, 255 saturating to 255/256). Intensities outside [0, 1] raise
    :class:`DataError`.
    """

    def __init__(self, time_steps: int, phases: int = 8) -> None:
        super().__init__(time_steps)
        if not 1 <= phases <= 32:
            raise ValueError(f"phases must be in 1..32 (bits of the binary code), got {phases!r}")
        self.phases = phases

    def codes(self, x: Tensor) -> Tensor:
        """The K-bit integer q of each input as int64 ``[B, *]``."""
        scale = 1 << self.phases
        if x.dtype == torch.uint8:
            q = x.to(torch.int64) * scale // 255
        else:
            p = intensity(x).detach()
            _check_range(p, "weighted_phase")
            # Scaling by 2^K is exact in binary floating point, so floor() sees p's exact bits.
            p = p.to(torch.promote_types(p.dtype, torch.float32))
            q = torch.floor(p * scale).to(torch.int64)
        return q.clamp_(max=scale - 1)

    def forward(self, x: Tensor) -> Tensor:
        q = self.codes(x)
        phase = _time_index(self.time_steps, x.dim(), x.device) % self.phases
        spikes = (q.unsqueeze(0) >> (self.phases - 1 - phase)) & 1
        return spikes.to(_output_dtype(x))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, phases={self.phases}"


class DirectEncoder(Encoder):
    """Analog input repeated every step: out[t] = x (uint8 read as x / 255).

    The result is a broadcast view (``expand``, no copy, gradients flow to ``x``); clone it
    before writing into it in place.
    """

    def forward(self, x: Tensor) -> Tensor:
        return intensity(x).unsqueeze(0).expand(self.time_steps, *x.shape)


class DeltaEncoder(Encoder):
    """Change code for sequences: x[B, L, *] (time along dim 1) -> [T, B, *] of change spikes.

    With d[t] = x[:, t] - x[:, t - 1] and x[:, -1] := 0 (so the first frame is compared with a
    blank frame and its entries above ``threshold`` fire an onset spike):

        S[t] = 1 if d[t] > threshold, -1 if ``off_spikes`` and d[t] < -threshold, else 0.

    The sequence is cropped to its first T frames when L > T; when L < T it is held at its last
    frame, so steps L ... T - 1 are silent. uint8 inputs are read as x / 255 first.
    """

    def __init__(self, time_steps: int, threshold: float = 0.1, off_spikes: bool = False) -> None:
        super().__init__(time_steps)
        if not threshold >= 0:
            raise ValueError(f"threshold must be >= 0 (a change magnitude), got {threshold!r}")
        self.threshold = float(threshold)
        self.off_spikes = off_spikes

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2:
            raise DataError(
                f"delta encoder: expects sequences [B, L, *] with time along dim 1, got shape "
                f"{tuple(x.shape)} — add a time dimension or use another encoder"
            )
        seq = intensity(x).detach()[:, : self.time_steps].movedim(1, 0)  # [L', B, *]
        previous = torch.cat([torch.zeros_like(seq[:1]), seq[:-1]])
        delta = seq - previous
        spikes = (delta > self.threshold).to(seq.dtype)
        if self.off_spikes:
            spikes -= (delta < -self.threshold).to(seq.dtype)
        missing = self.time_steps - spikes.shape[0]
        if missing > 0:
            spikes = torch.cat([spikes, spikes.new_zeros(missing, *spikes.shape[1:])])
        return spikes

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, threshold={self.threshold}, off_spikes={self.off_spikes}"


class SequenceEncoder(Encoder):
    """Analog sequence code: one slice of the sample per step, e.g. one image row per step.

    For a sample of shape ``[*]`` and ``time_dim`` d (counted within the sample, negative
    from the end), ``out[t] = x.select(d, t)`` (uint8 read as x / 255): ``[B, 1, 28, 28]`` with
    ``time_dim: -2`` gives ``[28, B, 1, 28]`` (sequential MNIST). The sample's size along d
    must equal ``time_steps``. ``flatten: true`` reads the sample flattened first, one value per
    step (``out[t] = x.flatten()[t]``, shaped ``[B, 1]``; pixel-wise sequential MNIST with
    ``time_steps: 784``); ``time_dim`` is then not used.
    """

    def __init__(self, time_steps: int, time_dim: int = -2, flatten: bool = False) -> None:
        super().__init__(time_steps)
        self.time_dim = int(time_dim)
        self.flatten = bool(flatten)

    def forward(self, x: Tensor) -> Tensor:
        if self.flatten:
            x = x.reshape(x.shape[0], -1, 1)
            if x.shape[1] != self.time_steps:
                raise DataError(
                    f"sequence encoder: flattened samples have {x.shape[1]} values but "
                    f"time_steps={self.time_steps} — set time_steps: {x.shape[1]}"
                )
            return intensity(x).movedim(1, 0)
        sample_dims = x.dim() - 1
        d = self.time_dim if self.time_dim >= 0 else sample_dims + self.time_dim
        if not 0 <= d < sample_dims or x.shape[d + 1] != self.time_steps:
            raise DataError(
                f"sequence encoder: time_dim {self.time_dim} of samples shaped "
                f"{list(x.shape[1:])} must have length time_steps={self.time_steps} — set "
                "time_steps to that length or pick another time_dim"
            )
        return intensity(x).movedim(d + 1, 0)

    def extra_repr(self) -> str:
        extra = ", flatten=True" if self.flatten else ""
        return f"{super().extra_repr()}, time_dim={self.time_dim}{extra}"
