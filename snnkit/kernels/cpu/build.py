"""Compile-once loader of the C++ CPU kernels (``torch.utils.cpp_extension.load_inline``).

The build is cached by torch in its extensions folder (``TORCH_EXTENSIONS_DIR``, default
``~/.cache/torch_extensions``), keyed by a hash of the source, the flags and the CPU's
feature flags (the code is built with ``-march=native``), so only the first use on a machine
compiles (about a minute on 2 cores, most of it parsing ``torch/extension.h``). If the build
fails (no compiler, no ninja), :func:`cpu_extension` returns None after one ``RuntimeWarning``
and every caller falls back to the reference PyTorch path; ``SNNKIT_NO_CPP=1`` turns the C++
kernels off silently.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import warnings
from types import ModuleType

from snnkit.kernels.cpu.cpp_source import FUNCTIONS, SOURCE

CFLAGS = ("-O3", "-march=native", "-mprefer-vector-width=512", "-ffp-contract=off",
          "-fno-math-errno", "-fno-trapping-math", "-fopenmp")
LDFLAGS = ("-fopenmp",)


def _cpu_flags() -> str:
    """The CPU's feature flags (``-march=native`` code must not run on another CPU model)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.machine() + platform.processor()


def extension_name() -> str:
    """Module name of the build: changes with the source, the flags and the CPU features."""
    key = SOURCE + " ".join(CFLAGS + LDFLAGS) + _cpu_flags()
    return f"snnkit_cpu_{hashlib.sha1(key.encode()).hexdigest()[:12]}"


@functools.lru_cache(maxsize=None)
def cpu_extension() -> ModuleType | None:
    """The compiled kernels module, or None (with one warning) when it cannot be built."""
    if os.environ.get("SNNKIT_NO_CPP", "") not in ("", "0"):
        return None
    try:
        # torch logs "No CUDA runtime is found" at import on CPU-only machines: not our news
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        from torch.utils.cpp_extension import load_inline

        return load_inline(name=extension_name(), cpp_sources=[SOURCE], functions=FUNCTIONS,
                           extra_cflags=list(CFLAGS), extra_ldflags=list(LDFLAGS),
                           verbose=False)
    except Exception as exc:  # noqa: BLE001 - any build failure means: use the fallback
        warnings.warn(f"snnkit: the C++ kernels could not be compiled ({type(exc).__name__}: "
                      f"{str(exc)[-300:]}); using the reference PyTorch kernels instead",
                      RuntimeWarning, stacklevel=3)
        return None
