"""What each dataset is: its files, where they come from, their checksums, its classes.

A :class:`DatasetSpec` is pure description (no I/O). ``DATASETS`` maps the public names
(``"fashion-mnist"``, ``"mnist"``, ``"cifar10"``, ``"cifar100"``, ``"celeba"``,
``"image-folder"``) to their specs; the loaders in :mod:`resnetlab.data.formats` read the
files a spec names.

Checksums: SHA-256 of the official archives as published in TensorFlow Datasets'
``url_checksums`` files (``fashion_mnist.txt``, ``mnist.txt``, ``cifar10.txt``,
``cifar100.txt``, ``celeb_a.txt``), cross-checked against the MD5 sums published by the
dataset authors (Zalando's README, torchvision's CelebA/CIFAR tables) where those exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SPLITS: tuple[str, ...] = ("train", "test")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset as it lies on disk and where it can be downloaded."""

    # The file name the official source uses; the name it gets in a download folder.
    name: str
    # The official download URL; "" when the file cannot be downloaded automatically.
    url: str = ""
    # SHA-256 of the official file (hex); a download is rejected when it differs.
    sha256: str = ""
    # MD5 published by the authors; used only when no SHA-256 is known.
    md5: str = ""
    # Size in bytes of the official file; 0 when unknown (used for the progress bar).
    size: int = 0
    # Other names under which an already present copy is accepted (e.g. gunzipped IDX).
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every acceptable on-disk name, the official one first."""
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class DatasetSpec:
    """Description of one dataset: its files per split, classes and image geometry."""

    # Public name passed to ``load`` and used as the cache folder name.
    name: str
    # Human title for messages and ``resnetlab data info``.
    title: str
    # Image format family; selects the parser in resnetlab.data.formats.
    format: str
    # Files needed per split; a split may share files with another (CIFAR's one archive).
    files: dict[str, tuple[RemoteFile, ...]] = field(default_factory=dict)
    # Class names in label order; empty when they come from the files (CIFAR, folders).
    classes: tuple[str, ...] = ()
    # (channels, height, width) of the stored images; None when it depends on options.
    shape: tuple[int, int, int] | None = None
    # Where a person can read about the dataset and fetch it by hand.
    homepage: str = ""
    # Debian package that installs the files under /usr/share/datasets/<name>/, if any.
    apt_package: str = ""
    # Extra sentence telling a user how to provide the files by hand.
    manual_hint: str = ""
    # Keyword options ``load`` accepts for this dataset; anything else is a ConfigError
    # (with a close-match suggestion) instead of a TypeError deep inside a parser.
    options: tuple[str, ...] = ()

    def split_files(self, split: str) -> tuple[RemoteFile, ...]:
        """The files needed for ``split``."""
        return self.files.get(split, ())

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)

    @property
    def downloadable(self) -> bool:
        return bool(self.files) and all(f.url for fs in self.files.values() for f in fs)


def _idx(base: str, stem: str, sha256: str, md5: str, size: int) -> RemoteFile:
    # Accept the official .gz, a gunzipped copy, and MNIST's old "train-images.idx3-ubyte".
    dotted = stem.replace("-idx", ".idx", 1)
    return RemoteFile(
        f"{stem}.gz",
        f"{base}{stem}.gz",
        sha256=sha256,
        md5=md5,
        size=size,
        aliases=(stem, dotted, f"{dotted}.gz"),
    )


_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_KRIZ = "https://www.cs.toronto.edu/~kriz/"
_DRIVE = "https://drive.usercontent.google.com/download?export=download&confirm=t&id="

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST (Zalando)",
    format="idx",
    files={
        "train": (
            _idx(
                _FASHION,
                "train-images-idx3-ubyte",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                26421880,
            ),
            _idx(
                _FASHION,
                "train-labels-idx1-ubyte",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "25c81989df183df01b3e8a0aad5dffbe",
                29515,
            ),
        ),
        "test": (
            _idx(
                _FASHION,
                "t10k-images-idx3-ubyte",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "bef4ecab320f06d8554ea6380940ec79",
                4422102,
            ),
            _idx(
                _FASHION,
                "t10k-labels-idx1-ubyte",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                "bb300cfdad3c16e7a12a480ee83cd310",
                5148,
            ),
        ),
    },
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    shape=(1, 28, 28),
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    apt_package="dataset-fashion-mnist",
)

MNIST = DatasetSpec(
    name="mnist",
    title="MNIST handwritten digits",
    format="idx",
    files={
        # The CVDF mirror serves the files of yann.lecun.com/exdb/mnist byte for byte
        # (that site now refuses most automated downloads).
        "train": (
            _idx(
                _MNIST,
                "train-images-idx3-ubyte",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                9912422,
            ),
            _idx(
                _MNIST,
                "train-labels-idx1-ubyte",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "d53e105ee54ea40749a09fcbcd1e9432",
                28881,
            ),
        ),
        "test": (
            _idx(
                _MNIST,
                "t10k-images-idx3-ubyte",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "9fb629c4189551a2d022fa330f9573f3",
                1648877,
            ),
            _idx(
                _MNIST,
                "t10k-labels-idx1-ubyte",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                "ec29112dd5afa0611ce80d1b7f02629c",
                4542,
            ),
        ),
    },
    classes=tuple(str(d) for d in range(10)),
    shape=(1, 28, 28),
    homepage="http://yann.lecun.com/exdb/mnist/",
)

_CIFAR10_ARCHIVE = RemoteFile(
    "cifar-10-binary.tar.gz",
    f"{_KRIZ}cifar-10-binary.tar.gz",
    sha256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    md5="c32a1d4ab5d03f1284b67883e8d87530",
    size=170052171,
    aliases=("cifar-10-batches-bin",),  # the archive already extracted
)
CIFAR10 = DatasetSpec(
    name="cifar10",
    title="CIFAR-10 (binary version)",
    format="cifar",
    files={"train": (_CIFAR10_ARCHIVE,), "test": (_CIFAR10_ARCHIVE,)},
    shape=(3, 32, 32),
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
)

_CIFAR100_ARCHIVE = RemoteFile(
    "cifar-100-binary.tar.gz",
    f"{_KRIZ}cifar-100-binary.tar.gz",
    sha256="58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
    md5="03b5dce01913d631647c71ecec9e9cb8",
    size=168513733,
    aliases=("cifar-100-binary",),
)
CIFAR100 = DatasetSpec(
    name="cifar100",
    title="CIFAR-100 (binary version, fine labels)",
    format="cifar",
    files={"train": (_CIFAR100_ARCHIVE,), "test": (_CIFAR100_ARCHIVE,)},
    shape=(3, 32, 32),
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
)

# CelebA's official home is a Google Drive folder; the ids are the ones the authors link.
_CELEBA_FILES = (
    RemoteFile(
        "img_align_celeba.zip",
        f"{_DRIVE}0B7EVK8r0v71pZjFTYXZWM3FlRnM",
        sha256="46fb89443c578308acf364d7d379fe1b9efb793042c0af734b6112e4fd3a8c74",
        md5="00d2c5bc6d35e252742224ab0c1e8fcb",
        size=1443490838,
        aliases=("img_align_celeba",),
    ),
    RemoteFile(
        "list_attr_celeba.txt",
        f"{_DRIVE}0B7EVK8r0v71pblRyaVFSWGxPY0U",
        sha256="f0e5da289d5ccf75ffe8811132694922b60f2af59256ed362afa03fefba324d0",
        md5="75e246fa4810816ffd6ee81facbd244c",
        size=26721026,
    ),
    RemoteFile(
        "list_eval_partition.txt",
        f"{_DRIVE}0B7EVK8r0v71pY0NSMzRuSXJEVkk",
        sha256="fc955bcb3ef8fbdf7d5640d9a8693a8431b5f2ee291a5c1449a1549e7e073fe7",
        md5="d32c9cbf5e040fd4025c592c306e6668",
        size=2836386,
    ),
)
CELEBA = DatasetSpec(
    name="celeba",
    title="CelebA (aligned and cropped faces, attribute targets)",
    format="celeba",
    files={"train": _CELEBA_FILES, "valid": _CELEBA_FILES, "test": _CELEBA_FILES},
    homepage="https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
    manual_hint=(
        "download img_align_celeba.zip, list_attr_celeba.txt and "
        "list_eval_partition.txt from the 'Align&Cropped Images' and 'Anno'/'Eval' "
        "folders of the CelebA Google Drive"
    ),
    options=("attributes", "image_size"),
)

IMAGE_FOLDER = DatasetSpec(
    name="image-folder",
    title="Your own images: root/<class name>/*.png|jpg",
    format="image-folder",
    manual_hint="pass root=... (or --data-dir) pointing at a folder with one sub-folder per class",
    options=("image_size", "grayscale"),
)

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (FASHION_MNIST, MNIST, CIFAR10, CIFAR100, CELEBA, IMAGE_FOLDER)
}
