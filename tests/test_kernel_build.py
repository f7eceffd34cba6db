"""Building the C++ CPU kernels: the ISA choice and its flags, the first-use notice, the
fallback without a compiler, and ``snnkit kernels build`` / ``status``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snnkit.cli.app import app
from snnkit.errors import SnnkitError
from snnkit.kernels.cpu import build, isa

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_cpu(monkeypatch: pytest.MonkeyPatch):
    """Pretend to be another CPU: ``fake(machine, flags)``."""

    def fake(machine: str, flags: str) -> None:
        monkeypatch.setattr(isa.platform, "machine", lambda: machine)
        monkeypatch.setattr(isa, "cpu_feature_line", lambda: f"flags\t: {flags}")
        isa.runnable_isas.cache_clear()

    yield fake
    isa.runnable_isas.cache_clear()


def test_isa_choice_per_cpu(fake_cpu, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SNNKIT_CPU_ISA", raising=False)
    fake_cpu("x86_64", "sse2 avx avx2 fma avx512f avx512bw avx512dq avx512vl")
    assert isa.runnable_isas() == ("avx512", "avx2", "generic")
    assert isa.resolve_isa() == "avx512" and isa.resolve_isa("avx2") == "avx2"
    fake_cpu("x86_64", "sse2 avx avx2 fma")  # e.g. the AMD EPYC without AVX-512
    assert isa.resolve_isa() == "avx2"
    with pytest.raises(SnnkitError, match="cannot run avx512"):
        isa.resolve_isa("avx512")
    fake_cpu("aarch64", "fp asimd evtstrm crc32")
    assert isa.resolve_isa() == "neon"
    monkeypatch.setenv("SNNKIT_CPU_ISA", "avx3")
    with pytest.raises(SnnkitError, match="unknown instruction set 'avx3'.*auto, avx512"):
        isa.resolve_isa()


def test_flags_per_architecture() -> None:
    assert "-mprefer-vector-width=512" in isa.isa_flags("avx512")
    avx2 = isa.isa_flags("avx2")
    assert "-mno-avx512f" in avx2 and "-mprefer-vector-width=256" in avx2
    neon = isa.isa_flags("neon")  # no x86 flag on ARM
    assert neon == ("-mcpu=native",)
    assert not any("vector-width" in f or "march" in f for f in neon + isa.isa_flags("generic"))
    # -ffp-contract=off on every target: the kernels round as PyTorch does
    assert all("-ffp-contract=off" in build.build_flags(i) for i in isa.ISA_NAMES[1:])


def test_each_isa_is_its_own_build() -> None:
    names = {build.extension_name(i) for i in isa.runnable_isas()}
    assert len(names) == len(isa.runnable_isas())
    assert all(f"_{i}_" in build.extension_name(i) for i in isa.runnable_isas())


def test_no_compiler_keeps_working_on_the_reference_path(tmp_path: Path) -> None:
    """CXX pointing at a missing compiler: one notice, one warning, reference results."""
    code = (
        "import warnings, torch\n"
        "warnings.simplefilter('always')\n"
        "from snnkit.components import neurons as N\n"
        "x = torch.randn(6, 3, 5)\n"
        "out = N.LIF()(x)\n"
        "ref = N.LIF(kernel='reference')(x)\n"
        "N.LIF()(x)\n"
        "print('equal', bool(torch.equal(out, ref)))\n"
    )
    env = {
        **os.environ,
        "CXX": str(tmp_path / "no-such-compiler"),
        "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("SNNKIT_NO_CPP", None)
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr
    assert "equal True" in res.stdout
    assert res.stderr.count("could not be compiled") == 1, res.stderr
    assert res.stderr.count("compiling snnkit's CPU kernels for this machine") == 1
    assert "Traceback" not in res.stderr


def test_kernels_status_compiles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("status must not compile")

    monkeypatch.setattr(build, "_compile", refuse)
    res = CliRunner().invoke(app, ["kernels", "status", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["active_isa"] == isa.resolve_isa()
    want = [(i, part) for i in isa.runnable_isas() for part in build.PARTS]
    assert [(b["isa"], b["part"]) for b in info["builds"]] == want
    paths = {row["neuron"]: row["cpu float32"] for row in info["neurons"]}
    assert paths["lif"].startswith(("cpp", "reference until built"))
    assert paths["qif"].startswith("reference (not fusable")
    text = CliRunner().invoke(app, ["kernels", "status"])
    assert text.exit_code == 0 and "instruction set:" in text.output


def test_kernels_bad_isa_is_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    res = CliRunner().invoke(app, ["kernels", "build", "--isa", "sse9"])
    assert res.exit_code == 2
    assert "unknown instruction set 'sse9'" in res.output
    monkeypatch.setenv("SNNKIT_CPU_ISA", "sse9")
    assert CliRunner().invoke(app, ["kernels", "status"]).exit_code == 2


def test_kernels_build_reports_the_build() -> None:
    if build.cpu_extension() is None:
        pytest.skip("the C++ kernels cannot be built here")
    res = CliRunner().invoke(app, ["kernels", "build"])
    assert res.exit_code == 0, res.output
    assert "already built" in res.output and build.extension_name() in res.output


def test_kernels_build_bad_part_is_exit_2() -> None:
    res = CliRunner().invoke(app, ["kernels", "build", "--part", "everything"])
    assert res.exit_code == 2
    assert "--part 'everything': use one of core, recurrent" in res.output


def test_a_recipe_compiles_only_the_parts_it_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A LIF network loads the core build only; a recurrent layer loads its own build too."""
    if build.cpu_extension() is None:
        pytest.skip("the C++ kernels cannot be built here")
    import torch

    from snnkit.components import neurons as N
    from snnkit.components.recurrent import Recurrent

    loaded: list[str] = []
    original = build._compile

    def record(isa_name: str, name: str, part: str):
        loaded.append(part)
        return original(isa_name, name, part)

    build._load.cache_clear()
    monkeypatch.setattr(build, "_compile", record)
    try:
        N.LIF()(torch.randn(4, 2, 8, requires_grad=True)).sum().backward()
        assert loaded == ["core"]
        Recurrent(8, neuron=N.LIF())(torch.randn(4, 2, 8)).sum()
        assert loaded == ["core", "recurrent"]
    finally:
        build._load.cache_clear()


def test_another_torch_installation_gets_its_own_build_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second environment's torch (other headers) must not silently rebuild this one's."""
    import torch

    from snnkit.kernels.cpu.build import extension_name

    here = extension_name("generic")
    assert extension_name("generic") == here
    monkeypatch.setattr(torch, "__version__", torch.__version__ + "+other")
    assert extension_name("generic") != here


def test_loading_the_kernels_prints_no_torch_cuda_notice() -> None:
    """torch's "No CUDA runtime is found" log line (a CUDA build of torch on a CPU machine, as
    here) is not shown when snnkit loads its CPU kernels: a user of ``snnkit run`` sees only
    snnkit's own lines."""
    code = "from snnkit.kernels.cpu.build import cpu_extension; cpu_extension()"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    assert "No CUDA runtime" not in done.stderr, done.stderr
