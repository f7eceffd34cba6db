"""Which instruction set the C++ CPU kernels are compiled for, and with which flags.

The kernels are one source written with the portable fixed-width vectors of ``csrc/simd.h``
(GCC/Clang vector extensions); the target decides the register width. ``SNNKIT_CPU_ISA``
picks it (default ``auto``):

- ``auto``: the best this CPU runs: ``avx512`` on x86 with AVX-512 F/BW/DQ/VL, else ``avx2``
  with AVX2 and FMA, ``neon`` on aarch64, else ``generic``.
- ``avx512``: ``-march=native -mprefer-vector-width=512`` (x86 with AVX-512 only).
- ``avx2``: ``-march=native -mno-avx512f -mprefer-vector-width=256``: the AVX2 code, also on an
  AVX-512 CPU (how the tests and benchmarks exercise the AVX2 path there).
- ``neon``: ``-mcpu=native`` (aarch64; no x86 flags).
- ``generic``: the compiler's baseline for the architecture (SSE2 on x86-64).

Each ISA is its own build (its name in :func:`snnkit.kernels.cpu.build.extension_name`).
"""

from __future__ import annotations

import functools
import os
import platform

from snnkit.errors import SnnkitError

ISA_NAMES = ("auto", "avx512", "avx2", "neon", "generic")
"""Accepted values of ``SNNKIT_CPU_ISA``."""

_AVX512 = frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl"})
_AVX2 = frozenset({"avx2", "fma"})
_X86 = ("x86_64", "amd64", "i686", "i386")
_ARM = ("aarch64", "arm64")


@functools.cache
def cpu_feature_line() -> str:
    """The CPU's feature line of ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on ARM)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line.strip()
    except OSError:
        pass
    return platform.machine() + " " + platform.processor()


def cpu_features() -> frozenset[str]:
    """The CPU's feature flags as a set (``avx2``, ``avx512f``, ``asimd``, ...)."""
    line = cpu_feature_line()
    return frozenset(line.split(":", 1)[-1].split())


def arch() -> str:
    """``x86``, ``arm`` or the machine name as Python reports it."""
    machine = platform.machine().lower()
    if machine in _X86:
        return "x86"
    if machine in _ARM:
        return "arm"
    return machine


@functools.cache
def runnable_isas() -> tuple[str, ...]:
    """The concrete ISAs this CPU can run, best first (``generic`` always last)."""
    feats, kind = cpu_features(), arch()
    found: list[str] = []
    if kind == "x86":
        if feats >= _AVX512 | _AVX2:
            found.append("avx512")
        if feats >= _AVX2:
            found.append("avx2")
    elif kind == "arm":
        found.append("neon")
    return (*found, "generic")


def requested_isa() -> str:
    """``SNNKIT_CPU_ISA`` (lower case), ``auto`` when unset."""
    return os.environ.get("SNNKIT_CPU_ISA", "").strip().lower() or "auto"


def resolve_isa(name: str | None = None) -> str:
    """The concrete ISA for ``name`` (default: ``SNNKIT_CPU_ISA``); ``SnnkitError`` if this CPU
    cannot run it or the name is unknown."""
    name = (name or requested_isa()).lower()
    if name not in ISA_NAMES:
        raise SnnkitError(
            f"SNNKIT_CPU_ISA: unknown instruction set {name!r} — use one of {', '.join(ISA_NAMES)}"
        )
    runnable = runnable_isas()
    if name == "auto":
        return runnable[0]
    if name not in runnable:
        raise SnnkitError(
            f"SNNKIT_CPU_ISA={name}: this CPU cannot run {name} code — use one of "
            f"{', '.join(('auto', *runnable))}"
        )
    return name


def isa_flags(isa: str) -> tuple[str, ...]:
    """Compiler flags selecting ``isa`` (a concrete ISA of :func:`resolve_isa`)."""
    if isa == "avx512":
        return ("-march=native", "-mprefer-vector-width=512")
    if isa == "avx2":
        return ("-march=native", "-mno-avx512f", "-mprefer-vector-width=256")
    if isa == "neon":
        return ("-mcpu=native",)
    return ()
