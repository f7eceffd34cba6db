"""Where each neuromorphic dataset comes from: files, URLs, published checksums, facts.

One :class:`DatasetInfo` per dataset, in :data:`DATASETS`. A file's ``urls`` list the official
location first, then mirrors; an empty list means the file cannot be fetched by a program (a
licence must be accepted by hand) and ``DatasetInfo.manual`` says what to do.

Checksums (``md5:<hex>``) are the published ones; where we know of none, ``checksum`` is
``None`` and ``checksum_list`` may name the dataset's own published checksum list (a file of
``<md5>  <name>`` lines, e.g. SHD/SSC's ``md5sums.txt``), read when the file is fetched. A
checksum is never made up: ``checksum_source`` says where each one was published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from snnkit.errors import DataError


@dataclass(frozen=True)
class SourceFile:
    """One file of an official distribution, as it lies in ``<root>/<DatasetInfo.folder>``."""

    name: str
    split: str  # "train", "test", "valid" or "all"
    urls: tuple[str, ...] = ()
    checksum: str | None = None
    checksum_list: str | None = None
    unpacked: tuple[str, ...] = ()  # what the file becomes when unpacked (also accepted)

    def present(self, folder: Path) -> bool:
        """Whether the file, or what it unpacks to, is in ``folder``."""
        return any((folder / p).exists() for p in (self.name, *self.unpacked))


@dataclass(frozen=True)
class DatasetInfo:
    """What ``snnkit data info NAME`` shows, and what the factories read."""

    name: str
    title: str
    folder: str
    files: tuple[SourceFile, ...]
    classes: tuple[str, ...]
    sensor: tuple[int, ...]  # (H, W) for cameras, (channels,) for audio
    splits: str
    homepage: str
    licence: str
    citation: str
    checksum_source: str
    manual: str | None = None
    layouts: tuple[str, ...] = field(default=())

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def files_for(self, split: str) -> tuple[SourceFile, ...]:
        """The files a split needs (``all`` files belong to every split)."""
        return tuple(f for f in self.files if f.split in (split, "all"))


_MENDELEY = "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"
_FIGSHARE = "https://ndownloader.figshare.com/files/"
_ZENKE = "https://zenkelab.org/datasets/"
_IBM = "https://research.ibm.com/interactive/dvsgesture/"

_CIFAR_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_CIFAR_FILES = {  # class: (figshare file id, published md5)
    "airplane": ("7712788", "0afd5c4bf9ae06af762a77b180354fdd"),
    "automobile": ("7712791", "8438dfeba3bc970c94962d995b1b9bdd"),
    "bird": ("7712794", "a9c207c91c55b9dc2002dc21c684d785"),
    "cat": ("7712812", "52c63c677c2b15fa5146a8daf4d56687"),
    "deer": ("7712815", "b6bf21f6c04d21ba4e23fc3e36c8a4a3"),
    "dog": ("7712818", "f379ebdf6703d16e0a690782e62639c3"),
    "frog": ("7712842", "cad6ed91214b1c7388a5f6ee56d08803"),
    "horse": ("7712851", "e7cbbf77bec584ffbf913f00e682782a"),
    "ship": ("7712836", "41c7bd7d6b251be82557c6cce9a7d5c9"),
    "truck": ("7712839", "89f3922fd147d9aeff89e76a2b0b70a7"),
}

# SHD/SSC: the class numbers as stored in the files' ``labels`` (their README names them)
_SHD_CLASSES = tuple(str(k) for k in range(20))
_SSC_CLASSES = tuple(str(k) for k in range(35))


def _zenke(name: str, split: str) -> SourceFile:
    h5 = name.removesuffix(".gz")
    return SourceFile(
        name, split, (_ZENKE + name,), None, _ZENKE + "md5sums.txt", (h5, h5 + ".zip")
    )


DATASETS: dict[str, DatasetInfo] = {
    "nmnist": DatasetInfo(
        name="nmnist",
        title="N-MNIST (Neuromorphic MNIST)",
        folder="NMNIST",
        files=(
            SourceFile(
                "Train.zip",
                "train",
                (_MENDELEY + "39c25547-014b-4137-a934-9d29fa53c7a0/file_downloaded",),
                "md5:20959b8e626244a1b502305a9e6e2031",
                unpacked=("Train",),
            ),
            SourceFile(
                "Test.zip",
                "test",
                (_MENDELEY + "05a4d654-7e03-4c15-bdfa-9bb2bcbea494/file_downloaded",),
                "md5:69ca8762b2fe404d9b9bad1103e97832",
                unpacked=("Test",),
            ),
        ),
        classes=tuple(str(d) for d in range(10)),
        sensor=(34, 34),
        splits="official: train 60000, test 10000 samples (members Train/<digit>/<id>.bin)",
        homepage="https://www.garrickorchard.com/datasets/n-mnist",
        licence="CC BY 4.0 (Mendeley Data, doi:10.17632/468j46mzdv.1)",
        citation="Orchard, Jayawant, Cohen, Thakor: Converting Static Image Datasets to Spiking "
        "Neuromorphic Datasets Using Saccades. Front. Neurosci. 9:437 (2015)",
        checksum_source="md5 as listed for the Mendeley Data files",
        layouts=("Train.zip / Test.zip", "or the extracted folders Train/ and Test/"),
    ),
    "dvs_gesture": DatasetInfo(
        name="dvs_gesture",
        title="DVS128 Gesture (IBM)",
        folder="DVSGesture",
        files=(
            SourceFile(
                "DvsGesture.tar.gz",
                "all",
                (),
                "md5:8a5c71fb11e24e5ca5b11866ca6c00a1",
                unpacked=("DvsGesture", "extracted/DvsGesture"),
            ),
        ),
        classes=(
            "hand_clapping",
            "right_hand_wave",
            "left_hand_wave",
            "right_arm_clockwise",
            "right_arm_counter_clockwise",
            "left_arm_clockwise",
            "left_arm_counter_clockwise",
            "arm_roll",
            "air_drums",
            "air_guitar",
            "other_gestures",
        ),
        sensor=(128, 128),
        splits="official: the trials in trials_to_train.txt / trials_to_test.txt; a sample is "
        "one labelled segment (startTime <= t < endTime of a _labels.csv row)",
        homepage=_IBM,
        licence="the licence in the archive's LICENSE.txt, accepted on IBM's page before "
        "downloading",
        citation="Amir et al.: A Low Power, Fully Event-Based Gesture Recognition System. "
        "CVPR 2017",
        checksum_source="md5 of DvsGesture.tar.gz as listed by the dataset loaders that "
        "reference it (IBM publishes none on its page)",
        manual=f"download DvsGesture.tar.gz from the official IBM page {_IBM} (it asks you to "
        "accept the licence first) and place it in",
        layouts=("DvsGesture.tar.gz", "or the extracted folder DvsGesture/"),
    ),
    "cifar10_dvs": DatasetInfo(
        name="cifar10_dvs",
        title="CIFAR10-DVS",
        folder="CIFAR10DVS",
        files=tuple(
            SourceFile(
                f"{c}.zip",
                "all",
                (_FIGSHARE + _CIFAR_FILES[c][0],),
                "md5:" + _CIFAR_FILES[c][1],
                unpacked=(c,),
            )
            for c in _CIFAR_CLASSES
        ),
        classes=_CIFAR_CLASSES,
        sensor=(128, 128),
        splits="no official split: per class, the files sorted by their number are permuted "
        "by numpy.random.default_rng(0).permutation(n); the first 90% train, the rest test",
        homepage="https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671",
        licence="CC BY 4.0 (figshare)",
        citation="Li, Liu, Ji, Li, Shi: CIFAR10-DVS: An Event-Stream Dataset for Object "
        "Classification. Front. Neurosci. 11:309 (2017)",
        checksum_source="md5 of each class archive as listed for the figshare files",
        layouts=("<class>.zip, one per class", "or the extracted folders <class>/"),
    ),
    "shd": DatasetInfo(
        name="shd",
        title="Spiking Heidelberg Digits",
        folder="SHD",
        files=(_zenke("shd_train.h5.gz", "train"), _zenke("shd_test.h5.gz", "test")),
        classes=_SHD_CLASSES,
        sensor=(700,),
        splits="official: train, test",
        homepage=_ZENKE,
        licence="CC BY 4.0",
        citation="Cramer, Stradmann, Schemmel, Zenke: The Heidelberg Spiking Data Sets for the "
        "Systematic Evaluation of Spiking Neural Networks. IEEE TNNLS (2020)",
        checksum_source=f"none hard-coded: read at fetch time from {_ZENKE}md5sums.txt",
        layouts=("<name>.h5.gz", "<name>.h5.zip", "or the unpacked <name>.h5"),
    ),
    "ssc": DatasetInfo(
        name="ssc",
        title="Spiking Speech Commands",
        folder="SSC",
        files=(
            _zenke("ssc_train.h5.gz", "train"),
            _zenke("ssc_valid.h5.gz", "valid"),
            _zenke("ssc_test.h5.gz", "test"),
        ),
        classes=_SSC_CLASSES,
        sensor=(700,),
        splits="official: train, valid, test",
        homepage=_ZENKE,
        licence="CC BY 4.0",
        citation="Cramer, Stradmann, Schemmel, Zenke: The Heidelberg Spiking Data Sets for the "
        "Systematic Evaluation of Spiking Neural Networks. IEEE TNNLS (2020)",
        checksum_source=f"none hard-coded: read at fetch time from {_ZENKE}md5sums.txt",
        layouts=("<name>.h5.gz", "<name>.h5.zip", "or the unpacked <name>.h5"),
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` or a :class:`DataError` listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(
            f"unknown neuromorphic dataset '{name}' — known: {', '.join(DATASETS)}"
        ) from None
