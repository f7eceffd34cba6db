"""SHD and SSC: spike trains of 700 cochlear channels in HDF5 files.

``<root>/SHD/shd_{train,test}.h5`` and ``<root>/SSC/ssc_{train,valid,test}.h5`` hold
``spikes/times`` (one float array per sample, seconds), ``spikes/units`` (the channels) and
``labels``. The official ``.h5.gz`` (or ``.h5.zip``) is unpacked once, atomically, beside it.
Events are :data:`~snnkit.data.event_formats.AUDIO_EVENT` (``t`` in µs, rounded; ``x`` the
channel), in file order; each process reads samples through its own file handle.

**Checks when the dataset is built:** the file opens as HDF5, holds the three datasets, and
their lengths agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snnkit.data.event_formats import audio_events
from snnkit.data.frame_cache import cached_digest
from snnkit.errors import DataError

AUDIO_VERSION = "heidelberg-h5-1"
KEYS = ("spikes/times", "spikes/units", "labels")


@dataclass
class SpikeH5Reader:
    """Reads one SHD/SSC file sample by sample."""

    path: Path
    labels: np.ndarray
    version: str = AUDIO_VERSION
    _file: Any = field(default=None, repr=False)
    _pid: int = field(default=0, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    def label(self, index: int) -> int:
        return int(self.labels[index])

    def sample_name(self, index: int) -> str:
        return f"{self.path} sample {index}"

    def events(self, index: int) -> np.ndarray:
        if self._file is None or self._pid != os.getpid():  # one handle per process
            import h5py

            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        try:
            times = self._file["spikes/times"][index]
            units = self._file["spikes/units"][index]
        except (OSError, KeyError) as err:
            raise DataError(
                f"{self.path}: sample {index} cannot be read ({err}) — the file is "
                "corrupt; fetch it again"
            ) from None
        return audio_events(times, units, self.sample_name(index))

    def fingerprint(self) -> str:
        return f"{self.path.name}:{cached_digest(self.path, 'md5')}"

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_file": None}


def spike_h5_reader(path: Path) -> SpikeH5Reader:
    """Open ``path``, check its datasets and lengths, and read its labels."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in KEYS if k not in f]
            if missing:
                raise DataError(
                    f"{path}: no {', '.join(missing)} in the file — it is not an "
                    "SHD/SSC file or it is corrupt; fetch it again"
                )
            lengths = [len(f[k]) for k in KEYS]
            labels = np.asarray(f["labels"][()], dtype=np.int64)
    except OSError as err:
        raise DataError(
            f"{path}: not a readable HDF5 file ({' '.join(str(err).split())}) — it "
            "is truncated or corrupt; fetch it again"
        ) from None
    if len(set(lengths)) != 1:
        raise DataError(
            f"{path}: {lengths[0]} spike-time arrays, {lengths[1]} unit arrays and "
            f"{lengths[2]} labels — the file is corrupt; fetch it again"
        )
    return SpikeH5Reader(path, labels)
