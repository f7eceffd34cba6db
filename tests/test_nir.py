"""NIR export/import: the discrete↔continuous mapping, round trips, and what is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir")

from snnkit.components import layers as L  # noqa: E402
from snnkit.components import neurons as N  # noqa: E402
from snnkit.components.functional import reset_net  # noqa: E402
from snnkit.errors import SnnkitError  # noqa: E402
from snnkit.interop import export_nir, import_nir, load, save  # noqa: E402


def _spikes(shape: tuple[int, ...], seed: int = 0, p: float = 0.5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def _round_trip(model: nn.Module, input_shape: tuple[int, ...], tmp_path, dt: float = 1.0):
    graph, warnings = export_nir(model, input_shape, dt=dt)
    nir.write(tmp_path / "model.nir", graph)
    return load(tmp_path / "model.nir"), warnings


def _scaled(model: nn.Sequential, gain: float) -> nn.Sequential:
    """Scale weights so every neuron layer sees enough input to spike (no vacuous test)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(gain)
    return model


# -- the mapping, checked against NIR's own equations ------------------------------------------
def _nir_euler(node, x: np.ndarray, dt: float) -> np.ndarray:
    """Explicit Euler steps of length dt of a NIR neuron's ODE, input held over each step.

    NIR fires on v > v_threshold (strict); the random float inputs below never tie.
    """
    t_steps = x.shape[0]
    v = (
        np.zeros(x.shape[1:])
        if isinstance(node, nir.LI)
        else np.broadcast_to(node.v_reset, x.shape[1:]).astype(np.float64)
    )
    i = np.zeros(x.shape[1:])
    out = []
    for t in range(t_steps):
        if isinstance(node, nir.IF):
            v = v + dt * node.r * x[t]
        elif isinstance(node, nir.LIF):
            v = v + dt / node.tau * ((node.v_leak - v) + node.r * x[t])
        elif isinstance(node, nir.CubaLIF):
            i = i + dt / node.tau_syn * (-i + node.w_in * x[t])
            v = v + dt / node.tau_mem * ((node.v_leak - v) + node.r * i)
        else:  # LI
            v = v + dt / node.tau * ((node.v_leak - v) + node.r * x[t])
            out.append(v.copy())
            continue
        z = (v > node.v_threshold).astype(np.float64)
        v = np.where(z > 0, node.v_reset, v)
        out.append(z)
    return np.stack(out)


@pytest.mark.parametrize(
    "neuron",
    [
        N.IF(v_threshold=0.8, v_reset=-0.2),
        N.LIF(tau=2.5, v_threshold=0.6, v_reset=0.1),
        N.LIF(tau=3.0, decay_input=False, v_threshold=0.9),
        N.CubaLIF(tau_syn=4.0, tau_mem=2.0, v_threshold=0.5, v_reset=-0.1),
        N.LI(tau=3.0),
    ],
    ids=["if", "lif", "lif_no_decay_input", "cuba_lif", "li"],
)
def test_exported_neuron_follows_the_nir_ode_under_euler(neuron: nn.Module) -> None:
    dt = 0.5  # a non-unit step, so tau·dt and r = 1/dt are really exercised
    model = nn.Sequential(neuron)
    graph, _ = export_nir(model, (5,), dt=dt)
    (node,) = [n for n in graph.nodes.values() if not isinstance(n, (nir.Input, nir.Output))]
    x = torch.rand(12, 3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 1.5
    ours = model(x).numpy()
    theirs = _nir_euler(node, x.numpy(), dt)
    if not isinstance(neuron, N.LI):
        assert ours.sum() > 0  # spikes happened
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_lif_parameters_by_hand() -> None:
    # snnkit LIF tau=2, V_reset=0.1, step dt=0.25 -> NIR tau = 2·0.25 = 0.5, r = 1, v_leak = 0.1;
    # check: v += (0.25/0.5)((0.1 − v) + I) = v + (I − (v − 0.1))/2, snnkit's charge.
    graph, _ = export_nir(nn.Sequential(N.LIF(tau=2.0, v_reset=0.1)), (3,), dt=0.25)
    node = graph.nodes["0_lif"]
    assert np.all(node.tau == 0.5) and np.all(node.r == 1.0)
    assert np.all(node.v_leak == 0.1) and np.all(node.v_reset == 0.1)
    assert node.tau.shape == (3,)
    assert graph.metadata["dt"] == 0.25


def test_cuba_and_if_parameters_by_hand() -> None:
    # CubaLIF tau_syn=4, dt=0.5: NIR tau_syn = 2, Euler I += (0.5/2)(−I + w_in X) needs
    # w_in/4 = 1 -> w_in = 4 (= tau_syn); IF: v += dt·r·X = X needs r = 1/dt = 2.
    graph, _ = export_nir(nn.Sequential(N.CubaLIF(tau_syn=4.0, tau_mem=3.0), N.IF()), (2,), dt=0.5)
    cuba, if_node = graph.nodes["0_cubalif"], graph.nodes["1_if"]
    assert np.all(cuba.tau_syn == 2.0) and np.all(cuba.tau_mem == 1.5)
    assert np.all(cuba.w_in == 4.0) and np.all(cuba.r == 1.0)
    assert np.all(if_node.r == 2.0)


# -- round trips ------------------------------------------------------------------------------
def test_round_trip_flatten_linear_lif(tmp_path) -> None:
    torch.manual_seed(0)
    model = _scaled(nn.Sequential(L.Flatten(), L.Linear(16, 5, bias=False), N.LIF(tau=2.0)), 3.0)
    back, warnings = _round_trip(model, (1, 4, 4), tmp_path)
    x = _spikes((8, 4, 1, 4, 4))
    expected = model(x)
    assert expected.sum() > 0
    assert torch.equal(back(x), expected)
    assert isinstance(back[1], L.Linear) and back[1].bias is None
    assert isinstance(back[2], N.LIF) and back[2].decay_input
    assert any("surrogate" in w for w in warnings)


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_round_trip_conv_if_pool_cubalif_li(tmp_path, pool: str) -> None:
    torch.manual_seed(1)
    pooling = L.MaxPool2d(2) if pool == "max" else L.AvgPool2d(2)
    model = _scaled(
        nn.Sequential(
            L.Conv2d(2, 4, 3, padding=1),
            N.IF(),
            pooling,
            L.Flatten(),
            L.Linear(64, 8),
            N.CubaLIF(tau_syn=3.0, tau_mem=2.0, v_threshold=0.5),
            L.Linear(8, 3),
            N.LI(tau=2.0),
        ),
        3.0,
    )
    back, _ = _round_trip(model, (2, 8, 8), tmp_path, dt=1e-3)
    x = _spikes((6, 3, 2, 8, 8), seed=2)
    assert model[:2](x).sum() > 0 and model[:6](x).sum() > 0  # both spiking layers fire
    torch.testing.assert_close(back(x), model(x), rtol=0, atol=1e-6)
    kinds = [type(m) for m in back]
    assert kinds == [L.Conv2d, N.IF, type(pooling), L.Flatten, L.Linear, N.CubaLIF, L.Linear, N.LI]
    assert back[5].tau_syn == pytest.approx(3.0) and isinstance(back[5].surrogate, nn.Module)


def test_round_trip_lif_without_input_decay_and_folded_batchnorm(tmp_path) -> None:
    torch.manual_seed(3)
    bn = L.BatchNorm1d(6)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.1, 0.1)
    model = nn.Sequential(
        _scaled(nn.Sequential(L.Linear(10, 6)), 3.0)[0],
        bn,
        N.LIF(tau=3.0, decay_input=False, v_threshold=0.5),
    ).eval()
    back, warnings = _round_trip(model, (10,), tmp_path)
    assert not back[1].decay_input and back[1].tau == pytest.approx(3.0)
    assert any("batch norm" in w for w in warnings)
    x = _spikes((7, 5, 10), seed=4)
    ours, theirs = model(x), back(x)
    assert ours.sum() > 0
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-6)


def test_save_reads_a_model_object_and_reports_warnings(tmp_path) -> None:
    model = nn.Sequential(L.Linear(4, 3), N.LIF(v_reset=None, detach_reset=True))
    path, warnings = save(model, tmp_path / "out" / "m.nir", input_shape=[4])
    assert path.exists() and path.stat().st_size > 0
    text = " ".join(warnings)
    assert "soft reset" in text and "detach_reset" in text
    assert isinstance(load(path)[1], N.LIF) and load(path)[1].v_reset == 0.0  # hard reset now


def test_save_from_a_run_folder(tmp_path) -> None:
    import snnkit

    recipe = {
        "seed": 0,
        "time_steps": 4,
        "dataset": {"name": "synthetic", "num_samples": 16, "shape": [1, 4, 4], "num_classes": 3},
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": ["flatten", {"name": "linear", "in_features": 16, "out_features": 3}, "lif"],
        },
        "loss": "mse_rate",
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 1, "batch_size": 8, "max_batches": 1, "device": "cpu"},
        "output": {"dir": str(tmp_path / "runs"), "tensorboard": False},
    }
    result = snnkit.run(recipe)
    path, _ = save(result.run_dir, tmp_path / "run.nir")
    graph = nir.read(path)
    np.testing.assert_array_equal(graph.nodes["input"].input_type["input"], [1, 4, 4])
    x = _spikes((4, 2, 1, 4, 4))
    from snnkit.interop import model_from_checkpoint

    model, _ = model_from_checkpoint(result.run_dir, need_input_shape=False)
    assert torch.equal(import_nir(graph)(x), model(x))


# -- reported losses and refusals -------------------------------------------------------------
@pytest.mark.parametrize(
    "neuron", [N.QIF(), N.EIF(), N.Izhikevich(), N.ALIF()], ids=["qif", "eif", "izhikevich", "alif"]
)
def test_inexpressible_neurons_are_refused_naming_the_layer(neuron: nn.Module) -> None:
    model = nn.Sequential(L.Linear(4, 3), neuron)
    with pytest.raises(SnnkitError, match=rf"layer 1 \({type(neuron).__name__}\).*NIR has no"):
        export_nir(model, (4,))


def test_plif_exports_its_learned_tau_as_lif() -> None:
    plif = N.PLIF(init_tau=2.0)
    with torch.no_grad():
        plif.w.fill_(0.5)  # tau = 1/sigmoid(0.5) = 1 + e^(−0.5) ≈ 1.60653
    graph, warnings = export_nir(nn.Sequential(plif), (2,))
    assert np.allclose(graph.nodes["0_lif"].tau, 1 + np.exp(-0.5))
    assert any("PLIF" in w and "1.60653" in w for w in warnings)
    with pytest.raises(SnnkitError, match="strict"):
        export_nir(nn.Sequential(plif), (2,), strict=True)


def test_soft_reset_is_refused_under_strict() -> None:
    with pytest.raises(SnnkitError, match="soft reset"):
        export_nir(nn.Sequential(N.IF(v_reset=None)), (2,), strict=True)


def test_maxpool_on_non_spike_input_is_refused() -> None:
    model = nn.Sequential(L.Conv2d(1, 2, 3), L.MaxPool2d(2))
    with pytest.raises(SnnkitError, match=r"layer 1 \(MaxPool2d\).*0/1 spikes"):
        export_nir(model, (1, 6, 6))


def test_bad_input_shape_names_the_layer() -> None:
    with pytest.raises(SnnkitError, match=r"layer 0 \(Linear\).*input_shape"):
        export_nir(nn.Sequential(L.Linear(4, 3)), (5,))


def test_import_refuses_per_neuron_parameters_and_foreign_nodes() -> None:
    lif = nir.LIF(
        tau=np.array([2.0, 3.0]),
        r=np.ones(2),
        v_leak=np.zeros(2),
        v_threshold=np.ones(2),
        v_reset=np.zeros(2),
    )
    with pytest.raises(SnnkitError, match=r"node 'lif'.*tau varies across neurons"):
        import_nir(nir.NIRGraph.from_list(lif))
    with pytest.raises(SnnkitError, match=r"node 'i' \(I\).*no counterpart"):
        import_nir(nir.NIRGraph.from_list(nir.I(r=np.ones(2))))


def test_import_refuses_a_lif_with_an_input_gain_snnkit_lacks() -> None:
    lif = nir.LIF(
        tau=np.full(2, 4.0),
        r=np.full(2, 2.0),
        v_leak=np.zeros(2),
        v_threshold=np.ones(2),
        v_reset=np.zeros(2),
    )
    with pytest.raises(SnnkitError, match="r = 1 .*or r = tau/dt"):
        import_nir(nir.NIRGraph.from_list(lif))


def test_import_reads_an_external_lif_without_input_decay() -> None:
    # A foreign writer's leaky neuron V ← 0.75 V + X: with dt = 1, tau = 1/(1 − 0.75) = 4 and
    # r = tau/dt = 4 — snnkit's LIF(tau=4, decay_input=False).
    lif = nir.LIF(
        tau=np.full(3, 4.0),
        r=np.full(3, 4.0),
        v_leak=np.zeros(3),
        v_threshold=np.ones(3),
        v_reset=np.zeros(3),
    )
    model = import_nir(nir.NIRGraph.from_list(lif))
    assert isinstance(model[0], N.LIF) and not model[0].decay_input and model[0].tau == 4.0
    x = torch.tensor([[[0.5, 0.0, 1.0]], [[0.5, 0.0, 0.0]]])
    # t=1: V = 0.5, 0, 1.0 -> spikes 0,0,1 (Θ(0) = 1), neuron 3 resets to 0;
    # t=2: V = 0.75·0.5 + 0.5 = 0.875, 0, 0 -> no spikes.
    assert torch.equal(model(x), torch.tensor([[[0.0, 0.0, 1.0]], [[0.0, 0.0, 0.0]]]))
    reset_net(model)
