"""load_mnist on small IDX files written here: formats, search order, validation, cache, download."""

import gzip
import hashlib
import http.server
import os
import threading
from functools import partial

import numpy as np
import pytest

from fastnum import load_mnist, mnist
from fastnum.mnist import FILE_NAMES, DataFileError
from tests.idx_files import idx_images_bytes, idx_labels_bytes, write_dataset


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own cache folder and no FASTNUM_DATA_DIR."""
    monkeypatch.setenv(mnist.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(mnist.DATA_DIR_ENV, raising=False)


@pytest.fixture
def dataset(tmp_path, rng):
    folder = tmp_path / "data"
    arrays = write_dataset(folder, rng)
    return folder, arrays


def test_default_format_is_the_books(dataset):
    folder, ((train_x, train_t), (test_x, test_t)) = dataset
    (x, t), (xt, tt) = load_mnist(data_dir=folder, verify=False)
    assert x.shape == (300, 784) and x.dtype == np.float32
    assert xt.shape == (100, 784)
    np.testing.assert_array_equal(x, train_x.reshape(300, 784).astype(np.float32) / 255.0)
    assert t.dtype == np.uint8 and t.shape == (300,)
    np.testing.assert_array_equal(t, train_t)
    np.testing.assert_array_equal(tt, test_t)


def test_other_formats(dataset):
    folder, ((train_x, train_t), _) = dataset
    (x, t), _ = load_mnist(normalize=False, flatten=False, one_hot_label=True, data_dir=folder, verify=False)
    assert x.dtype == np.uint8 and x.shape == (300, 1, 28, 28)
    np.testing.assert_array_equal(x[:, 0], train_x)
    assert t.shape == (300, 10) and t.dtype == np.float64
    np.testing.assert_array_equal(t.argmax(axis=1), train_t)
    np.testing.assert_array_equal(t.sum(axis=1), 1.0)


def test_uncompressed_files_and_environment_variable(tmp_path, rng, monkeypatch):
    folder = tmp_path / "plain"
    (_, train_t), _ = write_dataset(folder, rng, compress=False)
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(folder))
    (_, t), _ = load_mnist(download=False, verify=False)
    np.testing.assert_array_equal(t, train_t)


def test_data_dir_argument_comes_before_the_environment(tmp_path, rng, monkeypatch):
    first = tmp_path / "first"
    second = tmp_path / "second"
    (_, t_first), _ = write_dataset(first, rng)
    write_dataset(second, rng)
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(second))
    (_, t), _ = load_mnist(data_dir=first, download=False, verify=False)
    np.testing.assert_array_equal(t, t_first)


def test_missing_files_without_download_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(data_dir=tmp_path / "nowhere", download=False, verify=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert "FASTNUM_DATA_DIR" in message
    assert str(tmp_path / "nowhere") in message


def _corrupt(folder, name, data):
    (folder / name).write_bytes(data)


@pytest.mark.parametrize(
    "name, make_bytes, pattern",
    [
        ("train-images-idx3-ubyte.gz", lambda good: good[: len(good) // 2], "not a valid gzip file, or truncated"),
        ("train-images-idx3-ubyte.gz", lambda good: b"this is not gzip", "not a valid gzip"),
        ("train-images-idx3-ubyte.gz", lambda good: gzip.compress(gzip.decompress(good)[:-100]), "truncated"),
        ("train-images-idx3-ubyte.gz", lambda good: gzip.compress(gzip.decompress(good) + b"xx"), "trailing data"),
        ("train-labels-idx1-ubyte.gz", lambda good: gzip.compress(idx_images_bytes(np.zeros((3, 28, 28)))),
         "magic number 2051, expected 2049 for a label file"),
        ("t10k-images-idx3-ubyte.gz", lambda good: gzip.compress(idx_images_bytes(np.zeros((100, 20, 20)))),
         "20x20, expected 28x28"),
        ("t10k-labels-idx1-ubyte.gz", lambda good: gzip.compress(idx_labels_bytes(np.full(100, 12))),
         "label 12 at index 0 is outside 0..9"),
        ("t10k-labels-idx1-ubyte.gz", lambda good: gzip.compress(idx_labels_bytes(np.zeros(99))),
         "100 images but .* 99 labels"),
        ("t10k-labels-idx1-ubyte.gz", lambda good: gzip.compress(b"\x00\x00"), "too short"),
    ],
)
def test_corrupt_files_name_the_file_and_the_problem(dataset, name, make_bytes, pattern):
    folder, _ = dataset
    good = (folder / name).read_bytes()
    _corrupt(folder, name, make_bytes(good))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(DataFileError, match=pattern) as info:
        load_mnist(data_dir=folder, download=False, verify=False)
    assert name in str(info.value) or "labels" in pattern
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # the user's files are untouched


def test_decoded_cache_is_npz_and_follows_source_changes(tmp_path, rng):
    folder = tmp_path / "data"
    write_dataset(folder, rng)
    (_, t1), _ = load_mnist(data_dir=folder, verify=False)
    cached = list((tmp_path / "cache" / "decoded").glob("*.npz"))
    assert len(cached) == 1
    np.load(cached[0], allow_pickle=False)  # plain arrays, no pickle
    (_, t_again), _ = load_mnist(data_dir=folder, verify=False)
    np.testing.assert_array_equal(t_again, t1)
    (_, t_new), _ = write_dataset(folder, rng)  # the source files change
    (_, t2), _ = load_mnist(data_dir=folder, verify=False)
    np.testing.assert_array_equal(t2, t_new)
    assert len(list((tmp_path / "cache" / "decoded").glob("*.npz"))) == 2


def test_a_damaged_decoded_cache_is_rebuilt(tmp_path, rng):
    folder = tmp_path / "data"
    (_, train_t), _ = write_dataset(folder, rng)
    load_mnist(data_dir=folder, verify=False)
    (cached,) = (tmp_path / "cache" / "decoded").glob("*.npz")
    cached.write_bytes(b"garbage")
    (_, t), _ = load_mnist(data_dir=folder, verify=False)
    np.testing.assert_array_equal(t, train_t)


@pytest.mark.parametrize("flag", ["normalize", "flatten", "one_hot_label", "download", "progress", "cache", "verify"])
def test_yes_no_options_must_be_true_or_false_before_any_work(flag, tmp_path, dataset):
    """``normalize="False"`` is a true string: refused, naming the option, before a file is looked for
    (the folder here does not exist); numpy's bools and 0/1 are taken as the bools they are."""
    for bad in ("False", None, 2, 0.5):
        with pytest.raises(TypeError, match=f"{flag} must be True or False, got {bad!r}"):
            load_mnist(data_dir=tmp_path / "nowhere", **{flag: bad})
    if flag not in ("normalize", "flatten", "one_hot_label"):
        return  # the others change where the data come from and how, not what they are
    folder, _ = dataset
    value = flag == "one_hot_label"  # each one's non-default: normalize and flatten False, one_hot_label True
    expected = load_mnist(data_dir=folder, verify=False, **{flag: value})
    for same in (np.bool_(value), int(value)):
        got = load_mnist(data_dir=folder, verify=False, **{flag: same})
        for ours, theirs in zip(got, expected):
            np.testing.assert_array_equal(ours[0], theirs[0])
            np.testing.assert_array_equal(ours[1], theirs[1])


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset"):
        load_mnist(dataset="cifar")


# -- downloads, from a server on loopback serving files written here ----------

@pytest.fixture
def mirror(tmp_path, rng, monkeypatch):
    """A local HTTP mirror with small IDX files; the registry points at it."""
    served = tmp_path / "served"
    arrays = write_dataset(served, rng)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    sums = {name: hashlib.sha256((served / name).read_bytes()).hexdigest() for name in FILE_NAMES.values()}
    source = mnist.DatasetSource(mirrors=(url + "missing/", url), sha256=sums)
    monkeypatch.setitem(mnist.DATASETS, "mnist", source)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield served, arrays, source
    server.shutdown()


def test_download_falls_back_to_the_next_mirror_and_checks_sums(tmp_path, mirror):
    served, ((_, train_t), _), _ = mirror
    (_, t), _ = load_mnist(progress=False, verify=False)
    np.testing.assert_array_equal(t, train_t)
    downloaded = sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir())
    assert downloaded == sorted(FILE_NAMES.values())


def test_a_checksum_mismatch_leaves_no_file_behind(tmp_path, mirror, monkeypatch):
    served, _, source = mirror
    wrong = dict(source.sha256, **{"train-labels-idx1-ubyte.gz": "0" * 64})
    monkeypatch.setitem(mnist.DATASETS, "mnist", mnist.DatasetSource(mirrors=source.mirrors, sha256=wrong))
    with pytest.raises(FileNotFoundError, match="could not download train-labels-idx1-ubyte.gz") as info:
        load_mnist(progress=False, verify=False)
    assert "FASTNUM_DATA_DIR" in str(info.value)
    cache = tmp_path / "cache" / "mnist"
    assert not (cache / "train-labels-idx1-ubyte.gz").exists()
    leftovers = [p.name for p in cache.iterdir() if p.name not in FILE_NAMES.values()]
    assert leftovers == []


def test_no_network_and_no_files_says_where_to_put_them(monkeypatch):
    dead = mnist.DatasetSource(mirrors=("http://127.0.0.1:9/",), sha256=mnist.DATASETS["mnist"].sha256)
    monkeypatch.setitem(mnist.DATASETS, "mnist", dead)
    with pytest.raises(FileNotFoundError, match="FASTNUM_DATA_DIR"):
        load_mnist(progress=False, verify=False)


def test_fashion_mnist_uses_the_same_reader(tmp_path, rng):
    folder = tmp_path / "fashion"
    (_, train_t), _ = write_dataset(folder, rng)
    (_, t), _ = load_mnist(data_dir=folder, dataset="fashion-mnist", download=False, verify=False)
    np.testing.assert_array_equal(t, train_t)
    assert len(os.listdir(tmp_path / "cache" / "decoded")) == 1


# -- which data set a file is ---------------------------------------------------------


def _register_as_mnist(monkeypatch, folder, by="gz"):
    """Make the small files of ``folder`` count as MNIST's published ones (by .gz bytes or by content)."""
    from fastnum import datasets

    if by == "gz":
        sums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.gz")}
        monkeypatch.setitem(mnist.DATASETS, "mnist", mnist.DatasetSource(mirrors=(), sha256=sums))
    else:
        content = {role: (hashlib.sha256(gzip.decompress((folder / name).read_bytes())).hexdigest(),)
                   for role, name in FILE_NAMES.items()}
        monkeypatch.setitem(datasets._OTHER_KNOWN_SHA256, "mnist", content)


@pytest.mark.parametrize("by", ["gz", "content"])
def test_files_of_another_data_set_are_refused_naming_it(dataset, monkeypatch, by):
    folder, ((_, train_t), _) = dataset
    _register_as_mnist(monkeypatch, folder, by)
    if by == "content":  # another gzip wrapper around the same content: still MNIST
        for name in FILE_NAMES.values():
            (folder / name).write_bytes(gzip.compress(gzip.decompress((folder / name).read_bytes()), mtime=1))
    (_, t), _ = load_mnist(data_dir=folder)  # verified as MNIST
    np.testing.assert_array_equal(t, train_t)
    for verify in (True, False):
        with pytest.raises(DataFileError) as info:
            load_mnist(data_dir=folder, dataset="fashion-mnist", verify=verify)
        message = str(info.value)
        assert "\n" not in message
        assert "is MNIST's training images, not Fashion-MNIST's training images" in message


def test_a_test_file_in_place_of_a_training_file_is_refused(dataset, monkeypatch):
    folder, _ = dataset
    _register_as_mnist(monkeypatch, folder)
    train, test = folder / FILE_NAMES["train_label"], folder / FILE_NAMES["test_label"]
    train_bytes = train.read_bytes()
    train.write_bytes(test.read_bytes())
    test.write_bytes(train_bytes)
    with pytest.raises(DataFileError, match="is MNIST's test labels, not MNIST's training labels"):
        load_mnist(data_dir=folder)


def test_unverified_files_need_verify_false_and_statistics_name_a_look_alike(dataset, rng):
    folder, _ = dataset
    with pytest.raises(DataFileError, match="matches no published MNIST or Fashion-MNIST file.*verify=False"):
        load_mnist(data_dir=folder)
    # a label file with Fashion-MNIST's class counts (6,000 of each) looks like Fashion-MNIST's
    labels = np.repeat(np.arange(10), 6000)
    rng.shuffle(labels)
    (folder / FILE_NAMES["train_label"]).write_bytes(gzip.compress(idx_labels_bytes(labels)))
    with pytest.raises(DataFileError, match="looks like Fashion-MNIST's training labels"):
        load_mnist(data_dir=folder)


def test_truncated_decoded_cache_is_decoded_again(tmp_path, rng):
    folder = tmp_path / "data"
    (_, train_t), _ = write_dataset(folder, rng)
    load_mnist(data_dir=folder, verify=False)
    (cached,) = (tmp_path / "cache" / "decoded").glob("*.npz")
    whole = cached.read_bytes()
    cached.write_bytes(whole[: len(whole) - 500])
    (_, t), _ = load_mnist(data_dir=folder, verify=False)
    np.testing.assert_array_equal(t, train_t)
    assert cached.read_bytes() == whole
