"""Memory sizes written with units: ``8GB``, ``512 MiB``, ``1.5e9`` (bytes) -> a number of bytes.

Decimal units are powers of 1000 (``kB``/``KB``, ``MB``, ``GB``, ``TB``), binary units powers of
1024 (``KiB``, ``MiB``, ``GiB``, ``TiB``); ``B`` or no unit means bytes. Case is ignored.
"""

from __future__ import annotations

import re

UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*")


def parse_size(value: object) -> int:
    """``value`` (an int of bytes, or text such as ``8GB``) as bytes; ``ValueError`` if it is
    not a positive size with a known unit."""
    if isinstance(value, bool):
        raise ValueError(f"must be a size such as 8GB or 512MiB, got {str(value).lower()}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        match = _SIZE.fullmatch(str(value))
        if not match or match.group(2).lower() not in UNITS:
            raise ValueError(
                f"must be a size such as 8GB or 512MiB (units B, kB, MB, GB, TB, KiB, MiB, "
                f"GiB, TiB), got {value!r}"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * UNITS[unit])
    if size <= 0:
        raise ValueError(f"must be a positive size such as 8GB, got {value!r}")
    return size


def format_size(size: float) -> str:
    """Bytes as a short text in binary units: ``1.5 GiB``, ``320 MiB``, ``12 KiB``, ``7 B``."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(size) >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{int(size)} B"
