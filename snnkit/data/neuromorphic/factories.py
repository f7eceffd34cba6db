"""The dataset factories registered in :mod:`snnkit.plugins.catalogue`.

``factory(train, root=None, download=True, frames=…, split_by="number", cache=True)`` returns
an :class:`~snnkit.data.neuromorphic.dataset.EventDataset`: ``len(ds)``, ``ds[i] -> (frames,
label)``, ``ds.events(i)``. Files live in ``<root>/<Folder>`` with ``root`` from
:func:`snnkit.data.images.resolve_root`; see :mod:`snnkit.data.neuromorphic.files` for what is
fetched, checked and unpacked, and :mod:`snnkit.data.neuromorphic.sources` for the sources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from snnkit.data.download import extract
from snnkit.data.images import resolve_root
from snnkit.data.neuromorphic.audio import spike_h5_reader
from snnkit.data.neuromorphic.cameras import (
    cifar10_dvs_files,
    cifar10_dvs_reader,
    cifar10_dvs_split,
    nmnist_reader,
)
from snnkit.data.neuromorphic.dataset import EventDataset
from snnkit.data.neuromorphic.files import checksum_warnings, obtain, unpack_single
from snnkit.data.neuromorphic.gesture import data_folder, gesture_reader
from snnkit.data.neuromorphic.sources import DATASETS, DatasetInfo
from snnkit.errors import DataError

__all__ = ["cifar10_dvs", "dvs_gesture", "nmnist", "shd", "ssc"]

#: The fixed CIFAR10-DVS split (see :func:`cifar10_dvs`).
CIFAR10_DVS_SEED = 0
CIFAR10_DVS_TRAIN_FRACTION = 0.9


def _folder(info: DatasetInfo, root: str | None) -> Path:
    return resolve_root(root) / info.folder


def _event_dataset(
    info: DatasetInfo,
    reader: Any,
    split: str,
    frames: int,
    split_by: Literal["number", "time"],
    cache: bool,
    pre_transform: Any,
    extra_key: dict[str, Any] | None = None,
) -> EventDataset:
    """The :class:`EventDataset` of one split of ``info``'s dataset (classes and sensor from
    its sources table)."""
    return EventDataset(
        info.name,
        reader,
        num_classes=info.num_classes,
        sensor=info.sensor,
        frames=frames,
        split_by=split_by,
        split=split,
        cache=cache,
        pre_transform=pre_transform,
        extra_key=extra_key,
    )


def nmnist(
    train: bool,
    root: str | None = None,
    download: bool = True,
    frames: int = 16,
    split_by: Literal["number", "time"] = "number",
    cache: bool = True,
    pre_transform: Any = None,
) -> EventDataset:
    """N-MNIST: MNIST digits recorded by a moving 34×34 event camera (10 classes).

    Reads ``<root>/NMNIST/Train.zip`` / ``Test.zip`` (members ``Train/<digit>/<id>.bin``) in
    place, or the extracted folders ``Train/`` / ``Test/``. ``ds[i]`` is ``(counts [frames, 2,
    34, 34] float32, label)``: the sample's events cut into ``frames`` slices by event number
    or by equal time windows (``split_by``). ``cache`` stores the frames on disk
    (``$SNNKIT_CACHE``), computed once when the dataset is built. Missing archives are fetched
    from Mendeley Data (md5-verified) when ``download``.
    """
    info = DATASETS["nmnist"]
    folder = _folder(info, root)
    split_dir, split = ("Train", "train") if train else ("Test", "test")
    if not (folder / split_dir).is_dir():
        files = info.files_for(split)
        obtain(
            info,
            folder,
            [f for f in files if not (folder / f.name).is_file()],
            download,
            f"the extracted folder {split_dir}/",
        )
        checksum_warnings(info, folder, files)
    reader = nmnist_reader(folder, split_dir)
    assert reader is not None  # obtained above
    return _event_dataset(info, reader, split, frames, split_by, cache, pre_transform)


def dvs_gesture(
    train: bool,
    root: str | None = None,
    download: bool = True,
    frames: int = 16,
    split_by: Literal["number", "time"] = "number",
    cache: bool = True,
    pre_transform: Any = None,
) -> EventDataset:
    """DVS128 Gesture: 11 hand and arm gestures recorded by a 128×128 DVS (IBM).

    Reads ``<root>/DVSGesture/DvsGesture.tar.gz`` (extracted once, atomically, into
    ``extracted/``) or a folder ``DvsGesture/`` extracted by hand. Train/test are the official
    ``trials_to_train.txt`` / ``trials_to_test.txt``; a sample is one labelled segment of a
    recording (``startTime <= t < endTime`` of a ``_labels.csv`` row), classes 1–11 -> labels
    0–10. ``ds[i]`` is ``(counts [frames, 2, 128, 128] float32, label)``. The archive needs
    its licence accepted by hand on IBM's page: it is never downloaded by snnkit (``download``
    has no effect; the error says where to get it).
    """
    info = DATASETS["dvs_gesture"]
    folder = _folder(info, root)
    data = data_folder(folder)
    if data is None:
        archive = folder / info.files[0].name
        obtain(
            info,
            folder,
            [] if archive.is_file() else list(info.files),
            download,
            "the extracted folder DvsGesture/",
        )
        checksum_warnings(info, folder, info.files)
        extract(archive, folder / "extracted")
        data = data_folder(folder)
        if data is None:
            raise DataError(
                f"{archive}: no DvsGesture/trials_to_train.txt in it — it is not the "
                "official archive; fetch it again"
            )
    reader = gesture_reader(data, train)
    return _event_dataset(
        info, reader, "train" if train else "test", frames, split_by, cache, pre_transform
    )


def cifar10_dvs(
    train: bool,
    root: str | None = None,
    download: bool = True,
    frames: int = 16,
    split_by: Literal["number", "time"] = "number",
    cache: bool = True,
    pre_transform: Any = None,
) -> EventDataset:
    """CIFAR10-DVS: CIFAR-10 images recorded by a 128×128 DVS, 10 classes (AEDAT 2.0).

    Reads ``<root>/CIFAR10DVS/<class>.zip`` (``airplane.zip`` … ``truck.zip``, as released on
    figshare) in place, or extracted class folders ``<class>/``. There is no official split;
    this one is fixed: per class, the recordings sorted by the number in their file name are
    permuted by ``numpy.random.default_rng(0).permutation(n)``, the first ``round(0.9 n)``
    (900 of 1000) are train and the rest (100) test. ``ds[i]`` is ``(counts [frames, 2, 128,
    128] float32, label)``. Missing archives are fetched from figshare (md5-verified) when
    ``download``.
    """
    info = DATASETS["cifar10_dvs"]
    folder = _folder(info, root)
    per_class, sources, missing = cifar10_dvs_files(folder, info.classes)
    if missing:
        files = [f for f in info.files if f.name[: -len(".zip")] in missing]
        obtain(info, folder, files, download, "extracted class folders <class>/")
        per_class, sources, missing = cifar10_dvs_files(folder, info.classes)
    checksum_warnings(info, folder, info.files)
    samples = cifar10_dvs_split(per_class, train, CIFAR10_DVS_SEED, CIFAR10_DVS_TRAIN_FRACTION)
    return _event_dataset(
        info,
        cifar10_dvs_reader(folder, samples, sources),
        "train" if train else "test",
        frames,
        split_by,
        cache,
        pre_transform,
        extra_key={"split_seed": CIFAR10_DVS_SEED, "train_fraction": CIFAR10_DVS_TRAIN_FRACTION},
    )


def _audio(
    name: str,
    split: str,
    root: str | None,
    download: bool,
    frames: int,
    split_by: Literal["number", "time"],
    cache: bool,
    pre_transform: Any = None,
) -> EventDataset:
    info = DATASETS[name]
    folder = _folder(info, root)
    h5 = folder / f"{name}_{split}.h5"
    if not h5.is_file():
        files = info.files_for(split)
        archive = next(
            (p for p in (folder / f"{h5.name}.gz", folder / f"{h5.name}.zip") if p.is_file()), None
        )
        if archive is None:
            obtain(info, folder, files, download, f"{h5.name}.zip or the unpacked {h5.name}")
            archive = folder / files[0].name
        checksum_warnings(info, folder, files)
        unpack_single(archive, h5)
    return _event_dataset(info, spike_h5_reader(h5), split, frames, split_by, cache, pre_transform)


def shd(
    train: bool,
    root: str | None = None,
    download: bool = True,
    frames: int = 100,
    split_by: Literal["number", "time"] = "number",
    cache: bool = True,
    pre_transform: Any = None,
) -> EventDataset:
    """Spiking Heidelberg Digits: spoken digits in English and German, 700 channels, 20 classes.

    Reads ``<root>/SHD/shd_train.h5`` / ``shd_test.h5``, unpacking the official ``.h5.gz`` (or
    ``.h5.zip``) once, atomically. ``ds[i]`` is ``(counts [frames, 700] float32, label)``.
    Missing files are fetched from zenkelab.org, verified against its published
    ``md5sums.txt``, when ``download``.
    """
    split = "train" if train else "test"
    return _audio("shd", split, root, download, frames, split_by, cache, pre_transform)


def ssc(
    train: bool,
    root: str | None = None,
    download: bool = True,
    frames: int = 100,
    split_by: Literal["number", "time"] = "number",
    cache: bool = True,
    eval_split: Literal["test", "valid"] = "test",
    pre_transform: Any = None,
) -> EventDataset:
    """Spiking Speech Commands: 35 spoken command words as spikes of 700 cochlear channels.

    Reads ``<root>/SSC/ssc_{train,valid,test}.h5``, unpacking the official ``.h5.gz`` (or
    ``.h5.zip``) once, atomically; ``eval_split`` picks the split used when ``train`` is
    false. ``ds[i]`` is ``(counts [frames, 700] float32, label)``. Missing files are fetched
    from zenkelab.org, verified against its published ``md5sums.txt``, when ``download``.
    """
    if eval_split not in ("test", "valid"):
        raise ValueError(f"eval_split must be 'test' or 'valid', got {eval_split!r}")
    split = "train" if train else eval_split
    return _audio("ssc", split, root, download, frames, split_by, cache, pre_transform)
