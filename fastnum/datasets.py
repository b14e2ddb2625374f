"""The data sets ``load_mnist`` knows, and telling which one a file holds.

A file is *identified* by SHA-256: of its bytes (a published ``.gz``) or of its
decompressed IDX content (copies whose gzip wrapper was written elsewhere
differ in their ``.gz`` bytes but not in what is inside). A file whose hashes
match no published copy is *unverified*; its statistics (class counts of a
label file, mean pixel of an image file) then only say which data set it
resembles, for the error message.
"""

from dataclasses import dataclass

import numpy as np

N_CLASSES = 10
"""Classes of MNIST and Fashion-MNIST; the output size of every network trained on them."""

FILE_NAMES = {
    "train_img": "train-images-idx3-ubyte.gz",
    "train_label": "train-labels-idx1-ubyte.gz",
    "test_img": "t10k-images-idx3-ubyte.gz",
    "test_label": "t10k-labels-idx1-ubyte.gz",
}
"""The four IDX files of a data set, by role."""

ROLE_NAMES = {
    "train_img": "training images",
    "train_label": "training labels",
    "test_img": "test images",
    "test_label": "test labels",
}


@dataclass(frozen=True)
class DatasetSource:
    """Where a data set can be downloaded and the SHA-256 of each published file."""

    mirrors: tuple
    sha256: dict
    """Published ``.gz`` file name -> SHA-256 of its bytes (what downloads are checked against)."""


DATASETS = {
    "mnist": DatasetSource(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        sha256={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    "fashion-mnist": DatasetSource(
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
        sha256={
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    ),
}

DISPLAY_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}

_ROLE_BY_FILE = {name: role for role, name in FILE_NAMES.items()}

# SHA-256 of every file known, besides the download sums above: the decompressed
# IDX content of MNIST (one for every copy, whatever its gzip wrapper) and the
# second published gzip variant of each Fashion-MNIST file (the two mirrors
# serve the same content in differently written .gz files).
_OTHER_KNOWN_SHA256 = {
    "mnist": {
        "train_img": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",),
        "train_label": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",),
        "test_img": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",),
        "test_label": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",),
    },
    "fashion-mnist": {
        "train_img": ("08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",),
        "train_label": ("b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",),
        "test_img": ("78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",),
        "test_label": ("42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",),
    },
}


def known_sha256():
    """SHA-256 (of a published file, or of decompressed content) -> (data set, role).

    Read from ``DATASETS`` on every call, so a changed registry counts at once.
    """
    known = {}
    for dataset, source in DATASETS.items():
        for name, digest in source.sha256.items():
            known[digest] = (dataset, _ROLE_BY_FILE[name])
    for dataset, roles in _OTHER_KNOWN_SHA256.items():
        for role, digests in roles.items():
            for digest in digests:
                known[digest] = (dataset, role)
    return known


# What the files of each data set look like, for naming a file that no hash
# identifies: label files by their class counts, image files by their count
# and mean pixel value (the well-known normalisation means, to 3 digits).
_LABEL_COUNTS = {
    ("mnist", "train_label"): (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    ("mnist", "test_label"): (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
    ("fashion-mnist", "train_label"): (6000,) * 10,
    ("fashion-mnist", "test_label"): (1000,) * 10,
}
_IMAGE_MEANS = {
    ("mnist", "train_img"): (60000, 0.1307),
    ("mnist", "test_img"): (10000, 0.1325),
    ("fashion-mnist", "train_img"): (60000, 0.2860),
    ("fashion-mnist", "test_img"): (10000, 0.2868),
}
_MEAN_TOLERANCE = 0.0005


@dataclass(frozen=True)
class FileIdentity:
    """What a file was found to be.

    ``dataset`` and ``role`` are None when nothing identifies it;
    ``verified`` says whether a SHA-256 did (else only statistics suggest it).
    """

    dataset: object
    role: object
    verified: bool

    def describe(self):
        if self.dataset is None:
            return "matches no published MNIST or Fashion-MNIST file"
        what = f"{DISPLAY_NAMES[self.dataset]}'s {ROLE_NAMES[self.role]}"
        return what if self.verified else f"looks like {what} (by its statistics; no published copy matches it)"


def identify_by_sha256(*digests):
    """The identity of the first digest that a published file or content has, else None."""
    known = known_sha256()
    for digest in digests:
        if digest in known:
            dataset, role = known[digest]
            return FileIdentity(dataset, role, True)
    return None


def identify_by_statistics(role_kind, array):
    """Which data set's file ``array`` (images (N, 784) or labels (N,)) resembles, unverified."""
    if role_kind == "label":
        counts = tuple(int(c) for c in np.bincount(array, minlength=N_CLASSES)[:N_CLASSES])
        for (dataset, role), expected in _LABEL_COUNTS.items():
            if counts == expected and array.size == sum(expected):
                return FileIdentity(dataset, role, False)
    else:
        n = array.shape[0]
        mean = float(array.mean(dtype=np.float64)) / 255.0 if n else 0.0
        for (dataset, role), (expected_n, expected_mean) in _IMAGE_MEANS.items():
            if n == expected_n and abs(mean - expected_mean) <= _MEAN_TOLERANCE:
                return FileIdentity(dataset, role, False)
    return FileIdentity(None, None, False)
