"""CUDA graph replay of the training step: same training as eager steps, used when it can be."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import snnkit
from snnkit.engine.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("only_builtins")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def recipe(
    device: str, graphs: bool, encoder: str = "direct", neuron: str = "lif", optimizer: str = "sgd"
) -> dict[str, Any]:
    """72 samples in batches of 16: four full batches and a partial one per epoch."""
    return {
        "seed": 3,
        "time_steps": 6,
        "dataset": {"name": "synthetic", "num_samples": 72, "shape": [1, 4, 4], "num_classes": 4},
        "encoder": encoder,
        "model": {
            "name": "sequential",
            "layers": [
                "flatten",
                {"name": "linear", "in_features": 16, "out_features": 4},
                {"name": neuron},
            ],
        },
        "loss": "mse_rate",
        "optimizer": {"name": optimizer, "lr": 0.5},
        "train": {"epochs": 3, "batch_size": 16, "device": device, "cuda_graphs": graphs},
        "output": {"tensorboard": False},
    }


@pytest.fixture
def graph_steps(monkeypatch) -> list[Any]:
    from snnkit.engine.cuda_graphs import GraphStep

    made: list[Any] = []
    init = GraphStep.__init__

    def recording_init(self, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(GraphStep, "__init__", recording_init)
    return made


def test_cuda_graphs_setting_is_ignored_on_cpu(tmp_path: Path, graph_steps: list[Any]) -> None:
    result = snnkit.run(recipe("cpu", True), out=tmp_path / "run")
    assert len(result.metrics) == 3 and graph_steps == []


@cuda
def test_graph_replay_trains_like_eager_steps(tmp_path: Path, graph_steps: list[Any]) -> None:
    eager = snnkit.run(recipe("cuda", False), out=tmp_path / "eager")
    assert graph_steps == []
    graphed = snnkit.run(recipe("cuda", True), out=tmp_path / "graph")
    (step,) = graph_steps
    # 3 warm-up batches, then every full batch replays; the partial batches run eagerly
    assert step.captured and not step.failed and step.replays == 3 * 4 - 3
    for a, b in zip(eager.metrics, graphed.metrics):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    wa = load_checkpoint(tmp_path / "eager" / "last.pt")["model"]
    wb = load_checkpoint(tmp_path / "graph" / "last.pt")["model"]
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-5, atol=1e-6)


@cuda
def test_poisson_input_and_fused_adam_are_captured(tmp_path: Path, graph_steps: list[Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = snnkit.run(
            recipe("cuda", True, encoder="poisson", optimizer="adam"), out=tmp_path / "run"
        )
    (step,) = graph_steps
    assert step.replays == 9 and all(m["train_loss"] > 0 for m in result.metrics)


@cuda
def test_plif_is_captured_too(tmp_path: Path, graph_steps: list[Any]) -> None:
    # PLIF's k = sigmoid(w) stays on the GPU (the Triton kernels read it there)
    graphed = snnkit.run(recipe("cuda", True, neuron="plif"), out=tmp_path / "graph")
    (step,) = graph_steps
    assert not step.failed and step.replays == 9
    eager = snnkit.run(recipe("cuda", False, neuron="plif"), out=tmp_path / "eager")
    for a, b in zip(eager.metrics, graphed.metrics):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    wa = load_checkpoint(tmp_path / "eager" / "last.pt")["model"]
    wb = load_checkpoint(tmp_path / "graph" / "last.pt")["model"]
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-5, atol=1e-6)


@cuda
def test_a_step_that_reads_back_to_the_host_runs_eagerly() -> None:
    """Capture fails (a .item() inside the step): one warning, then None = run it eagerly."""
    from snnkit.components.losses import MSERate
    from snnkit.engine.cuda_graphs import WARMUP, GraphStep
    from snnkit.engine.evaluation import predict

    lin = torch.nn.Linear(4, 3).cuda()
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = lin(x).unsqueeze(0).expand(2, -1, -1)
        if float(out.detach().sum()) > 1e9:  # a host read: not capturable
            raise AssertionError
        return out

    step = GraphStep(forward, MSERate(), predict, opt)
    x, y = torch.rand(5, 4, device="cuda"), torch.tensor([0, 1, 2, 0, 1], device="cuda")
    for _ in range(WARMUP):
        assert step.replay(x, y) is None
    with pytest.warns(RuntimeWarning, match="cannot be captured as a CUDA graph"):
        assert step.replay(x, y) is None
    assert step.failed and not step.captured and step.replay(x, y) is None
    out = forward(x)  # the GPU still works eagerly afterwards
    MSERate()(out, y).backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()
    want = lin.weight.grad.clone()
    loss, correct = step(x, y)  # as a train step: the batch runs eagerly, gradients written anew
    assert loss.dim() == 0 and correct.dim() == 0
    torch.testing.assert_close(lin.weight.grad, want)
