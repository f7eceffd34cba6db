"""Recipe loading: YAML layers, --set overrides, path rules, the skeleton and resume rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from snnkit.errors import RecipeError
from snnkit.recipes.loader import check_resume_changes, load_recipe
from snnkit.recipes.yaml_source import apply_override, read_yaml

REPO = Path(__file__).resolve().parents[1]
MINIMAL = {
    "time_steps": 4,
    "dataset": "synthetic",
    "encoder": "poisson",
    "model": {"name": "sequential", "layers": ["flatten", "lif"]},
    "loss": "mse_rate",
    "optimizer": {"name": "adam", "lr": 1e-3},
}


def test_the_default_recipe_loads_with_its_documented_values() -> None:
    recipe = load_recipe(REPO / "recipes" / "lif_mnist.yaml")
    assert recipe.time_steps == 100 and recipe.train.epochs == 100 and recipe.train.batch_size == 64
    assert recipe.encoder == {"name": "poisson"} and recipe.loss == {"name": "mse_rate"}
    assert recipe.model["layers"][2]["surrogate"] == {"name": "sigmoid", "alpha": 4.0}
    assert recipe.label == "lif_mnist"


def test_strings_are_shorthand_and_defaults_fill_in() -> None:
    recipe = load_recipe(MINIMAL)
    assert recipe.dataset == {"name": "synthetic"} and recipe.seed == 0
    assert (
        recipe.train.device == "auto" and recipe.output.dir == "runs" and recipe.label == "recipe"
    )


def test_the_mapping_passed_in_is_not_changed() -> None:
    raw = {**MINIMAL, "model": {"name": "sequential", "layers": ["flatten", "lif"]}}
    load_recipe(raw, ["model.layers.1.tau=3", "train.epochs=2"])
    assert raw["model"]["layers"][1] == "lif" and "train" not in raw


@pytest.mark.parametrize(
    "text,path,value",
    [
        ("train.epochs=3", ("train", "epochs"), 3),
        (
            "optimizer.lr=1e-4",
            ("optimizer", "lr"),
            "1e-4",
        ),  # YAML 1.1 text; the registry coerces it
        ("optimizer.lr=1.0e-4", ("optimizer", "lr"), 1.0e-4),
        ("model.layers.1.tau=3.5", ("model", "layers", 1, "tau"), 3.5),
        ("model.layers.1=plif", ("model", "layers", 1), "plif"),
        ("encoder.name=latency", ("encoder", "name"), "latency"),
        ("dataset.root=null", ("dataset", "root"), None),
        ("dataset.shape=[1, 2, 2]", ("dataset", "shape"), [1, 2, 2]),
        ("output.name= my run ", ("output", "name"), "my run"),
    ],
)
def test_overrides_parse_values_as_yaml(text: str, path: tuple, value) -> None:
    raw = {**MINIMAL, "model": {"name": "sequential", "layers": ["flatten", "lif"]}}
    apply_override(raw, text)
    node = raw
    for part in path:
        node = node[part]
    assert node == value


def test_override_turns_a_name_into_a_spec_to_set_a_parameter() -> None:
    raw = {**MINIMAL, "model": {"name": "sequential", "layers": ["flatten", "lif"]}}
    apply_override(raw, "model.layers.1.tau=3")
    apply_override(raw, "model.layers.1.surrogate.name=atan")
    apply_override(raw, "encoder.time_steps=3")  # refused later, by the registry
    assert raw["model"]["layers"][1] == {"name": "lif", "tau": 3, "surrogate": {"name": "atan"}}
    assert raw["encoder"] == {"name": "poisson", "time_steps": 3}


def test_override_into_a_plain_value_is_refused() -> None:
    raw = {**MINIMAL, "train": {"device": "cpu"}}
    with pytest.raises(RecipeError, match=r"'train.device' holds the value 'cpu', not a section"):
        apply_override(raw, "train.device.index=1")


def test_overrides_apply_in_order_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "time_steps: 4\ndataset: synthetic\nencoder: poisson\nmodel: {name: mlp, "
        "sizes: [64, 10]}\nloss: mse_rate\noptimizer: adam\ntrain: {epochs: 5}\n"
    )
    recipe = load_recipe(path, ["train.epochs=2", "train.epochs=3", "time_steps=8"])
    assert recipe.train.epochs == 3 and recipe.time_steps == 8


def test_relative_paths_follow_the_documented_rule(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "r.yaml").write_text(
        "time_steps: 4\ndataset: {name: mnist, root: data}\nencoder: poisson\n"
        "model: {name: mlp, sizes: [784, 10]}\nloss: mse_rate\noptimizer: adam\n"
        "output: {dir: out}\n"
    )
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(folder / "r.yaml")
    assert recipe.dataset["root"] == str(folder / "data") and recipe.output.dir == str(
        folder / "out"
    )
    # a path on the command line stays relative to the working directory (data.resolve_root)
    assert load_recipe(folder / "r.yaml", ["dataset.root=cli"]).dataset["root"] == "cli"


def test_int_fields_accept_exact_numbers_and_numeric_text() -> None:
    recipe = load_recipe(MINIMAL, ['train.batch_size="64"', "train.epochs=2.0", "seed=7"])
    assert recipe.train.batch_size == 64 and recipe.train.epochs == 2 and recipe.seed == 7


@pytest.mark.parametrize(
    "override,expected",
    [
        ("train.epochs=true", "train.epochs must be an integer, not true"),
        ("train.epochs=1.5", "train.epochs must be a whole number"),
        ("seed=-1", "seed must be >= 0"),
        (
            "train.grad_clip=0",
            "train.grad_clip must be > 0.0 (max gradient norm; null = no clipping), got 0",
        ),
        ("train.device=cuda:x", "train.device must be auto, cpu, cuda or cuda:N, got 'cuda:x'"),
        ("train.amp=maybe", "train.amp must be true or false, got 'maybe'"),
        ("output.name=[a]", "output.name must be text, got list"),
    ],
)
def test_skeleton_values_are_checked_with_one_line_messages(override: str, expected: str) -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(MINIMAL, [override])
    assert str(info.value).startswith(f"recipe: {expected}")
    assert "\n" not in str(info.value)


def test_an_empty_optional_section_means_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "time_steps: 4\ndataset: synthetic\nencoder: poisson\nmodel: {name: mlp, "
        "sizes: [64, 10]}\nloss: mse_rate\noptimizer: adam\ntrain:\noutput:\n"
    )
    recipe = load_recipe(path)
    assert recipe.train.epochs == 1 and recipe.output.tensorboard is True


def test_yaml_errors_carry_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("seed: 0\ntime_steps: [4\n")
    with pytest.raises(RecipeError, match=rf"^{path}:3:1: invalid YAML: "):
        read_yaml(path)


def test_undecodable_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes(b"seed: \xff\xfe\n")
    with pytest.raises(
        RecipeError, match="cannot read the file .*UnicodeDecodeError.* pass a UTF-8"
    ):
        read_yaml(path)


def test_yes_no_keys_are_refused_not_turned_into_booleans(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("seed: 0\non: 3\n")
    with pytest.raises(RecipeError, match=r"r.yaml:2:1: keys must be names, got True"):
        read_yaml(path)


def test_resume_may_extend_training_and_change_the_optimizer_settings() -> None:
    saved = load_recipe(MINIMAL)
    wanted = load_recipe(
        MINIMAL,
        [
            "train.epochs=9",
            "optimizer.lr=1e-5",
            "dataset.root=/data",
            "output.tensorboard=false",
            "scheduler=cosine",
        ],
    )
    check_resume_changes(saved, wanted, [])


@pytest.mark.parametrize(
    "override,expected",
    [
        (
            "time_steps=8",
            "cannot change 'time_steps' of a run that has started (--set time_steps=8)",
        ),
        ("seed=3", "cannot change 'seed'"),
        ("model.layers.1.tau=3", "cannot change 'model'"),
        ("dataset.num_samples=9", "cannot change 'dataset'"),
        ("encoder=latency", "cannot change 'encoder'"),
        ("optimizer.name=sgd", "cannot change optimizer.name"),
    ],
)
def test_resume_refuses_changes_to_what_the_weights_mean(override: str, expected: str) -> None:
    saved = load_recipe(MINIMAL)
    with pytest.raises(RecipeError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        check_resume_changes(saved, load_recipe(MINIMAL, [override]), [override])
