"""``snnkit kernels``: build the C++ CPU kernels ahead of time, and show what is built.

- ``build [--isa X] [--part core|recurrent]`` — compile the kernels for this machine now (e.g.
  in a container image): every part (the core kernels, the recurrent layer's), or one, with the
  same notice and progress lines as the first use; exit 1 if a build fails;
- ``status [--json]`` — the CPU, its SIMD flags, the instruction set each build targets, which
  builds exist (per part), and which kernel each registered neuron runs on a CPU float32 input.

An unknown or unsupported ``--isa`` / ``SNNKIT_CPU_ISA`` is one ``error:`` line and exit 2.
"""

from __future__ import annotations

import json
import platform
from typing import Annotated, Any

import typer

from snnkit.errors import SnnkitError

kernels_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="The C++ CPU kernels: build them ahead of time, show what is built.",
)

IsaOpt = Annotated[
    str | None,
    typer.Option(
        "--isa", help="auto, avx512, avx2, neon or generic (default: $SNNKIT_CPU_ISA, else auto)."
    ),
]
SIMD_FLAGS = (
    *("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"),
    *("avx512_bf16", "amx_tile", "asimd", "sve", "sve2", "bf16"),
)
"""The CPU flags ``status`` reports (x86 and ARM), where the CPU has them."""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("model name", "Model", "CPU part")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _neuron_paths(built: bool) -> list[dict[str, str]]:
    """Which kernel each registered neuron (default parameters) runs on CPU float32 input."""
    from snnkit.kernels.forms import form_of
    from snnkit.plugins.loader import get_registry

    rows = []
    for comp in get_registry().list("neuron"):
        try:
            neuron = comp.factory()
        except Exception as exc:  # noqa: BLE001 - a neuron needing arguments: say so
            rows.append({"neuron": comp.name, "cpu float32": f"? ({type(exc).__name__})"})
            continue
        if getattr(neuron, "kernel", "auto") == "reference" or form_of(neuron) is None:
            path = "reference (not fusable: autograd loop)"
        elif built:
            path = "cpp (fused C++ kernel)"
        else:
            path = "reference until built (snnkit kernels build), then cpp"
        rows.append({"neuron": comp.name, "cpu float32": path})
    return rows


def kernel_status() -> dict[str, Any]:
    """Everything ``snnkit kernels status`` shows, as a dict (compiles nothing)."""
    from snnkit.kernels.cpu.build import (
        PARTS,
        build_dir,
        build_flags,
        cpp_disabled,
        extension_name,
    )
    from snnkit.kernels.cpu.isa import (
        arch,
        cpu_features,
        requested_isa,
        resolve_isa,
        runnable_isas,
    )

    feats = cpu_features()
    active = resolve_isa()
    builds = []
    for isa in runnable_isas():
        for part in PARTS:
            name = extension_name(isa, part)
            so = build_dir(name) / f"{name}.so"
            builds.append(
                {
                    "isa": isa,
                    "part": part,
                    "built": so.is_file(),
                    "flags": " ".join(build_flags(isa)),
                    "path": str(so),
                }
            )
    built = not cpp_disabled() and any(
        b["built"] for b in builds if b["isa"] == active and b["part"] == "core"
    )
    return {
        "cpu": _cpu_model(),
        "arch": arch(),
        "simd_flags": [f for f in SIMD_FLAGS if f in feats],
        "requested_isa": requested_isa(),
        "active_isa": active,
        "cpp_disabled": cpp_disabled(),
        "builds": builds,
        "neurons": _neuron_paths(built),
    }


@kernels_app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Show the CPU, its SIMD flags, the builds of the kernels and each neuron's kernel."""
    try:
        info = kernel_status()
    except SnnkitError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(err.exit_code) from None
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"cpu: {info['cpu']} ({info['arch']})")
    typer.echo(f"simd flags: {' '.join(info['simd_flags']) or 'none'}")
    typer.echo(f"instruction set: {info['active_isa']} (SNNKIT_CPU_ISA={info['requested_isa']})")
    if info["cpp_disabled"]:
        typer.echo("C++ kernels: off (SNNKIT_NO_CPP)")
    for b in info["builds"]:
        mark = "built" if b["built"] else "not built"
        typer.echo(f"  {b['isa']:8} {b['part']:9} {mark:9} flags: {b['flags']}")
        if b["built"]:
            typer.echo(f"           {b['path']}")
    typer.echo("neurons on CPU float32:")
    for row in info["neurons"]:
        typer.echo(f"  {row['neuron']:14} {row['cpu float32']}")


PartOpt = Annotated[
    str | None,
    typer.Option("--part", help="core or recurrent (default: every part)."),
]


@kernels_app.command()
def build(isa: IsaOpt = None, part: PartOpt = None) -> None:
    """Compile the C++ CPU kernels for this machine now (a no-op when already built)."""
    import warnings

    from snnkit.kernels.cpu.build import PARTS, extension_name, is_built, load_part

    if part is not None and part not in PARTS:
        typer.echo(f"error: --part {part!r}: use one of {', '.join(PARTS)}", err=True)
        raise typer.Exit(2)
    for name in (part,) if part is not None else tuple(PARTS):
        try:
            was_built = is_built(isa, name)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ext = load_part(name, isa)
        except SnnkitError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(err.exit_code) from None
        if ext is None:
            why = str(caught[-1].message) if caught else "SNNKIT_NO_CPP is set"
            typer.echo(f"error: kernels build failed: {why}", err=True)
            raise typer.Exit(1)
        state = "already built" if was_built else "built"
        typer.echo(f"{extension_name(isa, name)}: {state} ({ext.__file__})")
