"""Registry unit tests: names, clashes, suggestions, coercion, supplied arguments."""

from __future__ import annotations

from typing import Annotated

import pydantic
import pytest
from annotated_types import Ge, Gt

from snnkit.constraints import FINITE, Why
from snnkit.errors import ComponentBuildError, ParameterError, PluginError, UnknownComponentError
from snnkit.plugins.registry import Kind, Registry, coerce


class Scaled:
    """Scaled thing: y = alpha * x."""

    def __init__(
        self,
        alpha: float = 1.0,
        steps: int = 3,
        flag: bool = False,
        mode: str = "a",
        widths: tuple[int, ...] = (1, 2),
    ) -> None:
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha, self.steps, self.flag, self.mode, self.widths = alpha, steps, flag, mode, widths


def neuron(surrogate: object, tau: float = 2.0) -> tuple[object, float]:
    """A neuron stand-in that returns what it was given."""
    return surrogate, tau


def needs_root(train: bool, root: str) -> str:
    """A dataset stand-in with a required parameter."""
    return root


@pytest.fixture
def reg() -> Registry:
    r = Registry()
    r.add(Kind.SURROGATE, "scaled", Scaled, plugin="snnkit", version="1.0")
    r.add(Kind.SURROGATE, "scaled_two", Scaled, plugin="other", version="0.2")
    r.add(Kind.NEURON, "lif", neuron, plugin="snnkit")
    r.add(Kind.DATASET, "rooted", needs_root, plugin="snnkit")
    return r


def test_kinds_parse_from_strings_plurals_and_enums() -> None:
    assert Kind.parse("neuron") is Kind.NEURON
    assert Kind.parse("Surrogates") is Kind.SURROGATE
    assert Kind.parse("losses") is Kind.LOSS
    assert Kind.parse(Kind.DATASET) is Kind.DATASET
    assert Kind.LOSS.hook == "register_losses" and Kind.NEURON.hook == "register_neurons"
    with pytest.raises(UnknownComponentError, match="unknown component kind 'neurone'"):
        Kind.parse("neurone")


def test_list_is_sorted_filtered_by_kind_and_glob(reg: Registry) -> None:
    assert [c.name for c in reg.list("surrogate")] == ["scaled", "scaled_two"]
    assert [c.name for c in reg.list(pattern="*two")] == ["scaled_two"]
    assert {c.kind for c in reg.list()} == {Kind.SURROGATE, Kind.NEURON, Kind.DATASET}


def test_component_records_plugin_version_and_summary(reg: Registry) -> None:
    c = reg.get("surrogate", "scaled_two")
    assert (c.plugin, c.version, c.summary) == ("other", "0.2", "Scaled thing: y = alpha * x.")
    assert c.as_dict() == {
        "kind": "surrogate",
        "name": "scaled_two",
        "plugin": "other",
        "version": "0.2",
        "summary": "Scaled thing: y = alpha * x.",
    }


@pytest.mark.parametrize("bad", ["MyLIF", "1lif", "lif-x", "", "lif x"])
def test_names_must_be_lower_snake_case(reg: Registry, bad: str) -> None:
    with pytest.raises(PluginError, match="names must be lower_snake_case"):
        reg.add(Kind.NEURON, bad, neuron, plugin="p")


def test_camel_case_name_gets_a_snake_case_hint(reg: Registry) -> None:
    with pytest.raises(PluginError, match="e.g. 'my_lif'"):
        reg.add(Kind.NEURON, "MyLif", neuron, plugin="p")


def test_clash_names_both_plugins_and_never_overwrites(reg: Registry) -> None:
    with pytest.raises(PluginError) as err:
        reg.add(Kind.SURROGATE, "scaled", neuron, plugin="snnkit-evil")
    assert "snnkit-evil" in str(err.value) and "already registered by 'snnkit'" in str(err.value)
    assert reg.get("surrogate", "scaled").factory is Scaled


def test_non_callable_factory_is_refused(reg: Registry) -> None:
    with pytest.raises(PluginError, match="not callable"):
        reg.add(Kind.LOSS, "broken", 42, plugin="p")


def test_same_name_in_another_kind_is_fine(reg: Registry) -> None:
    reg.add(Kind.LOSS, "scaled", Scaled, plugin="p")
    assert reg.get("loss", "scaled").plugin == "p"


def test_unknown_name_suggests_close_matches_and_lists_all(reg: Registry) -> None:
    with pytest.raises(UnknownComponentError) as err:
        reg.get("surrogate", "scald", at="model.layers[2].surrogate")
    msg = str(err.value)
    assert msg.startswith("model.layers[2].surrogate: unknown surrogate 'scald'")
    assert "did you mean 'scaled'" in msg and "Known: scaled, scaled_two" in msg
    assert "\n" not in msg


def test_unknown_parameter_suggests_and_lists_valid_ones(reg: Registry) -> None:
    with pytest.raises(ParameterError) as err:
        reg.check("surrogate", {"name": "scaled", "alpah": 2}, at="x")
    msg = str(err.value)
    assert "has no parameter 'alpah'" in msg and "did you mean 'alpha'" in msg
    assert "Parameters: alpha=1.0, steps=3, flag=False, mode='a', widths=(1, 2)" in msg


def test_values_are_coerced_to_type_hints(reg: Registry) -> None:
    _, params = reg.check(
        "surrogate",
        {"name": "scaled", "alpha": "1e-3", "steps": "64", "flag": "true", "widths": [3, 4]},
    )
    assert params == {"alpha": 0.001, "steps": 64, "flag": True, "widths": (3, 4)}
    built = reg.build("surrogate", {"name": "scaled", "alpha": "1e-3"})
    assert isinstance(built, Scaled) and built.alpha == 0.001


@pytest.mark.parametrize(
    "param,value", [("alpha", "fast"), ("steps", 1.5), ("flag", "maybe"), ("widths", [1, "x"])]
)
def test_wrong_types_name_the_parameter(reg: Registry, param: str, value: object) -> None:
    with pytest.raises(ParameterError, match=rf"^model\.neuron\.{param}.*expected"):
        reg.check("surrogate", {"name": "scaled", param: value}, at="model.neuron")


def test_supplied_arguments_cannot_be_set_by_a_recipe(reg: Registry) -> None:
    with pytest.raises(ParameterError, match="'surrogate' is supplied by snnkit"):
        reg.check("neuron", {"name": "lif", "surrogate": "x"}, at="model.layers[1]")
    assert "surrogate" not in reg.get("neuron", "lif").parameters()


def test_supplied_arguments_are_passed_by_build(reg: Registry) -> None:
    marker = object()
    assert reg.build("neuron", {"name": "lif", "tau": 3}, surrogate=marker) == (marker, 3.0)


def test_missing_required_parameter_says_what_to_add(reg: Registry) -> None:
    with pytest.raises(ParameterError, match="dataset 'rooted' needs 'root'"):
        reg.build("dataset", "rooted", train=True)


def test_factory_value_error_becomes_a_parameter_error(reg: Registry) -> None:
    with pytest.raises(ParameterError, match="alpha must be > 0, got -1.0"):
        reg.build("surrogate", {"name": "scaled", "alpha": -1})


def test_factory_crash_becomes_a_build_error_naming_the_plugin() -> None:
    def explode() -> None:
        """Always fails."""
        raise RuntimeError("boom")

    r = Registry()
    r.add(Kind.LOSS, "explode", explode, plugin="snnkit-bad", version="0.1")
    with pytest.raises(ComponentBuildError, match="plugin 'snnkit-bad'.*RuntimeError: boom"):
        r.build("loss", "explode", at="loss")


def test_specs_must_name_a_component(reg: Registry) -> None:
    with pytest.raises(ParameterError, match="missing 'name'"):
        reg.check("surrogate", {"alpha": 1})
    with pytest.raises(ParameterError, match="expected a component name"):
        reg.check("surrogate", 3)


def test_coerce_passes_through_untyped_values() -> None:
    from typing import Any

    sentinel = object()
    assert coerce(sentinel, Any, at="x") is sentinel


BUILT: list[object] = []


def ranged(
    tau: Annotated[float, Gt(1), Why("it divides")] = 2.0,
    width: Annotated[int, pydantic.Field(ge=1)] = 4,
    rest: Annotated[float, Ge(0), FINITE] = 0.0,
) -> None:
    """A factory whose ranges live in its signature only."""
    BUILT.append((tau, width, rest))


def test_declared_ranges_are_checked_before_anything_is_built() -> None:
    BUILT.clear()
    r = Registry()
    r.add(Kind.LOSS, "ranged", ranged, plugin="snnkit")
    params = r.get("loss", "ranged").parameters()
    assert params["tau"].type_name == "float" and params["tau"].range == "> 1"
    assert params["width"].range == ">= 1" and params["rest"].range == ">= 0 (finite)"
    with pytest.raises(
        ParameterError,
        match=r"^loss: loss 'ranged': tau must be > 1 "
        r"\(it divides\), got 1\.0$",
    ):
        r.check("loss", {"name": "ranged", "tau": "1"}, at="loss")
    with pytest.raises(ParameterError, match=r"width must be >= 1, got 0"):
        r.build("loss", {"name": "ranged", "width": 0}, at="loss")
    with pytest.raises(ParameterError, match=r"rest must be a finite number, got inf"):
        r.build("loss", {"name": "ranged", "rest": float("inf")}, at="loss")
    with pytest.raises(ParameterError, match=r"tau: expected float, got 'fast'"):
        r.check("loss", {"name": "ranged", "tau": "fast"}, at="loss")
    assert BUILT == []
    r.build("loss", {"name": "ranged", "tau": 1.5}, at="loss")
    assert BUILT == [(1.5, 4, 0.0)]
