"""A corpus of broken recipes and command lines: each exits 2 with one `error:` line, no traceback.

Every YAML file in tests/bad_inputs/ (but the valid base_ok.yaml, which the command-line cases
break with --set) appears in CASES with the text its message must hold. Cases run in-process
through typer's CliRunner on `snnkit.cli.app.app`, mostly with `validate` (nothing is written).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from snnkit.cli.app import app
from snnkit.data.images import InMemoryDataset
from snnkit.hookspecs import hookimpl
from snnkit.plugins.loader import build_registry

CORPUS = Path(__file__).parent / "bad_inputs"
BASE = CORPUS / "base_ok.yaml"
runner = CliRunner()

# (file in the corpus, extra arguments, expected exit code, text the error line must hold)
CASES: list[tuple[str, list[str], int, str]] = [
    # 1. YAML itself
    ("syntax_unclosed_brace.yaml", [], 2, "syntax_unclosed_brace.yaml:5:8: invalid YAML"),
    (
        "syntax_tab_indent.yaml",
        [],
        2,
        "syntax_tab_indent.yaml:3:1: invalid YAML: found character '\\t'",
    ),
    ("syntax_bad_indent.yaml", [], 2, "syntax_bad_indent.yaml:4:10: invalid YAML: mapping values"),
    ("empty.yaml", [], 2, "empty.yaml: the recipe is empty"),
    ("comments_only.yaml", [], 2, "the recipe is empty — start from recipes/lif_mnist.yaml"),
    (
        "top_level_list.yaml",
        [],
        2,
        "a recipe must be a mapping of sections (seed, dataset, model, ...), got a list",
    ),
    ("top_level_scalar.yaml", [], 2, "got an int"),
    (
        "python_tag_apply.yaml",
        [],
        2,
        "python_tag_apply.yaml:2:7: YAML tag !!python/object/apply:os.system is not allowed — recipes are read with yaml.safe_load",
    ),
    ("python_tag_name.yaml", [], 2, "YAML tag !!python/name:os.system is not allowed"),
    (
        "duplicate_key.yaml",
        [],
        2,
        "duplicate_key.yaml:15:1: duplicate key 'train' (first at line 14)",
    ),
    ("non_string_key.yaml", [], 2, "non_string_key.yaml:11:19: keys must be names, got 2"),
    # 2. the skeleton
    ("unknown_section.yaml", [], 2, "unknown section 'trainer' — did you mean 'train'?"),
    ("unknown_train_key.yaml", [], 2, "train: unknown key 'epoch' — did you mean 'epochs'?"),
    ("missing_model.yaml", [], 2, "missing section 'model'"),
    ("train_not_mapping.yaml", [], 2, "train: expected a mapping of settings"),
    (
        "model_not_a_spec.yaml",
        [],
        2,
        "model: expected a component name or a mapping {name: ..., ...}, got 3",
    ),
    (
        "encoder_without_name.yaml",
        [],
        2,
        "encoder: missing 'name' — write {name: ..., ...} or just the name",
    ),
    (
        "epochs_fraction.yaml",
        [],
        2,
        "train.epochs must be a whole number (passes over the training set, e.g. 10), got 1.5",
    ),
    ("epochs_exponent.yaml", [], 2, "YAML reads 1e3 as text; write 1000"),
    ("epochs_zero.yaml", [], 2, "train.epochs must be > 0"),
    (
        "time_steps_zero.yaml",
        [],
        2,
        "time_steps must be > 0 (simulation steps per sample, e.g. 100), got 0",
    ),
    (
        "time_steps_negative.yaml",
        [],
        2,
        "time_steps must be > 0 (simulation steps per sample, e.g. 100), got -5",
    ),
    ("time_steps_bool.yaml", [], 2, "time_steps must be an integer, not true"),
    ("batch_size_zero.yaml", [], 2, "train.batch_size must be > 0"),
    (
        "batch_size_negative.yaml",
        [],
        2,
        "train.batch_size must be > 0 (samples per optimizer step, e.g. 64), got -16",
    ),
    ("seed_negative.yaml", [], 2, "seed must be >= 0"),
    ("device_unknown.yaml", [], 2, "train.device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    # 3. component names and parameters
    (
        "unknown_neuron.yaml",
        [],
        2,
        "model.layers[2]: unknown layer or neuron 'liff' — did you mean 'lif'",
    ),
    (
        "unknown_layer.yaml",
        [],
        2,
        "model.layers[1]: unknown layer or neuron 'lineer' — did you mean 'linear'?",
    ),
    (
        "unknown_surrogate.yaml",
        [],
        2,
        "model.layers[2].surrogate: unknown surrogate 'sigmoi' — did you mean 'sigmoid'",
    ),
    ("unknown_encoder.yaml", [], 2, "encoder: unknown encoder 'poison' — did you mean 'poisson'?"),
    ("unknown_loss.yaml", [], 2, "loss: unknown loss 'mse_rat' — did you mean 'mse_rate'"),
    ("unknown_optimizer.yaml", [], 2, "optimizer: unknown optimizer 'adamm' — did you mean 'adam'"),
    ("unknown_dataset.yaml", [], 2, "dataset: unknown dataset 'mnsit' — did you mean 'mnist'"),
    (
        "unknown_neuron_param.yaml",
        [],
        2,
        "neuron 'lif' has no parameter 'taux' — did you mean 'tau'?",
    ),
    (
        "unknown_loss_param.yaml",
        [],
        2,
        "loss 'ce_rate' has no parameter 'scal' — did you mean 'scale'?",
    ),
    ("tau_not_a_number.yaml", [], 2, "model.layers[2].tau: expected float, got 'fast'"),
    ("bias_not_a_bool.yaml", [], 2, "model.layers[1].bias: expected bool, got 'maybe'"),
    (
        "surrogate_bad_param.yaml",
        [],
        2,
        "model.layers[2].surrogate.alpha: expected float, got 'steep'",
    ),
    (
        "surrogate_not_a_spec.yaml",
        [],
        2,
        "model.layers[2].surrogate: expected a component name or a mapping {name: ..., ...}, got list",
    ),
    ("surrogate_without_name.yaml", [], 2, "model.layers[2].surrogate: missing 'name'"),
    (
        "supplied_optimizer_params.yaml",
        [],
        2,
        "optimizer.params: 'params' is supplied by snnkit; remove it",
    ),
    (
        "supplied_encoder_time_steps.yaml",
        [],
        2,
        "encoder.time_steps: 'time_steps' is supplied by snnkit",
    ),
    ("lr_zero.yaml", [], 2, "optimizer 'adam': lr must be > 0, got 0.0"),
    ("lr_negative.yaml", [], 2, "optimizer 'sgd': lr must be > 0, got -0.1"),
    ("tau_one.yaml", [], 2, "neuron 'lif': tau must be > 1"),
    ("tau_below_one.yaml", [], 2, "tau must be > 1 (the charge equation divides by tau"),
    (
        "threshold_below_reset.yaml",
        [],
        2,
        "v_threshold must be > v_reset under hard reset, got v_threshold=0.0, v_reset=0.5",
    ),
    ("threshold_equals_reset.yaml", [], 2, "neuron 'if': v_threshold must be > v_reset"),
    ("empty_layer_list.yaml", [], 2, "layers must list at least one layer or neuron"),
    (
        "step_mode_unknown.yaml",
        [],
        2,
        "step_mode must be 'm' (multi-step) or 's' (single-step), got 'x'",
    ),
    # 4. assembly: shapes, classes, memory
    (
        "shapes_do_not_chain.yaml",
        [],
        2,
        "model.layers[3] (linear): expects in_features=10 but the layer before it gives 12 features — set in_features: 12",
    ),
    (
        "conv_channels.yaml",
        [],
        2,
        "model.layers[0] (conv2d): expects in_channels=3 but gets per-step input [1, 4, 4]",
    ),
    (
        "missing_flatten.yaml",
        [],
        2,
        "model.layers[0] (linear): expects vectors of in_features=16 but gets per-step input of shape [1, 4, 4] — put a flatten layer before it",
    ),
    (
        "output_width.yaml",
        [],
        2,
        "the output layer has 5 neurons but dataset 'synthetic' has 4 classes — set the last layer's out_features to 4",
    ),
    (
        "huge_time_steps.yaml",
        [],
        2,
        "one batch needs about 2861.0 GiB (time_steps 1000000000 × batch 16",
    ),
    ("huge_batch_size.yaml", [], 2, "lower time_steps or batch_size"),
    # 5. command lines on the valid base recipe
    (
        "base_ok.yaml",
        ["--set", "train.epochs"],
        2,
        "--set 'train.epochs': expected KEY=VALUE with a dotted key",
    ),
    ("base_ok.yaml", ["--set", "=3"], 2, "--set '=3': expected KEY=VALUE"),
    ("base_ok.yaml", ["--set", "train..epochs=3"], 2, "expected KEY=VALUE with a dotted key"),
    (
        "base_ok.yaml",
        ["--set", "train.epochs=[1"],
        2,
        "--set 'train.epochs=[1': the value is not valid YAML",
    ),
    (
        "base_ok.yaml",
        ["--set", "model.layers.9.tau=3"],
        2,
        "'model.layers.9' must be a list index 0..2",
    ),
    ("base_ok.yaml", ["--set", "seed.x=1"], 2, "'seed' holds the value 0, not a section"),
    (
        "base_ok.yaml",
        ["--set", "trian.epochs=2"],
        2,
        "unknown section 'trian' — did you mean 'train'?",
    ),
    (
        "base_ok.yaml",
        ["--set", "model.layers.2.tau=fast"],
        2,
        "model.layers[2].tau: expected float, got 'fast'",
    ),
    (
        "base_ok.yaml",
        ["--set", "model.layers.0.step_mode=x"],
        2,
        "model.layers[0]: layer 'flatten'",
    ),
    ("base_ok.yaml", ["--set", "time_steps=1000000000"], 2, "one batch needs about"),
    ("base_ok.yaml", ["--set", "train.batch_size=1000000000"], 2, "batch 1000000000"),
]

CUDA_CASES = [
    ("device_cuda.yaml", [], 2, "train.device: 'cuda' requested but no CUDA device is present"),
    (
        "base_ok.yaml",
        ["--device", "cuda"],
        2,
        "no CUDA device is present — use device: auto or cpu",
    ),
]
PLUGIN_CASES = ("plugin_surrogate_unknown.yaml", "poisson_out_of_range.yaml", "missing_data.yaml")


def assert_one_error(result, code: int, expected: str) -> None:
    """Exit ``code``, exactly one stderr line, starting 'error:' and holding ``expected``."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output


pytestmark = pytest.mark.usefixtures("only_builtins")


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Run one valid recipe first, so import-time log lines of other modules are not counted."""
    assert runner.invoke(app, ["validate", str(BASE)]).exit_code == 0


def test_every_corpus_file_is_in_the_table() -> None:
    listed = {c[0] for c in CASES + CUDA_CASES} | set(PLUGIN_CASES)
    on_disk = {p.name for p in CORPUS.glob("*.yaml")}
    assert on_disk == listed
    assert len(CASES) + len(CUDA_CASES) + len(PLUGIN_CASES) >= 40


@pytest.mark.parametrize(
    "name,args,code,expected",
    CASES,
    ids=[f"{c[0]}{'+' + ' '.join(c[1]) if c[1] else ''}" for c in CASES],
)
def test_validate_refuses(name: str, args: list[str], code: int, expected: str) -> None:
    result = runner.invoke(app, ["validate", str(CORPUS / name), *args])
    assert_one_error(result, code, expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("name,args,code,expected", CUDA_CASES)
def test_cuda_on_a_cpu_machine(name: str, args: list[str], code: int, expected: str) -> None:
    assert_one_error(runner.invoke(app, ["validate", str(CORPUS / name), *args]), code, expected)


@pytest.mark.parametrize("name", ["python_tag_apply.yaml", "python_tag_name.yaml"])
def test_yaml_tags_run_nothing(name: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the tag would `touch snnkit-pwned` here
    result = runner.invoke(app, ["validate", str(CORPUS / name)])
    assert result.exit_code == 2 and not (tmp_path / "snnkit-pwned").exists()


def test_huge_values_are_refused_before_allocating() -> None:
    t0 = time.perf_counter()
    result = runner.invoke(app, ["validate", str(CORPUS / "huge_time_steps.yaml")])
    assert result.exit_code == 2 and time.perf_counter() - t0 < 5.0


def test_a_quoted_batch_size_is_accepted() -> None:
    result = runner.invoke(app, ["validate", str(BASE), "--set", 'train.batch_size="16"'])
    assert result.exit_code == 0 and "batch 16" in result.stdout


@pytest.mark.parametrize(
    "name,args,expected",
    [
        ("huge_time_steps.yaml", [], "one batch needs about"),
        ("shapes_do_not_chain.yaml", [], "expects in_features=10"),
        ("base_ok.yaml", ["--set", "model.layers.2.taux=3"], "has no parameter 'taux'"),
    ],
)
def test_run_refuses_before_creating_a_run_folder(name, args, expected, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(CORPUS / name), *args, "--out", str(out)])
    assert_one_error(result, 2, expected)
    assert not out.exists()


# -- paths and run folders -------------------------------------------------------------------
def test_missing_recipe_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert_one_error(runner.invoke(app, ["validate", str(missing)]), 2, f"{missing}: no such file")


def test_directory_instead_of_a_recipe(tmp_path: Path) -> None:
    assert_one_error(
        runner.invoke(app, ["validate", str(tmp_path)]), 2, f"{tmp_path}: is a directory"
    )


def test_run_without_a_recipe() -> None:
    assert_one_error(
        runner.invoke(app, ["run"]), 2, "give a recipe file, e.g. snnkit run recipes/lif_mnist.yaml"
    )


def test_out_into_an_existing_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["run", str(BASE), "--out", str(tmp_path)])
    assert_one_error(result, 2, f"--out {tmp_path}: the folder exists and is not empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_out_onto_a_file(tmp_path: Path) -> None:
    target = tmp_path / "a_file"
    target.write_text("x")
    result = runner.invoke(app, ["run", str(BASE), "--out", str(target)])
    assert_one_error(result, 2, "a file of that name exists")


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda p: p / "nowhere", "no such run folder"),
        (lambda p: p, "not a run folder (no recipe.yaml)"),
    ],
)
def test_resume_of_something_that_is_not_a_run(make, expected, tmp_path: Path) -> None:
    assert_one_error(runner.invoke(app, ["run", "--resume", str(make(tmp_path))]), 2, expected)


def test_resume_with_a_recipe_too(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(BASE), "--resume", str(tmp_path)])
    assert_one_error(result, 2, "give either a recipe or --resume RUN_DIR")


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda p: p / "none.pt", "no such checkpoint"),
        (lambda p: p, "no last.pt or best.pt in this folder"),
        (lambda p: BASE, "base_ok.yaml: not a checkpoint (not a file written by torch.save)"),
    ],
)
def test_eval_of_something_that_is_not_a_checkpoint(make, expected, tmp_path: Path) -> None:
    assert_one_error(runner.invoke(app, ["eval", str(make(tmp_path))]), 2, expected)


# -- cases that need a plugin or a data folder -----------------------------------------------
def _ramp(train: bool, high: float = 1.0, num_samples: int = 16) -> InMemoryDataset:
    """Float inputs ``[N, 4]`` rising linearly from 0 to ``high`` (4 classes)."""
    x = torch.linspace(0.0, high, num_samples * 4).view(num_samples, 4)
    return InMemoryDataset(x, torch.arange(num_samples) % 4, 4, "ramp")


class _RampPlugin:
    __name__ = "snnkit_ramp"

    @hookimpl
    def register_datasets(self, register) -> None:
        register("ramp", _ramp)


class _BrokenPlugin:
    __name__ = "snnkit_fancy"

    @hookimpl
    def register_surrogates(self, register) -> None:
        raise RuntimeError("fancy_spike needs a GPU library that is not installed")


@pytest.fixture
def plugin_registry(monkeypatch):
    registry = build_registry(plugins=[_RampPlugin(), _BrokenPlugin()], entry_points=False)
    monkeypatch.setattr("snnkit.plugins.loader.get_registry", lambda: registry)
    return registry


@pytest.mark.parametrize("command", ["validate", "run"])
def test_poisson_input_outside_0_1(command: str, plugin_registry, tmp_path: Path) -> None:
    args = [command, str(CORPUS / "poisson_out_of_range.yaml")]
    result = runner.invoke(app, args + (["--out", str(tmp_path / "r")] if command == "run" else []))
    assert_one_error(
        result,
        2,
        "dataset 'ramp' → poisson encoder: input intensities must lie "
        "in [0, 1], got min 0, max 2 — normalise the inputs",
    )


def test_poisson_input_outside_0_1_late_in_the_data(plugin_registry, tmp_path: Path) -> None:
    # The first batch passes the assembly check (values <= 1); the engine meets the rest.
    args = [
        "run",
        str(CORPUS / "poisson_out_of_range.yaml"),
        "--set",
        "dataset.high=1.5",
        "--set",
        "train.batch_size=2",
        "--out",
        str(tmp_path / "r"),
    ]
    result = runner.invoke(app, args)
    assert_one_error(result, 2, "poisson encoder: input intensities must lie in [0, 1]")


def test_unknown_component_names_the_plugin_that_failed(plugin_registry) -> None:
    result = runner.invoke(app, ["validate", str(CORPUS / "plugin_surrogate_unknown.yaml")])
    assert_one_error(result, 2, "unknown surrogate 'fancy_spike'")
    assert "note: plugin 'snnkit_fancy' failed" in result.stderr


def test_missing_dataset_files(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["validate", str(CORPUS / "missing_data.yaml"), "--set", f"dataset.root={tmp_path}"]
    )
    assert_one_error(
        result,
        2,
        f"files missing in {tmp_path / 'MNIST' / 'raw'}: "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte",
    )


# -- the default recipe on real MNIST ----------------------------------------------------------
@pytest.fixture
def mnist_data(monkeypatch) -> Path:
    """SNNKIT_DATA as CI sets it, else ../shared/data next to the repository, else skip."""
    root = os.environ.get("SNNKIT_DATA") or str(
        Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    if not (Path(root) / "MNIST" / "raw").is_dir():
        pytest.skip("real MNIST not found (set SNNKIT_DATA)")
    monkeypatch.setenv("SNNKIT_DATA", root)
    return Path(root)


@pytest.mark.e2e
def test_default_recipe_validates_and_names_mnist_shapes(mnist_data: Path) -> None:
    recipe = str(Path(__file__).resolve().parents[1] / "recipes" / "lif_mnist.yaml")
    ok = runner.invoke(app, ["validate", recipe])
    assert ok.exit_code == 0 and "mnist (60000 train / 10000 test)" in ok.stdout
    bad = runner.invoke(app, ["validate", recipe, "--set", "model.layers.1.in_features=100"])
    assert_one_error(
        bad,
        2,
        "model.layers[1] (linear): expects in_features=100 but the layer "
        "before it gives 784 features — set in_features: 784",
    )
