"""``load_mnist``: drop-in for the book's ``dataset/mnist.py``.

Reads the four standard IDX files, validates them, and returns the arrays in
the book's formats. Files are looked for in, in order: the ``data_dir``
argument, the ``FASTNUM_DATA_DIR`` environment variable, the user's cache
folder. A file found nowhere is downloaded into the cache folder from the
first mirror that answers and checked against its published SHA-256; pooch
does the fetching (mirrors, checksum, a tqdm progress bar, and a download
into a temporary file that is moved into place only once verified, so no
half-written file is ever left to be read later).

Every file is identified before it is used (``fastnum.datasets``): by the
SHA-256 of its bytes or of its decompressed content it must be the published
file of the data set asked for, so MNIST files in a folder given for
Fashion-MNIST (or a test file in place of a training file) are refused with
a one-line error that says what they are.

Decoded arrays (and what each file was identified as) are cached as ``.npz``
(never a pickle) in the cache folder, keyed by the SHA-256 of the four source
files, so a changed source file is decoded and identified afresh; a damaged
cache file is decoded again and overwritten.
"""

import gzip
import hashlib
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._atomic import NPZ_READ_ERRORS, atomic_write
from ._validate import as_flag
from .datasets import (
    DATASETS,
    DISPLAY_NAMES,
    FILE_NAMES,
    N_CLASSES,
    ROLE_NAMES,
    DatasetSource,
    FileIdentity,
    identify_by_sha256,
    identify_by_statistics,
)

__all__ = ["load_mnist", "read_dataset", "DataFileError", "DatasetSource", "DATASETS", "FILE_NAMES"]

DATA_DIR_ENV = "FASTNUM_DATA_DIR"
"""Environment variable naming a folder that holds the IDX files."""
CACHE_DIR_ENV = "FASTNUM_CACHE_DIR"
"""Environment variable overriding the cache folder (downloads and decoded arrays)."""

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
IMAGE_SIDE = 28

API_HINTS = {
    "data_dir": "pass data_dir=...",
    "verify": "verify=False",
}
"""How messages name the options; the CLI passes its own (``--data-dir``, ``--no-verify-data``)."""


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


def _locate(data_dir, dataset, download, progress, hints):
    dirs = _search_dirs(data_dir, dataset)
    paths = {}
    for key, name in FILE_NAMES.items():
        path = _find_local(name, dirs)
        if path is None:
            if not download:
                raise FileNotFoundError(_missing_message(name, dirs, dataset, None, hints))
            try:
                path = _download(name, dataset, progress)
            except FileNotFoundError as error:
                raise FileNotFoundError(_missing_message(name, dirs, dataset, error, hints)) from None
        paths[key] = path
    return paths


def _missing_message(name, dirs, dataset, download_error, hints):
    lines = [f"{DISPLAY_NAMES[dataset]} file {name} was not found in any of:"]
    lines += [f"  {folder}" for folder in dirs]
    if download_error is not None:
        lines.append(str(download_error))
    lines.append(
        f"Put the four IDX files ({', '.join(FILE_NAMES.values())}) in one folder and "
        f"{hints['data_dir']}, or set {DATA_DIR_ENV}=/path/to/folder."
    )
    return "\n".join(lines)


def _decompress(path, raw):
    """The IDX content of a file's bytes (gunzipped when the name ends in .gz)."""
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
        kind = "an image" if magic == IMAGE_MAGIC else "a label"
        raise DataFileError(
            f"{path}: IDX magic number {found}, expected {magic} for {kind} file "
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


def _images(path, data):
    (n, rows, cols), offset = _header(path, data, 3, IMAGE_MAGIC)
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataFileError(f"{path}: images are {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(n, rows * cols)


def _labels(path, data):
    (n,), offset = _header(path, data, 1, LABEL_MAGIC)
    labels = np.frombuffer(data, np.uint8, offset=offset)
    if n and labels.max() >= N_CLASSES:
        bad = int(np.flatnonzero(labels >= N_CLASSES)[0])
        raise DataFileError(f"{path}: label {labels[bad]} at index {bad} is outside 0..{N_CLASSES - 1}")
    return labels


def read_idx_images(path):
    """Images of an IDX3 file as uint8 (N, 784), validated."""
    path = Path(path)
    return _images(path, _decompress(path, path.read_bytes()))


def read_idx_labels(path):
    """Labels of an IDX1 file as uint8 (N,), validated to lie in 0..9."""
    path = Path(path)
    return _labels(path, _decompress(path, path.read_bytes()))


def _decode_file(role, path, raw):
    """The array of one file from its bytes: images (N, 784) or labels (N,)."""
    data = _decompress(path, raw)
    if role.endswith("img"):
        return _images(path, data), data
    return _labels(path, data), data


def _identify(role, raw_sha, array, content):
    identity = identify_by_sha256(raw_sha, hashlib.sha256(content).hexdigest())
    if identity is None:
        identity = identify_by_statistics("label" if role.endswith("label") else "image", array)
    return identity


def _check_identities(paths, identities, dataset, verify, hints):
    """Refuse files that are not ``dataset``'s (one line, naming what the most telling one is).

    Files identified as another data set's by SHA-256 are reported first,
    then look-alikes by statistics, then files nothing identifies.
    """
    def severity(role):
        identity = identities[role]
        if identity.verified:
            return 0 if (identity.dataset, identity.role) != (dataset, role) else 3
        return 1 if identity.dataset is not None else 2

    role = min(paths, key=severity)
    identity, path = identities[role], paths[role]
    wanted = f"{DISPLAY_NAMES[dataset]}'s {ROLE_NAMES[role]}"
    if severity(role) == 3:
        return
    if identity.verified:
        raise DataFileError(
            f"{path} is {identity.describe()}, not {wanted}: point {hints['data_dir_short']} at the "
            f"{DISPLAY_NAMES[dataset]} files"
        )
    if verify:
        raise DataFileError(
            f"{path} {identity.describe()}, so it cannot be verified as {wanted}; "
            f"to use your own files anyway, {hints['verify']}"
        )


def _decode(paths, raws, shas, dataset, verify, hints):
    """Decode the four files, identify each, and check they belong together."""
    arrays, identities = {}, {}
    for role, path in paths.items():
        arrays[role], content = _decode_file(role, path, raws[role])
        identities[role] = _identify(role, shas[role], arrays[role], content)
    _check_identities(paths, identities, dataset, verify, hints)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_img"], arrays[f"{split}_label"]
        if images.shape[0] != labels.shape[0]:
            raise DataFileError(
                f"{paths[f'{split}_img']} has {images.shape[0]} images but "
                f"{paths[f'{split}_label']} has {labels.shape[0]} labels"
            )
    return arrays, identities




def _read_cache(cached):
    """The arrays and identities of a decoded-cache file, or None when it is missing or damaged."""
    if not cached.is_file():
        return None
    try:
        with np.load(cached, allow_pickle=False) as stored:
            arrays = {k: np.array(stored[k]) for k in FILE_NAMES}
            identities = {k: FileIdentity(**v) for k, v in json.loads(str(stored["identities"])).items()}
    except NPZ_READ_ERRORS:
        return None  # truncated or damaged: decoded again and overwritten
    sizes_agree = all(arrays[f"{s}_img"].shape[0] == arrays[f"{s}_label"].shape[0] for s in ("train", "test"))
    shapes_ok = all(arrays[k].ndim == (2 if k.endswith("img") else 1) for k in FILE_NAMES)
    if not (sizes_agree and shapes_ok and set(identities) == set(FILE_NAMES)):
        return None
    return arrays, identities


def _load_arrays(paths, dataset, use_cache, verify, hints):
    raws = {role: path.read_bytes() for role, path in paths.items()}
    shas = {role: hashlib.sha256(raw).hexdigest() for role, raw in raws.items()}
    if not use_cache:
        return _decode(paths, raws, shas, dataset, verify, hints)
    # keyed by the bytes of the four files: a changed file is decoded (and identified) afresh
    key = hashlib.sha256("".join(shas[k] for k in FILE_NAMES).encode()).hexdigest()[:20]
    cached = cache_dir() / "decoded" / f"{key}.npz"
    found = _read_cache(cached)
    if found is not None:
        arrays, identities = found
        _check_identities(paths, identities, dataset, verify, hints)
        return arrays, identities
    arrays, identities = _decode(paths, raws, shas, dataset, verify, hints)
    stored = {k: vars(v) for k, v in identities.items()}
    try:
        atomic_write(cached, lambda handle: np.savez(handle, identities=np.array(json.dumps(stored)), **arrays))
    except OSError:
        pass  # a read-only cache folder only costs the decoding time next run
    return arrays, identities


def _change_one_hot_label(labels):
    one_hot = np.zeros((labels.size, N_CLASSES))
    one_hot[np.arange(labels.size), labels] = 1
    return one_hot


@dataclass(frozen=True)
class Dataset:
    """A data set as read from disk, before the book's formatting."""

    arrays: dict
    """``train_img``, ``test_img`` uint8 (N, 784); ``train_label``, ``test_label`` uint8 (N,)."""
    paths: dict
    """Role -> the file each array was read from."""
    verified: bool
    """Whether every file's SHA-256 identified it as the data set asked for."""

    @property
    def folders(self):
        """The folders the files really came from, in role order, each once."""
        return list(dict.fromkeys(str(p.parent) for p in self.paths.values()))


def read_dataset(data_dir=None, dataset="mnist", *, download=True, progress=True, cache=True, verify=True,
                 hints=None):
    """Find, identify and decode the four files of ``dataset``.

    The loading half of ``load_mnist`` (see there for the arguments), for
    callers that also want to know where the files came from. ``hints``
    names the options in error messages (``API_HINTS`` by default).

    Returns
    -------
    Dataset
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {tuple(DATASETS)}, got {dataset!r}")
    hints = dict(API_HINTS if hints is None else hints)
    hints.setdefault("data_dir_short", hints["data_dir"].replace("pass ", "").replace("=...", ""))
    paths = _locate(data_dir, dataset, download, progress, hints)
    arrays, identities = _load_arrays(paths, dataset, cache, verify, hints)
    return Dataset(arrays, paths, all(identity.verified for identity in identities.values()))


def format_split(images, labels, normalize=True, flatten=True, one_hot_label=False):
    """One split in the book's formats (copies; the decoded arrays stay untouched)."""
    if normalize:
        images = images.astype(np.float32)
        images /= 255.0
    else:
        images = images.copy()
    if not flatten:
        images = images.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
    labels = _change_one_hot_label(labels) if one_hot_label else labels.copy()
    return images, labels


def load_mnist(normalize=True, flatten=True, one_hot_label=False, *, data_dir=None,
               dataset="mnist", download=True, progress=True, cache=True, verify=True):
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
    verify : bool, default True
        Every file must be identified, by the SHA-256 of its bytes or of its
        decompressed content, as the published file of ``dataset``. With
        ``verify=False`` files that match no published copy (your own data)
        are accepted too; a file identified as another data set's is refused
        either way.

    Returns
    -------
    (x_train, t_train), (x_test, t_test)

    Raises
    ------
    TypeError
        A yes/no option that is not True or False (``normalize="False"``).
    FileNotFoundError
        A file is found nowhere and cannot be downloaded; the message lists
        the folders searched and the environment variable to set.
    DataFileError
        A file is truncated, corrupt, or not the file it should be (a
        ``ValueError`` naming the file and the problem, and the data set it
        is when it is another one).
    """
    flags = {"normalize": normalize, "flatten": flatten, "one_hot_label": one_hot_label, "download": download,
             "progress": progress, "cache": cache, "verify": verify}
    for name, value in flags.items():  # before any work: normalize="False" is a true string, not False
        as_flag(value, name)
    data = read_dataset(data_dir, dataset, download=download, progress=progress, cache=cache, verify=verify)
    train = format_split(data.arrays["train_img"], data.arrays["train_label"], normalize, flatten, one_hot_label)
    test = format_split(data.arrays["test_img"], data.arrays["test_label"], normalize, flatten, one_hot_label)
    return train, test
