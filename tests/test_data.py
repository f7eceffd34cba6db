"""Tests for snnkit.data.images: the in-memory dataset, batching, root resolution, file readers."""

from __future__ import annotations

import gzip
import inspect
import os
import pickle
import socket
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from snnkit.components.encoders import intensity
from snnkit.data import images as data
from snnkit.data.images import InMemoryDataset, resolve_root, synthetic
from snnkit.errors import DataError
from snnkit.plugins.loader import build_registry

# the catalogue registered by snnkit/builtins.py, sorted by name
BUILTIN_DATASETS = [(c.name, c.factory) for c in build_registry(entry_points=False).list("dataset")]

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------
# helpers (fixtures live here: the conftest is not this module's)
# ------------------------------------------------------------------------------------------


def write_idx(
    path: Path,
    array: np.ndarray,
    *,
    magic: int | None = None,
    cut: int = 0,
    extra: bytes = b"",
    gz: bool = False,
) -> Path:
    """An IDX file of uint8 ``array``; ``magic`` overrides the magic, ``cut`` drops trailing bytes."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x0800 + array.ndim if magic is None else magic
    blob = struct.pack(">I", magic) + struct.pack(">" + "I" * array.ndim, *array.shape)
    blob += array.tobytes() + extra
    if cut:
        blob = blob[:-cut]
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(blob))
    else:
        path.write_bytes(blob)
    return path


def fake_mnist(
    root: Path, folder: str = "MNIST", n: int = 5, *, train: bool = True, gz: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) * 3 % 10).astype(np.uint8)
    prefix = "train" if train else "t10k"
    raw = root / folder / "raw"
    write_idx(raw / f"{prefix}-images-idx3-ubyte", images, gz=gz)
    write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, gz=gz)
    return images, labels


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and mtime: to prove nothing was written."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    } | {".": (0, folder.stat().st_mtime_ns)}


def install_fake_torchvision(monkeypatch: pytest.MonkeyPatch, **classes: type) -> None:
    """Make ``import torchvision.datasets`` return a stub holding ``classes`` (no real import)."""
    package = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    for name, cls in classes.items():
        setattr(datasets, name, cls)
    package.datasets = datasets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)


def real_root() -> Path | None:
    env = os.environ.get("SNNKIT_DATA")
    if not env:
        return None
    p = Path(env)
    if not p.is_absolute() and not p.exists():
        p = REPO / p  # CI sets it relative to the repo root
    return p if (p / "MNIST" / "raw").is_dir() else None


# ------------------------------------------------------------------------------------------
# InMemoryDataset
# ------------------------------------------------------------------------------------------


def small_dataset(n: int = 10) -> InMemoryDataset:
    # input i holds the value i
    inputs = torch.arange(n, dtype=torch.uint8).view(n, 1)
    return InMemoryDataset(inputs, torch.arange(n) % 3, 3, "toy")


def test_dataset_basics():
    ds = small_dataset(10)
    assert len(ds) == 10
    x, y = ds[4]
    assert x.tolist() == [4] and int(y) == 1
    assert ds.input_shape == (1,)
    assert ds.name == "toy" and ds.num_classes == 3


@pytest.mark.parametrize(
    "inputs, targets, match",
    [
        (torch.zeros(3, 2, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64), "same length"),
        (torch.zeros(3, 2, dtype=torch.uint8), torch.zeros(3, dtype=torch.int32), "int64"),
        (
            torch.zeros(3, 2, dtype=torch.int16),
            torch.zeros(3, dtype=torch.int64),
            "uint8 or floating",
        ),
    ],
)
def test_dataset_rejects_bad_tensors(inputs, targets, match):
    with pytest.raises(ValueError, match=match):
        InMemoryDataset(inputs, targets, 2)


# ------------------------------------------------------------------------------------------
# resolve_root
# ------------------------------------------------------------------------------------------


def test_resolve_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("SNNKIT_DATA", "/env/data")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_root("/given") == Path("/given")
    assert resolve_root("rel/dir") == Path("rel/dir")  # relative roots taken as given
    assert resolve_root(None) == Path("/env/data")
    monkeypatch.delenv("SNNKIT_DATA")
    assert resolve_root(None) == tmp_path / "xdg" / "snnkit" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_root(None) == tmp_path / "home" / ".cache" / "snnkit" / "data"


# ------------------------------------------------------------------------------------------
# synthetic
# ------------------------------------------------------------------------------------------


def test_synthetic_shapes_and_determinism():
    a = synthetic(True, num_samples=50, shape=(2, 3, 4), num_classes=4, seed=3)
    b = synthetic(True, num_samples=50, shape=(2, 3, 4), num_classes=4, seed=3)
    assert a.inputs.shape == (50, 2, 3, 4) and a.inputs.dtype == torch.uint8
    assert a.targets.shape == (50,) and a.targets.dtype == torch.int64
    assert a.num_classes == 4 and a.name == "synthetic" and a.input_shape == (2, 3, 4)
    assert int(a.targets.min()) >= 0 and int(a.targets.max()) < 4
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    other = synthetic(True, num_samples=50, shape=(2, 3, 4), num_classes=4, seed=4)
    assert not torch.equal(a.inputs, other.inputs)
    test = synthetic(False, num_samples=50, shape=(2, 3, 4), num_classes=4, seed=3)
    assert not torch.equal(a.inputs, test.inputs)
    assert synthetic(True, shape=[1, 8, 8]).input_shape == (1, 8, 8)  # a recipe's list works


def test_synthetic_is_learnable():
    train = synthetic(True, num_samples=400, seed=0)
    test = synthetic(False, num_samples=200, seed=0)
    assert len(set(train.targets.tolist())) == 10
    xtr = intensity(train.inputs).flatten(1)
    xte = intensity(test.inputs).flatten(1)
    means = torch.stack([xtr[train.targets == c].mean(0) for c in range(10)])
    pred = torch.cdist(xte, means).argmin(1)
    accuracy = (pred == test.targets).float().mean().item()
    assert accuracy > 0.8  # chance is 0.1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_samples": 0}, "num_samples"),
        ({"shape": ()}, "shape"),
        ({"shape": (1, 0)}, "shape"),
        ({"num_classes": 0}, "num_classes"),
        ({"seed": -1}, "seed"),
    ],
)
def test_synthetic_rejects_bad_params(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic(True, **kwargs)


def test_factories_have_typed_schemas_and_docs():
    names = [n for n, _ in BUILTIN_DATASETS]
    assert names == sorted(
        [
            "mnist",
            "fashion_mnist",
            "kmnist",
            "cifar10",
            "synthetic",
            "nmnist",
            "dvs_gesture",
            "cifar10_dvs",
            "shd",
            "ssc",
        ]
    )
    for _, factory in BUILTIN_DATASETS:
        sig = inspect.signature(factory, eval_str=True)
        params = list(sig.parameters.values())
        assert params[0].name == "train"
        for p in params:
            assert p.annotation is not inspect.Parameter.empty, (factory, p.name)
            if p.name != "train":
                assert p.default is not inspect.Parameter.empty, (factory, p.name)
                assert not isinstance(p.default, (list, dict, set)), (factory, p.name)
        assert factory.__doc__ and factory.__doc__.strip().splitlines()[0].endswith(".")


# ------------------------------------------------------------------------------------------
# IDX files (fake, in tmp_path)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "factory, folder",
    [(data.mnist, "MNIST"), (data.fashion_mnist, "FashionMNIST"), (data.kmnist, "KMNIST")],
)
def test_idx_reader_loads_fake_files_and_writes_nothing(tmp_path, factory, folder, gz):
    images, labels = fake_mnist(tmp_path, folder, n=5, train=False, gz=gz)
    before = snapshot(tmp_path)
    ds = factory(False, root=str(tmp_path), download=False)
    assert ds.inputs.shape == (5, 1, 28, 28) and ds.inputs.dtype == torch.uint8
    assert ds.targets.dtype == torch.int64 and ds.num_classes == 10
    assert np.array_equal(ds.inputs[:, 0].numpy(), images)
    assert ds.targets.tolist() == labels.tolist() == [0, 3, 6, 9, 2]
    assert snapshot(tmp_path) == before


def test_plain_file_preferred_over_gz(tmp_path):
    fake_mnist(tmp_path, n=3)
    raw = tmp_path / "MNIST" / "raw"
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")  # ignored: the plain file wins
    assert len(data.mnist(True, root=str(tmp_path), download=False)) == 3


def corrupt(tmp_path: Path, which: str, **kw) -> Path:
    """Good train files, then ``which`` ('images' or 'labels') rewritten with ``kw``."""
    images, labels = fake_mnist(tmp_path, n=4)
    raw = tmp_path / "MNIST" / "raw"
    if which == "images":
        return write_idx(raw / "train-images-idx3-ubyte", kw.pop("array", images), **kw)
    return write_idx(raw / "train-labels-idx1-ubyte", kw.pop("array", labels), **kw)


@pytest.mark.parametrize(
    "which, kw, match",
    [
        ("images", {"magic": 0x0801}, r"wrong magic number 0x00000801 \(expected 0x00000803"),
        ("labels", {"magic": 0x0D01}, r"wrong magic number 0x00000d01 \(expected 0x00000801"),
        # header 4 + 3*4 = 16 bytes, then 4*28*28 = 3136 pixels: 3152 bytes; cut 10 -> 3142
        ("images", {"cut": 10}, "is truncated: 3142 bytes, but its header .4, 28, 28. means 3152"),
        ("images", {"extra": b"\0\0"}, "is too long: 3154 bytes"),  # 3152 + 2
        ("labels", {"array": np.zeros(3, np.uint8)}, "has 3 labels but .* has 4 images"),
        (
            "labels",
            {"array": np.array([0, 1, 10, 2], np.uint8)},
            "has label 10, but labels must be in 0..9",
        ),
        (
            "images",
            {"array": np.zeros((4, 28, 27), np.uint8)},
            "holds 28x27 images, expected 28x28",
        ),
    ],
)
def test_corrupt_idx_files_raise_data_error(tmp_path, which, kw, match):
    path = corrupt(tmp_path, which, **kw)
    with pytest.raises(DataError, match=match) as info:
        data.mnist(True, root=str(tmp_path), download=False)
    msg = str(info.value)
    assert msg.startswith("dataset mnist: ") and "\n" not in msg
    assert str(path.parent) in msg
    assert "replace" in msg  # the fix


def test_tiny_and_bad_gzip_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    fake_mnist(tmp_path, n=2)
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\0\0")
    with pytest.raises(DataError, match="truncated .2 bytes, no IDX header"):
        data.mnist(True, root=str(tmp_path), download=False)
    (raw / "train-labels-idx1-ubyte").write_bytes(
        b"\0\0\x08\x01\0\0"
    )  # header cut after 2 dim bytes
    with pytest.raises(DataError, match="header alone is 8"):
        data.mnist(True, root=str(tmp_path), download=False)
    (raw / "train-labels-idx1-ubyte").unlink()
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(b"\0\0\x08\x01\0\0\0\x02\1\2")[:-6]
    )
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz is not a valid gzip file"):
        data.mnist(True, root=str(tmp_path), download=False)


# ------------------------------------------------------------------------------------------
# missing files, downloads
# ------------------------------------------------------------------------------------------


def test_missing_files_without_download(tmp_path):
    fake_mnist(tmp_path, n=2, train=True)  # only the train split is present
    with pytest.raises(DataError) as info:
        data.mnist(False, root=str(tmp_path), download=False)
    msg = str(info.value)
    raw = tmp_path / "MNIST" / "raw"
    assert msg.startswith(
        f"dataset mnist: files missing in {raw}: t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"
    )
    assert "place the MNIST files there (torchvision layout)" in msg and "SNNKIT_DATA" in msg
    assert not (tmp_path / "MNIST" / "processed").exists()


def test_failed_download_is_one_data_error_and_restores_timeout(tmp_path, monkeypatch):
    seen = {}

    class FailingMNIST:
        def __init__(self, root, train, download):
            seen.update(
                root=root, train=train, download=download, timeout=socket.getdefaulttimeout()
            )
            raise RuntimeError(
                "Error downloading train-images-idx3-ubyte.gz:\nTried x, got: offline"
            )

    install_fake_torchvision(monkeypatch, MNIST=FailingMNIST)
    previous = socket.getdefaulttimeout()
    with pytest.raises(DataError) as info:
        data.mnist(True, root=str(tmp_path), download=True)
    msg = str(info.value)
    assert f"files missing in {tmp_path / 'MNIST' / 'raw'}: train-images-idx3-ubyte" in msg
    assert (
        "download failed (RuntimeError: Error downloading train-images-idx3-ubyte.gz: Tried x"
        in msg
    )
    assert "\n" not in msg
    assert seen == {
        "root": str(tmp_path),
        "train": True,
        "download": True,
        "timeout": data.DOWNLOAD_TIMEOUT_S,
    }
    assert socket.getdefaulttimeout() == previous


def test_successful_download_then_load(tmp_path, monkeypatch):
    class WritingKMNIST:  # stands in for torchvision: puts the files in the torchvision layout
        def __init__(self, root, train, download):
            fake_mnist(Path(root), "KMNIST", n=3, train=train)

    install_fake_torchvision(monkeypatch, KMNIST=WritingKMNIST)
    ds = data.kmnist(True, root=str(tmp_path))
    assert len(ds) == 3 and ds.name == "kmnist"


def test_download_into_unwritable_root(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_writable", lambda path: False)
    with pytest.raises(DataError, match=f"cannot download them: {tmp_path} is not writable"):
        data.fashion_mnist(True, root=str(tmp_path), download=True)


def test_writable_checks_nearest_existing_parent(tmp_path):
    assert data._writable(tmp_path / "not" / "yet" / "there")


# ------------------------------------------------------------------------------------------
# CIFAR-10 (fake python batches)
# ------------------------------------------------------------------------------------------


def write_cifar_batch(
    path: Path, data_rows: np.ndarray, labels: list[int], *, old_numpy: bool = False
) -> None:
    blob = pickle.dumps(
        {b"batch_label": b"fake", b"labels": labels, b"data": data_rows}, protocol=2
    )
    if old_numpy:  # the real files name numpy.core.multiarray (numpy 1.x, python 2)
        blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)


def fake_cifar(root: Path, n: int = 2) -> Path:
    folder = root / "cifar-10-batches-py"
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        rows = np.full((n, 3072), k, dtype=np.uint8)
        rows[:, 1024] = 200  # first pixel of the green plane
        write_cifar_batch(folder / name, rows, [k % 10] * n, old_numpy=k % 2 == 0)
    return folder


def test_cifar10_reads_fake_batches(tmp_path):
    fake_cifar(tmp_path, n=2)
    before = snapshot(tmp_path)
    train = data.cifar10(True, root=str(tmp_path), download=False)
    assert train.inputs.shape == (10, 3, 32, 32) and train.inputs.dtype == torch.uint8
    assert train.targets.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]  # batches 1..5 in order
    assert int(train.inputs[0, 1, 0, 0]) == 200 and int(train.inputs[0, 0, 0, 0]) == 0
    assert int(train.inputs[2, 2, 5, 5]) == 1  # row-major R, G, B planes of 32x32
    test = data.cifar10(False, root=str(tmp_path), download=False)
    assert test.inputs.shape == (2, 3, 32, 32) and test.targets.tolist() == [5, 5]
    assert snapshot(tmp_path) == before


class Boom:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


@pytest.mark.parametrize(
    "payload, match",
    [
        ({b"data": Boom(), b"labels": [0]}, "not a CIFAR-10 python batch .unexpected object"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "has label 10"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "has 1 labels but 2 images"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, r"shape \[N, 3072\]"),
    ],
)
def test_cifar10_bad_batches(tmp_path, payload, match):
    folder = fake_cifar(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataError, match=match) as info:
        data.cifar10(False, root=str(tmp_path), download=False)
    assert str(folder / "test_batch") in str(info.value)


def test_cifar10_missing_files(tmp_path):
    folder = fake_cifar(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(
        DataError, match=f"files missing in {folder}: data_batch_3 .download is off"
    ):
        data.cifar10(True, root=str(tmp_path), download=False)


# ------------------------------------------------------------------------------------------
# real MNIST (skipped unless SNNKIT_DATA points at it)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_root() -> Path:
    root = real_root()
    if root is None:
        pytest.skip("SNNKIT_DATA is unset or has no MNIST/raw folder")
    return root


@pytest.mark.parametrize(
    "train, n, first_label, prefix", [(True, 60000, 5, "train"), (False, 10000, 7, "t10k")]
)
def test_real_mnist(mnist_root, train, n, first_label, prefix):
    before = snapshot(mnist_root)
    ds = data.mnist(train, root=str(mnist_root), download=True)  # present: no download attempted
    assert ds.inputs.shape == (n, 1, 28, 28) and ds.inputs.dtype == torch.uint8
    assert ds.targets.shape == (n,) and ds.targets.dtype == torch.int64
    assert int(ds.targets.min()) == 0 and int(ds.targets.max()) == 9
    assert int(ds.targets[0]) == first_label
    raw = mnist_root / "MNIST" / "raw"
    image_file = raw / f"{prefix}-images-idx3-ubyte"
    if image_file.exists():
        blob = image_file.read_bytes()
    else:
        blob = gzip.decompress((raw / f"{prefix}-images-idx3-ubyte.gz").read_bytes())
    assert sum(blob[16 : 16 + 784]) == int(ds.inputs[0].sum())  # header is 16 bytes, image 0 next
    assert snapshot(mnist_root) == before


def test_real_mnist_via_env(mnist_root, monkeypatch):
    monkeypatch.setenv("SNNKIT_DATA", str(mnist_root))
    ds = data.mnist(False)
    assert len(ds) == 10000 and ds.targets[:3].tolist() == [7, 2, 1]


@pytest.mark.parametrize("bad", [-1, 3])
def test_in_memory_dataset_refuses_labels_outside_its_classes(bad: int) -> None:
    with pytest.raises(
        ValueError, match=r"targets must be class indices in \[0, num_classes = 3\)"
    ):
        InMemoryDataset(torch.zeros(4, 2), torch.tensor([0, 1, bad, 2]), 3, "toy")
    assert len(InMemoryDataset(torch.zeros(4, 2), torch.tensor([0, 1, 2, 2]), 3, "toy")) == 4
