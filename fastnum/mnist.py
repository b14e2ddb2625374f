"""``load_mnist``: drop-in for the book's ``dataset/mnist.py``.

Reads the four standard IDX files, validates them, and returns the arrays in
the book's formats. Files are looked for in, in order: the ``data_dir``
argument, the ``FASTNUM_DATA_DIR`` environment variable, the user's cache
folder. A file found nowhere is downloaded into the cache folder from the
first mirror that answers and checked against its published SHA-256; pooch
does the fetching (mirrors, checksum, a tqdm progress bar, and a download
into a temporary file that is moved into place only once verified, so no
half-written file is ever left to be read later).

Decoded arrays are cached as ``.npz`` (never a pickle) in the cache folder,
keyed by the SHA-256 of the four source files, so a changed source file is
decoded afresh.
"""

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._atomic import atomic_write

DATA_DIR_ENV = "FASTNUM_DATA_DIR"
"""Environment variable naming a folder that holds the IDX files."""
CACHE_DIR_ENV = "FASTNUM_CACHE_DIR"
"""Environment variable overriding the cache folder (downloads and decoded arrays)."""

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
IMAGE_SIDE = 28
N_CLASSES = 10

FILE_NAMES = {
    "train_img": "train-images-idx3-ubyte.gz",
    "train_label": "train-labels-idx1-ubyte.gz",
    "test_img": "t10k-images-idx3-ubyte.gz",
    "test_label": "t10k-labels-idx1-ubyte.gz",
}


@dataclass(frozen=True)
class DatasetSource:
    """Where a data set can be downloaded and the SHA-256 of each published file."""

    mirrors: tuple
    sha256: dict


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


class DataFileError(ValueError):
    """An IDX file is truncated, corrupt or not the file it should be."""


def cache_dir():
    """The cache folder: ``$FASTNUM_CACHE_DIR`` or the user's cache folder for fastnum."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("fastnum"))


def _search_dirs(data_dir, dataset):
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    if os.environ.get(DATA_DIR_ENV):
        dirs.append(Path(os.environ[DATA_DIR_ENV]).expanduser())
    dirs.append(cache_dir() / dataset)
    return dirs


def _find_local(name, dirs):
    """The first existing file ``name`` (or its uncompressed twin) in ``dirs``."""
    for folder in dirs:
        for candidate in (folder / name, folder / name[: -len(".gz")]):
            if candidate.is_file():
                return candidate
    return None


def _download(name, dataset, progress):
    """Fetch ``name`` into the cache from the first mirror that answers; verified by SHA-256."""
    import pooch

    source = DATASETS[dataset]
    target_dir = cache_dir() / dataset
    errors = []
    for mirror in source.mirrors:
        try:
            path = pooch.retrieve(
                url=mirror + name,
                known_hash="sha256:" + source.sha256[name],
                fname=name,
                path=target_dir,
                progressbar=progress,
            )
            return Path(path)
        except Exception as error:  # a mirror down, a 404, a checksum mismatch: try the next
            errors.append(f"{mirror}{name}: {error}")
    raise FileNotFoundError("\n  ".join([f"could not download {name}:", *errors]))


def _locate(data_dir, dataset, download, progress):
    dirs = _search_dirs(data_dir, dataset)
    paths = {}
    for key, name in FILE_NAMES.items():
        path = _find_local(name, dirs)
        if path is None:
            if not download:
                raise FileNotFoundError(_missing_message(name, dirs, dataset, None))
            try:
                path = _download(name, dataset, progress)
            except FileNotFoundError as error:
                raise FileNotFoundError(_missing_message(name, dirs, dataset, error)) from None
        paths[key] = path
    return paths


def _missing_message(name, dirs, dataset, download_error):
    lines = [f"{dataset} file {name} was not found in any of:"]
    lines += [f"  {folder}" for folder in dirs]
    if download_error is not None:
        lines.append(str(download_error))
    lines.append(
        f"Put the four IDX files ({', '.join(FILE_NAMES.values())}) in one folder and pass "
        f"data_dir=... or set {DATA_DIR_ENV}=/path/to/folder."
    )
    return "\n".join(lines)


def _read_bytes(path):
    raw = path.read_bytes()
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFileError(f"{path}: not a valid gzip file, or truncated ({error})") from None


def _header(path, data, n_dims, magic):
    header_size = 4 + 4 * n_dims
    if len(data) < header_size:
        raise DataFileError(f"{path}: {len(data)} bytes, too short for an IDX header")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        kind = "image" if magic == IMAGE_MAGIC else "label"
        raise DataFileError(
            f"{path}: IDX magic number {found}, expected {magic} for an {kind} file "
            "(wrong file, or not decompressed correctly)"
        )
    dims = [int.from_bytes(data[4 + 4 * d : 8 + 4 * d], "big") for d in range(n_dims)]
    expected = header_size + int(np.prod(dims))
    if len(data) != expected:
        raise DataFileError(
            f"{path}: header announces shape {tuple(dims)}, i.e. {expected} bytes, "
            f"but the file has {len(data)} bytes ({'truncated' if len(data) < expected else 'trailing data'})"
        )
    return dims, header_size


def read_idx_images(path):
    """Images of an IDX3 file as uint8 (N, 784), validated."""
    path = Path(path)
    data = _read_bytes(path)
    (n, rows, cols), offset = _header(path, data, 3, IMAGE_MAGIC)
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataFileError(f"{path}: images are {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(n, rows * cols)


def read_idx_labels(path):
    """Labels of an IDX1 file as uint8 (N,), validated to lie in 0..9."""
    path = Path(path)
    data = _read_bytes(path)
    (n,), offset = _header(path, data, 1, LABEL_MAGIC)
    labels = np.frombuffer(data, np.uint8, offset=offset)
    if n and labels.max() >= N_CLASSES:
        bad = int(np.flatnonzero(labels >= N_CLASSES)[0])
        raise DataFileError(f"{path}: label {labels[bad]} at index {bad} is outside 0..{N_CLASSES - 1}")
    return labels


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _decode(paths):
    arrays = {}
    for split in ("train", "test"):
        images = read_idx_images(paths[f"{split}_img"])
        labels = read_idx_labels(paths[f"{split}_label"])
        if images.shape[0] != labels.shape[0]:
            raise DataFileError(
                f"{paths[f'{split}_img']} has {images.shape[0]} images but "
                f"{paths[f'{split}_label']} has {labels.shape[0]} labels"
            )
        arrays[f"{split}_img"] = images
        arrays[f"{split}_label"] = labels
    return arrays


def _load_arrays(paths, dataset, use_cache):
    if not use_cache:
        return _decode(paths)
    key = hashlib.sha256("".join(_sha256(paths[k]) for k in FILE_NAMES).encode()).hexdigest()[:20]
    cached = cache_dir() / "decoded" / f"{dataset}-{key}.npz"
    if cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as stored:
                arrays = {k: stored[k] for k in FILE_NAMES}
            if all(arrays[f"{s}_img"].shape[0] == arrays[f"{s}_label"].shape[0] for s in ("train", "test")):
                return arrays
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: decode again and overwrite it
    arrays = _decode(paths)
    try:
        atomic_write(cached, lambda handle: np.savez(handle, **arrays))
    except OSError:
        pass  # a read-only cache folder only costs the decoding time next run
    return arrays


def _change_one_hot_label(labels):
    one_hot = np.zeros((labels.size, N_CLASSES))
    one_hot[np.arange(labels.size), labels] = 1
    return one_hot


def load_mnist(normalize=True, flatten=True, one_hot_label=False, *, data_dir=None,
               dataset="mnist", download=True, progress=True, cache=True):
    """Load MNIST (or Fashion-MNIST) exactly as the book's ``load_mnist``.

    Parameters
    ----------
    normalize : bool, default True
        Pixels as float32 in [0, 1] (divided by 255); else uint8 0..255.
    flatten : bool, default True
        Images as (N, 784); else (N, 1, 28, 28).
    one_hot_label : bool, default False
        Labels as one-hot float rows (N, 10); else uint8 class indices (N,).
    data_dir : str or path-like, optional
        Folder holding the four IDX files (``.gz`` or uncompressed), searched
        before ``$FASTNUM_DATA_DIR`` and the cache folder.
    dataset : {"mnist", "fashion-mnist"}
    download : bool, default True
        Download files that are found nowhere into the cache folder.
    progress : bool, default True
        Show a progress bar while downloading.
    cache : bool, default True
        Keep the decoded arrays as ``.npz`` in the cache folder.

    Returns
    -------
    (x_train, t_train), (x_test, t_test)

    Raises
    ------
    FileNotFoundError
        A file is found nowhere and cannot be downloaded; the message lists
        the folders searched and the environment variable to set.
    DataFileError
        A file is truncated, corrupt, or not the file it should be (a
        ``ValueError`` naming the file and the problem).
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {tuple(DATASETS)}, got {dataset!r}")
    paths = _locate(data_dir, dataset, download, progress)
    arrays = _load_arrays(paths, dataset, cache)
    result = {}
    for split in ("train", "test"):
        images = arrays[f"{split}_img"]
        if normalize:
            images = images.astype(np.float32)
            images /= 255.0
        else:
            images = images.copy()
        if not flatten:
            images = images.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
        labels = arrays[f"{split}_label"]
        labels = _change_one_hot_label(labels) if one_hot_label else labels.copy()
        result[split] = (images, labels)
    return result["train"], result["test"]
