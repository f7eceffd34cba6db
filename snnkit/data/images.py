"""Datasets held in memory as tensors, and the built-in dataset factories.

A dataset factory is ``factory(train, **params) -> InMemoryDataset`` (see
:func:`snnkit.hookspecs.register_datasets`). Inputs stay in their storage dtype (uint8 images
take a quarter of the memory of float32 ones); the encoder reads them as intensities in [0, 1]
(:func:`snnkit.components.encoders.intensity`).

Files are read directly (IDX for the MNIST family, the python pickles for CIFAR-10) and checked
(magic number, dimensions, exact size, label range); a missing or corrupt file raises
:class:`snnkit.errors.DataError`. Nothing is ever written into a data folder that already holds
the files; only missing files are fetched, through torchvision's downloaders, with a bounded
network timeout.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import pickle
import socket
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from snnkit.errors import DataError, one_line

__all__ = [
    "InMemoryDataset",
    "cifar10",
    "fashion_mnist",
    "kmnist",
    "mnist",
    "resolve_root",
    "synthetic",
]

#: Seconds a single network operation of a download may block before it is given up.
DOWNLOAD_TIMEOUT_S = 5.0


# --------------------------------------------------------------------------------------------
# The in-memory dataset
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class InMemoryDataset:
    """A whole split as two tensors: ``inputs [N, *]`` and ``targets [N]`` (int64).

    ``inputs`` is uint8 (read as value/255) or float in [0, 1].
    """

    inputs: Tensor
    targets: Tensor
    num_classes: int
    name: str = "dataset"

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, Tensor) or self.inputs.dim() < 1:
            raise ValueError("inputs must be a tensor [N, *]")
        if self.inputs.dtype != torch.uint8 and not self.inputs.is_floating_point():
            raise ValueError(f"inputs must be uint8 or floating, got {self.inputs.dtype}")
        targets = self.targets
        if not isinstance(targets, Tensor) or targets.dim() != 1 or targets.dtype != torch.int64:
            raise ValueError("targets must be an int64 tensor [N]")
        if self.targets.shape[0] != self.inputs.shape[0]:
            raise ValueError(
                f"inputs and targets must have the same length N, got "
                f"{self.inputs.shape[0]} inputs and {self.targets.shape[0]} targets"
            )
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if targets.numel():
            lo, hi = (int(v) for v in torch.aminmax(targets))
            if lo < 0 or hi >= self.num_classes:
                raise ValueError(
                    f"targets must be class indices in [0, num_classes = "
                    f"{self.num_classes}), got min {lo}, max {hi}"
                )

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.targets[index]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, without N."""
        return tuple(self.inputs.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.inputs.device


# --------------------------------------------------------------------------------------------
# Where the files are
# --------------------------------------------------------------------------------------------


def resolve_root(root: str | None) -> Path:
    """The data folder: ``root`` if given, else env ``SNNKIT_DATA``, else a per-user cache folder.

    The cache folder is ``$XDG_CACHE_HOME/snnkit/data``, or ``~/.cache/snnkit/data`` when
    ``XDG_CACHE_HOME`` is unset. ``~`` is expanded; a relative path is returned as given (the
    recipe loader resolves recipe paths before calling a factory).
    """
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get("SNNKIT_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "snnkit" / "data"


def _writable(path: Path) -> bool:
    """Whether files can be created at ``path`` (or, if it does not exist, its nearest parent)."""
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return os.access(p, os.W_OK | os.X_OK)


def _fetch_missing(
    name: str,
    root: Path,
    folder: Path,
    missing: list[str],
    download: bool,
    what: str,
    fetch: Callable[[], object],
) -> None:
    """Download missing files with ``fetch`` or raise a DataError that says what to place where."""
    base = f"dataset {name}: files missing in {folder}: {', '.join(missing)}"
    fix = (
        f"place the {what} files there (torchvision layout) or set SNNKIT_DATA / dataset.root "
        f"to a folder that has them"
    )
    if not download:
        raise DataError(f"{base} (download is off) — {fix}")
    if not _writable(root):
        raise DataError(f"{base}; cannot download them: {root} is not writable — {fix}")
    previous = socket.getdefaulttimeout()
    try:
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        with contextlib.redirect_stdout(sys.stderr):  # keep torchvision's chatter off stdout
            fetch()
    except ImportError:
        raise DataError(
            f"{base}; cannot download them: torchvision is not installed — {fix}"
        ) from None
    except Exception as err:  # noqa: BLE001 - any torchvision/network failure becomes one message
        reason = f"{type(err).__name__}: {one_line(err, 160)}"
        raise DataError(f"{base}; download failed ({reason}) — {fix}") from None
    finally:
        socket.setdefaulttimeout(previous)


# --------------------------------------------------------------------------------------------
# IDX files (MNIST family)
# --------------------------------------------------------------------------------------------

_FIX_CORRUPT = "replace it with a good copy, or delete it and run again with dataset.download: true"


def _read_bytes(path: Path, name: str) -> bytearray:
    """The (decompressed) content of ``path`` as one writable buffer."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return bytearray(f.read())
        buf = bytearray(path.stat().st_size)
        with open(path, "rb") as f:
            got = f.readinto(buf)
        return buf[:got] if got != len(buf) else buf
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(
            f"dataset {name}: {path} is not a valid gzip file ({one_line(err, 160)}) — "
            f"{_FIX_CORRUPT}"
        ) from None
    except OSError as err:
        raise DataError(
            f"dataset {name}: cannot read {path} ({one_line(err, 160)}) — "
            f"check its permissions or {_FIX_CORRUPT}"
        ) from None


def _read_idx(path: Path, ndim: int, name: str) -> Tensor:
    """An IDX file of unsigned bytes (magic ``0x0000 08 ndim``) as a uint8 tensor of its dims."""
    data = _read_bytes(path, name)
    where = f"dataset {name}: {path}"
    header = 4 + 4 * ndim
    if len(data) < 4:
        raise DataError(f"{where} is truncated ({len(data)} bytes, no IDX header) — {_FIX_CORRUPT}")
    magic = struct.unpack(">I", data[:4])[0]
    if magic != 0x0800 + ndim:
        raise DataError(
            f"{where} has a wrong magic number 0x{magic:08x} "
            f"(expected 0x{0x800 + ndim:08x}:"
            f" an IDX file of {ndim}-d unsigned bytes) — {_FIX_CORRUPT}"
        )
    if len(data) < header:
        raise DataError(
            f"{where} is truncated ({len(data)} bytes, the header alone is {header}) — "
            f"{_FIX_CORRUPT}"
        )
    dims = struct.unpack(">" + "I" * ndim, data[4:header])
    count = math.prod(dims)
    expected = header + count
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "too long"
        raise DataError(
            f"{where} is {state}: {len(data)} bytes, but its header {list(dims)} means "
            f"{expected} — {_FIX_CORRUPT}"
        )
    if count == 0:
        return torch.zeros(dims, dtype=torch.uint8)
    return torch.frombuffer(data, dtype=torch.uint8, offset=header, count=count).view(dims)


@dataclass(frozen=True)
class _IdxSet:
    name: str  # registry name
    folder: str  # torchvision class name = folder under root
    title: str  # how the error messages call the files


_MNIST = _IdxSet("mnist", "MNIST", "MNIST")
_FASHION = _IdxSet("fashion_mnist", "FashionMNIST", "Fashion-MNIST")
_KMNIST = _IdxSet("kmnist", "KMNIST", "KMNIST")


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_set(spec: _IdxSet, train: bool, root: str | None, download: bool) -> InMemoryDataset:
    base = resolve_root(root)
    raw = base / spec.folder / "raw"
    prefix = "train" if train else "t10k"
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    missing = [s for s in stems if _find(raw, s) is None]
    if missing:

        def fetch() -> None:
            import torchvision.datasets

            getattr(torchvision.datasets, spec.folder)(root=str(base), train=train, download=True)

        _fetch_missing(spec.name, base, raw, missing, download, spec.title, fetch)
        missing = [s for s in stems if _find(raw, s) is None]
        if missing:
            raise DataError(
                f"dataset {spec.name}: files missing in {raw} after the download: "
                f"{', '.join(missing)} — place the {spec.title} files there"
            )
    image_path, label_path = _find(raw, stems[0]), _find(raw, stems[1])
    assert image_path is not None and label_path is not None
    images = _read_idx(image_path, 3, spec.name)
    labels = _read_idx(label_path, 1, spec.name)
    if images.shape[1:] != (28, 28):
        raise DataError(
            f"dataset {spec.name}: {image_path} holds "
            f"{images.shape[1]}x{images.shape[2]} images, expected 28x28 — {_FIX_CORRUPT}"
        )
    if labels.shape[0] != images.shape[0]:
        raise DataError(
            f"dataset {spec.name}: {label_path} has {labels.shape[0]} labels but "
            f"{image_path} has {images.shape[0]} images — replace the mismatched file"
        )
    _check_labels(labels, 10, label_path, spec.name)
    return InMemoryDataset(images.unsqueeze(1), labels.to(torch.int64), 10, spec.name)


def _check_labels(labels: Tensor, num_classes: int, path: Path, name: str) -> None:
    if labels.numel() and int(labels.max()) >= num_classes:
        raise DataError(
            f"dataset {name}: {path} has label {int(labels.max())}, but labels "
            f"must be in 0..{num_classes - 1} — {_FIX_CORRUPT}"
        )


def mnist(train: bool, root: str | None = None, download: bool = True) -> InMemoryDataset:
    """MNIST handwritten digits: 28x28 grayscale, 10 classes, 60000 train / 10000 test.

    Inputs ``[N, 1, 28, 28]`` uint8, targets the digit 0-9. Files (torchvision layout, plain or
    ``.gz``): ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``; ``root`` from
    :func:`resolve_root`. Missing files are downloaded with torchvision when ``download``.
    """
    return _load_idx_set(_MNIST, train, root, download)


def fashion_mnist(train: bool, root: str | None = None, download: bool = True) -> InMemoryDataset:
    """Fashion-MNIST clothing images: 28x28 grayscale, 10 classes, 60000 train / 10000 test.

    Inputs ``[N, 1, 28, 28]`` uint8; classes 0-9 are T-shirt/top, trouser, pullover, dress, coat,
    sandal, shirt, sneaker, bag, ankle boot. Files (torchvision layout, plain or ``.gz``):
    ``<root>/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``; ``root`` from
    :func:`resolve_root`. Missing files are downloaded with torchvision when ``download``.
    """
    return _load_idx_set(_FASHION, train, root, download)


def kmnist(train: bool, root: str | None = None, download: bool = True) -> InMemoryDataset:
    """Kuzushiji-MNIST cursive Japanese characters: 28x28 grayscale, 10 classes, 60000 / 10000.

    Inputs ``[N, 1, 28, 28]`` uint8; classes 0-9 are the hiragana o, ki, su, tsu, na, ha, ma, ya,
    re, wo. Files (torchvision layout, plain or ``.gz``):
    ``<root>/KMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``; ``root`` from
    :func:`resolve_root`. Missing files are downloaded with torchvision when ``download``.
    """
    return _load_idx_set(_KMNIST, train, root, download)


# --------------------------------------------------------------------------------------------
# CIFAR-10 (python pickles)
# --------------------------------------------------------------------------------------------


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch (a dict of lists and numpy arrays) and refuses any other object."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # how protocol-2 pickles written by python 3 store bytes
        }
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core.") :]  # numpy 2 moved numpy.core
        return super().find_class(module, name)


def _read_cifar_batch(path: Path, name: str) -> tuple[Tensor, Tensor]:
    where = f"dataset {name}: {path}"
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except OSError as err:
        raise DataError(
            f"{where} cannot be read ({one_line(err, 160)}) — check its permissions or "
            f"{_FIX_CORRUPT}"
        ) from None
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DataError(
            f"{where} is not a CIFAR-10 python batch ({one_line(err, 160)}) — {_FIX_CORRUPT}"
        ) from None
    if not isinstance(batch, dict):
        raise DataError(f"{where} is not a CIFAR-10 python batch (no dict inside) — {_FIX_CORRUPT}")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
    ):
        shape = getattr(data, "shape", None)
        raise DataError(
            f"{where} has no uint8 'data' array of shape [N, 3072] (found "
            f"{type(data).__name__} {shape}) — {_FIX_CORRUPT}"
        )
    try:
        targets = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    except (TypeError, ValueError) as err:
        raise DataError(
            f"{where} has unreadable 'labels' ({one_line(err, 160)}) — {_FIX_CORRUPT}"
        ) from None
    if targets.dim() != 1 or targets.shape[0] != data.shape[0]:
        raise DataError(
            f"{where} has {targets.numel()} labels but {data.shape[0]} images — {_FIX_CORRUPT}"
        )
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= 10):
        bad = int(targets.max()) if int(targets.max()) >= 10 else int(targets.min())
        raise DataError(f"{where} has label {bad}, but labels must be in 0..9 — {_FIX_CORRUPT}")
    images = torch.from_numpy(np.ascontiguousarray(data)).view(-1, 3, 32, 32)
    return images, targets


def cifar10(train: bool, root: str | None = None, download: bool = True) -> InMemoryDataset:
    """CIFAR-10 colour images: 32x32 RGB, 10 classes, 50000 train / 10000 test.

    Inputs ``[N, 3, 32, 32]`` uint8 (channels R, G, B); classes 0-9 are airplane, automobile,
    bird, cat, deer, dog, frog, horse, ship, truck. Files (torchvision layout):
    ``<root>/cifar-10-batches-py/data_batch_1`` ... ``data_batch_5`` and ``test_batch``; ``root``
    from :func:`resolve_root`. Missing files are downloaded with torchvision when ``download``.
    """
    name = "cifar10"
    base = resolve_root(root)
    folder = base / "cifar-10-batches-py"
    files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:

        def fetch() -> None:
            import torchvision.datasets

            torchvision.datasets.CIFAR10(root=str(base), train=train, download=True)

        _fetch_missing(name, base, folder, missing, download, "CIFAR-10 python", fetch)
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise DataError(
                f"dataset {name}: files missing in {folder} after the download: "
                f"{', '.join(missing)} — place the CIFAR-10 python files there"
            )
    parts = [_read_cifar_batch(folder / f, name) for f in files]
    images = torch.cat([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    targets = torch.cat([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return InMemoryDataset(images, targets, 10, name)


# --------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------


def synthetic(
    train: bool,
    num_samples: int = 256,
    shape: tuple[int, ...] = (1, 8, 8),
    num_classes: int = 10,
    seed: int = 0,
) -> InMemoryDataset:
    """Seeded synthetic classes (prototype + noise) for tests and demos; no files needed.

    Each class ``c`` has a prototype ``P_c ~ U[0, 1]^shape`` drawn from ``seed`` (shared by both
    splits); a sample of class ``y`` is ``clamp(P_y + 0.25 * eps, 0, 1)`` with ``eps ~ N(0, 1)``,
    stored as uint8 ``round(255 x)``. Inputs ``[num_samples, *shape]`` uint8, targets uniform
    in ``0..num_classes-1``. Train and test samples differ but are fixed for a given ``seed``.
    """
    if isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    dims = tuple(int(d) for d in shape)
    if not dims or any(d < 1 for d in dims):
        raise ValueError(f"shape must be a non-empty list of sizes >= 1, got {list(shape)}")
    if isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    prototypes = torch.rand((num_classes, *dims), generator=torch.Generator().manual_seed(seed))
    sequence = np.random.SeedSequence([seed, 1 if train else 2])
    split_seed = int(sequence.generate_state(1, np.uint64)[0])
    g = torch.Generator().manual_seed(split_seed)
    targets = torch.randint(num_classes, (num_samples,), generator=g)
    noise = torch.randn((num_samples, *dims), generator=g)
    x = (prototypes[targets] + 0.25 * noise).clamp_(0.0, 1.0)
    inputs = x.mul_(255.0).round_().to(torch.uint8)
    return InMemoryDataset(inputs, targets, num_classes, "synthetic")
