"""N-MNIST and CIFAR10-DVS: one recording per file, in zip archives or extracted folders.

Each sample is one file — ``Train/<digit>/<id>.bin`` (N-MNIST) or ``<class>/…_<n>.aedat``
(CIFAR10-DVS) — read straight from its zip archive (no extraction) or from the extracted
folder (which is used when both are there). Samples are ordered by class, then by the number
in the file name. Each process opens its own archive handles (forked workers too).

**Checks when the dataset is built** (cheap, so a bad file fails the build, not a batch):

- zip archives: the central directory is read (a truncated archive has none and fails);
- N-MNIST: every member's size is a multiple of 5 bytes (a truncated ``.bin`` fails);
- CIFAR10-DVS: every member starts with the ``#!AER-DAT2`` header and its event bytes are a
  multiple of 8.

The members' CRCs are checked as they are read: with the frame cache on (the default) every
member is read when the dataset is built, so a corrupt member fails the build then too.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnkit.data.event_formats import parse_aedat2_dvs128, parse_nmnist, split_aedat_header
from snnkit.data.frame_cache import cached_digest, folder_fingerprint
from snnkit.errors import DataError

Parser = Callable[[bytes, str], np.ndarray]


@dataclass
class Sample:
    """One recording: ``member`` of zip ``archive``, or the file ``member`` when no archive."""

    archive: str | None
    member: str
    label: int


@dataclass
class FileReader:
    """Reads samples that are whole files (see the module documentation)."""

    samples: list[Sample]
    parse: Parser
    version: str
    sources: list[Path]
    base: Path
    _zips: dict[str, zipfile.ZipFile] = field(default_factory=dict, repr=False)
    _pid: int = field(default=0, repr=False)

    def __len__(self) -> int:
        return len(self.samples)

    def label(self, index: int) -> int:
        return self.samples[index].label

    def sample_name(self, index: int) -> str:
        s = self.samples[index]
        return f"{s.archive}:{s.member}" if s.archive else s.member

    def read(self, index: int) -> bytes:
        s = self.samples[index]
        if s.archive is None:
            from snnkit.data.event_formats import read_bytes

            return read_bytes(Path(s.member))
        if self._pid != os.getpid():  # a forked worker must not share the parent's handles
            self._zips, self._pid = {}, os.getpid()
        try:
            z = self._zips.get(s.archive)
            if z is None:
                z = self._zips[s.archive] = zipfile.ZipFile(s.archive)
            return z.read(s.member)
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
            raise DataError(
                f"{s.archive}: member {s.member} cannot be read ({err}) — the "
                "archive is corrupt; delete it and fetch it again"
            ) from None

    def events(self, index: int) -> np.ndarray:
        return self.parse(self.read(index), self.sample_name(index))

    def fingerprint(self) -> str:
        """md5 of each archive (cached), or names/sizes/mtimes of extracted files."""
        archives = [p for p in self.sources if p.is_file() and p.suffix == ".zip"]
        parts = [f"{p.name}:{cached_digest(p, 'md5')}" for p in sorted(archives)]
        files = [Path(s.member) for s in self.samples if s.archive is None]
        if files:
            parts.append(folder_fingerprint(files, self.base))
        return ";".join(parts)

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_zips": {}}  # each process opens its own handles


def _number(name: str) -> tuple[int, str]:
    digits = re.findall(r"\d+", Path(name).stem)
    return (int(digits[-1]) if digits else -1, name)


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(
            f"{path}: not a readable zip archive ({err}) — it is truncated or "
            "corrupt; delete it and fetch it again"
        ) from None


# ------------------------------------------------------------------------------------------
# N-MNIST
# ------------------------------------------------------------------------------------------

NMNIST_VERSION = "nmnist-bin-1"


def nmnist_reader(folder: Path, split_dir: str) -> FileReader | None:
    """Samples of ``<folder>/<split_dir>/`` (extracted) or ``<folder>/<split_dir>.zip``; None
    when neither is there. ``split_dir`` is ``Train`` or ``Test``."""
    extracted, archive = folder / split_dir, folder / f"{split_dir}.zip"
    samples: list[Sample] = []
    if extracted.is_dir():
        for path in sorted(
            extracted.glob("*/*.bin"), key=lambda p: (p.parent.name, _number(p.name))
        ):
            if not path.parent.name.isdigit():
                continue
            size = path.stat().st_size
            if size % 5:
                raise DataError(
                    f"{path}: {size} bytes is not a whole number of 5-byte events "
                    "— the file is truncated; fetch it again"
                )
            samples.append(Sample(None, str(path), int(path.parent.name)))
        sources = [extracted]
    elif archive.is_file():
        with open_zip(archive) as z:
            infos = [i for i in z.infolist() if i.filename.endswith(".bin")]
        pattern = re.compile(rf"(?:^|/){split_dir}/(\d)/[^/]+\.bin$")
        keyed = []
        for info in infos:
            m = pattern.search(info.filename)
            if m is None:
                continue
            if info.file_size % 5:
                raise DataError(
                    f"{archive}: member {info.filename} has {info.file_size} bytes, "
                    "not a whole number of 5-byte events — it is truncated; delete "
                    "the archive and fetch it again"
                )
            keyed.append(
                ((int(m.group(1)), _number(info.filename)), info.filename, int(m.group(1)))
            )
        samples = [Sample(str(archive), name, label) for _, name, label in sorted(keyed)]
        sources = [archive]
    else:
        return None
    if not samples:
        where = extracted if extracted.is_dir() else archive
        raise DataError(
            f"{where}: no {split_dir}/<digit>/<id>.bin recordings in it — it is not "
            "the official N-MNIST layout; fetch it again"
        )
    return FileReader(samples, parse_nmnist, NMNIST_VERSION, sources, folder)


# ------------------------------------------------------------------------------------------
# CIFAR10-DVS
# ------------------------------------------------------------------------------------------

CIFAR10DVS_VERSION = "aedat2-dvs128-1"
HEADER_PROBE = 1 << 16  # an AEDAT 2.0 header is a few hundred bytes


def _check_aedat2(head: bytes, size: int, name: str) -> None:
    _, start = split_aedat_header(head, name, None)
    if (size - start) % 8:
        raise DataError(
            f"{name}: {size - start} bytes of events is not a whole number of "
            "8-byte events — the file is truncated; fetch it again"
        )


def cifar10_dvs_files(
    folder: Path, classes: tuple[str, ...]
) -> tuple[list[list[Sample]], list[Path], list[str]]:
    """Per class, its recordings (sorted by number), checked; plus the sources and the
    classes found in neither layout (``<class>/`` folder or ``<class>.zip``)."""
    per_class: list[list[Sample]] = []
    sources: list[Path] = []
    missing: list[str] = []
    for label, cls in enumerate(classes):
        extracted, archive = folder / cls, folder / f"{cls}.zip"
        found: list[Sample] = []
        if extracted.is_dir():
            for path in sorted(extracted.rglob("*.aedat"), key=lambda p: _number(p.name)):
                with path.open("rb") as f:
                    head = f.read(HEADER_PROBE)
                _check_aedat2(head, path.stat().st_size, str(path))
                found.append(Sample(None, str(path), label))
            sources.append(extracted)
        elif archive.is_file():
            with open_zip(archive) as z:
                infos = sorted(
                    (i for i in z.infolist() if i.filename.endswith(".aedat")),
                    key=lambda i: _number(i.filename),
                )
                for info in infos:
                    name = f"{archive}:{info.filename}"
                    try:
                        with z.open(info) as member:
                            head = member.read(HEADER_PROBE)
                    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
                        raise DataError(
                            f"{name}: cannot be read ({err}) — the archive is "
                            "corrupt; delete it and fetch it again"
                        ) from None
                    _check_aedat2(head, info.file_size, name)
                    found.append(Sample(str(archive), info.filename, label))
            sources.append(archive)
        else:
            missing.append(cls)
            continue
        if not found:
            raise DataError(
                f"{sources[-1]}: no .aedat recordings in it — it is not the official "
                "CIFAR10-DVS layout; fetch it again"
            )
        per_class.append(found)
    return per_class, sources, missing


def cifar10_dvs_split(
    per_class: list[list[Sample]], train: bool, seed: int = 0, train_fraction: float = 0.9
) -> list[Sample]:
    """The fixed split: per class, ``default_rng(seed).permutation(n)``; the first
    ``round(train_fraction · n)`` indices are train, the rest test (each sorted)."""
    out: list[Sample] = []
    for samples in per_class:
        n = len(samples)
        order = np.random.default_rng(seed).permutation(n)
        cut = round(train_fraction * n)
        chosen = np.sort(order[:cut] if train else order[cut:])
        out.extend(samples[int(i)] for i in chosen)
    return out


def cifar10_dvs_reader(folder: Path, samples: list[Sample], sources: list[Path]) -> FileReader:
    return FileReader(samples, parse_aedat2_dvs128, CIFAR10DVS_VERSION, sources, folder)
