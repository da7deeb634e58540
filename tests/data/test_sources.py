"""Dataset sources, including the real MNIST test split kept in tests/data/mnist-t10k."""

import hashlib
import shutil

import numpy as np
import pytest

from components.config import load_config
from components.data import load_spec, read_split
from components.data.sources import load_mnist_split, load_source, prepare
from components.errors import DataError
from tests.conftest import MNIST_T10K, write_params

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # LeCun et al., the t10k split


def test_bundled_mnist_files_are_the_originals():
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in MNIST_T10K.glob("*.gz")}
    assert md5["t10k-images-idx3-ubyte.gz"] == "9fb629c4189551a2d022fa330f9573f3"
    assert md5["t10k-labels-idx1-ubyte.gz"] == "ec29112dd5afa0611ce80d1b7f02629c"


def test_real_mnist_test_split_reads_with_the_known_label_counts():
    images, labels = load_mnist_split(MNIST_T10K, "test")
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == MNIST_TEST_COUNTS
    assert 30 < images.mean() < 40, "MNIST's mean pixel is about 33"


def test_missing_train_split_names_the_file_and_the_fix(tmp_path):
    params = load_config(write_params(tmp_path, {"data": {"dataset": "mnist", "source_dir": str(MNIST_T10K)}}))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\(.gz\) not found; stage .* or set data.dataset: dsprites"):
        load_source(params.data, params.root)


def test_missing_source_dir_and_offline_download_give_one_clear_line(tmp_path):
    params = load_config(write_params(tmp_path, {"data": {"dataset": "mnist", "source_dir": str(tmp_path / "nope")}}))
    with pytest.raises(DataError, match="no such directory"):
        load_source(params.data, params.root)
    params = load_config(write_params(tmp_path, {"data": {"dataset": "fashion_mnist"}}))
    with pytest.raises(DataError, match=r"download failed .*set data.source_dir .* or set data.dataset: dsprites") as err:
        load_source(params.data, params.root)  # this machine is offline: torchvision's download fails
    assert "\n" not in str(err.value)


def test_prepare_mnist_from_staged_real_files(tmp_path):
    """The full MNIST path on real images: the t10k files staged as both splits (the train split is not here)."""
    staged = tmp_path / "staged"
    staged.mkdir()
    for split in ("train", "t10k"):
        shutil.copy(MNIST_T10K / "t10k-images-idx3-ubyte.gz", staged / f"{split}-images-idx3-ubyte.gz")
        shutil.copy(MNIST_T10K / "t10k-labels-idx1-ubyte.gz", staged / f"{split}-labels-idx1-ubyte.gz")
    params = load_config(write_params(tmp_path, {"data": {"dataset": "mnist", "source_dir": str(staged),
                                                          "n_val": 500, "max_train": 2000}}))
    spec = prepare(params)
    assert spec.counts == {"train": 2000, "val": 500, "test": 10000}
    assert spec.resolution == 32 and spec.channels == 1 and spec.binary is False
    assert spec.classes == [str(d) for d in range(10)]
    x, y = read_split(params.path("datasets/prepared"), load_spec(params.path("datasets/prepared")), "test")
    original, labels = load_mnist_split(MNIST_T10K, "test")
    assert np.array_equal(x[:, :, 2:30, 2:30], original) and x[:, :, :2].max() == 0, "28 -> 32 by zero padding"
    assert np.array_equal(y, labels)


def test_binarize_makes_data_binary(tmp_path):
    staged = tmp_path / "staged"
    staged.mkdir()
    for split in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            shutil.copy(MNIST_T10K / f"t10k-{kind}-ubyte.gz", staged / f"{split}-{kind}-ubyte.gz")
    params = load_config(write_params(tmp_path, {"data": {"dataset": "mnist", "source_dir": str(staged),
                                                          "binarize": True, "max_train": 500, "n_val": 100}}))
    assert prepare(params).binary is True


def test_dsprites_splits_are_disjoint_draws(tmp_path):
    params = load_config(write_params(tmp_path))
    splits, classes, source = load_source(params.data, params.root)
    assert classes == ["square", "ellipse", "heart"] and "procedural" in source
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 512, "val": 128, "test": 256}
    assert set(splits["train"][2]) == {"shape", "scale", "orientation", "pos_x", "pos_y"}


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_mnist_gz_is_one_line_naming_the_file(tmp_path, damage):
    staged = tmp_path / "staged"
    staged.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(MNIST_T10K / name, staged / name)
    target = staged / "t10k-images-idx3-ubyte.gz"
    data = bytearray(target.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x40  # one bit in the deflate stream
    target.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: (unreadable|truncated)") as err:
        load_mnist_split(staged, "test")
    assert "\n" not in str(err.value)


def test_mnist_label_outside_the_ten_digits_is_refused(tmp_path):
    import gzip

    staged = tmp_path / "staged"
    staged.mkdir()
    shutil.copy(MNIST_T10K / "t10k-images-idx3-ubyte.gz", staged)
    labels = bytearray(gzip.decompress((MNIST_T10K / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[8 + 41] = 12  # header is 8 bytes; row 41 gets label 12
    (staged / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: label 12 at row 41 is outside 0..9"):
        load_mnist_split(staged, "test")


def test_the_suite_reads_nothing_outside_the_repository():
    """A fresh clone has no neighbouring folders: the real data the tests read lives under tests/."""
    from tests.conftest import REPO

    assert MNIST_T10K.is_relative_to(REPO) and len(list(MNIST_T10K.glob("*.gz"))) == 2
    for f in (REPO / "tests").rglob("*.py"):
        if f.name == "test_sources.py":  # this test names what it looks for
            continue
        text = f.read_text()
        assert "REPO.parent" not in text and "../shared" not in text, f"{f} reads outside the repository"
