"""Make ``snnkit_triangle`` importable from the source folder when the plugin is not installed.

Installed (``pip install -e plugins/snnkit-triangle``) the module comes from the installation
and the discovery test runs; otherwise that test is skipped and the rest still run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("snnkit_triangle") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
