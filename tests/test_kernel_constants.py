"""The kernels' numbers have one definition: the Python enums, from which constants.h is made."""

from __future__ import annotations

import re
from pathlib import Path

from snnkit.kernels import gen_constants, random_stream
from snnkit.kernels.forms import CHARGE_PREDICATES, ChargeMode, SurrogateKind

CSRC = Path(gen_constants.__file__).parent / "cpu" / "csrc"


def test_checked_in_header_is_what_the_generator_writes() -> None:
    assert gen_constants.HEADER.read_text(encoding="utf-8") == gen_constants.header_text(), (
        "constants.h is stale: run python -m snnkit.kernels.gen_constants"
    )
    assert gen_constants.main(["--check"]) == 0


def test_header_holds_every_enum_value_and_random_constant() -> None:
    text = gen_constants.header_text()
    for prefix, members in (("Charge", ChargeMode), ("Surrogate", SurrogateKind)):
        for m in members:
            camel = "".join(p.capitalize() for p in m.name.split("_"))
            assert f"constexpr int64_t k{prefix}{camel} = {int(m)};" in text
    for pred in CHARGE_PREDICATES:
        assert f"constexpr bool charge_{pred}(int64_t mode)" in text
    assert f"0x{random_stream.GOLDEN:016X}ULL" in text


def test_charge_predicates_and_variants() -> None:
    M = ChargeMode
    assert [m for m in M if m.divides] == [M.LIF, M.LIF_NODECAY]
    assert {m for m in M if m.multiplies} == {M.PLIF, M.PLIF_NODECAY, M.MUL, M.MUL_NODECAY}
    assert [m for m in M if m.learns_k] == [M.PLIF, M.PLIF_NODECAY]
    assert M.PLIF.without_grad_k() is M.MUL and M.PLIF_NODECAY.without_grad_k() is M.MUL_NODECAY
    assert M.LIF.without_grad_k() is M.LIF
    assert M.LIF.by_multiplication() is M.MUL and M.PLIF.by_multiplication() is M.PLIF
    for m in (M.LIF, M.PLIF, M.MUL):
        assert m.decays_input and not m.without_input_decay().decays_input


def test_csrc_spells_no_enum_number() -> None:
    """The C++ switches on the generated names, never on bare charge or surrogate numbers."""
    for path in CSRC.glob("*.cpp"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bcase\s+\d+\s*:", text), path.name
        assert not re.search(r"\b(CH|ch|sur|charge_mode)\s*==\s*\d", text), path.name
