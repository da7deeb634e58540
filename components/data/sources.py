"""Dataset sources: the procedural dSprites default, torchvision's MNIST, Fashion-MNIST and CIFAR-10, and the
user's own image folder (components/data/folder.py).

Each source returns {split: (uint8 images (N, C, R, R), int64 labels (N,), factors)} for train, val and
test at the configured resolution. Torchvision sets read a pre-staged copy from `data.source_dir`
(air-gapped machines) or download into `datasets/raw/<name>`; when neither works, one error says how
to stage the files or to use dsprites.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from components.config import DataConfig
from components.data import dsprites
from components.data.shards import DataError, DatasetSpec, write_dataset

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASSES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
STAGING_HELP = {
    "mnist": "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz",
    "fashion_mnist": "the same four idx files as MNIST, from Fashion-MNIST",
    "cifar10": "the extracted cifar-10-batches-py/ folder",
}
Splits = dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]


def load_dsprites(cfg: DataConfig) -> tuple[Splits, list[str], str]:
    """Disjoint train/val/test draws from the dSprites factor grid, labels = shape, all factors kept."""
    images, labels, factors = dsprites.generate(cfg.n_train + cfg.n_val + cfg.n_test, cfg.resolution, cfg.seed,
                                                cfg.orientation_steps)
    bounds = {"train": (0, cfg.n_train), "val": (cfg.n_train, cfg.n_train + cfg.n_val),
              "test": (cfg.n_train + cfg.n_val, cfg.n_train + cfg.n_val + cfg.n_test)}
    splits = {s: (images[a:b], labels[a:b], {k: v[a:b] for k, v in factors.items()}) for s, (a, b) in bounds.items()}
    turn = "" if cfg.orientation_steps == dsprites.FACTOR_SIZES["orientation"] else f", {cfg.orientation_steps} orientations"
    return splits, list(dsprites.SHAPES), f"procedural dSprites, seed {cfg.seed}{turn}"


def _find(root: Path, stem: str) -> Path | None:
    for cand in (root / stem, root / f"{stem}.gz", root / "raw" / stem, root / "raw" / f"{stem}.gz"):
        if cand.is_file():
            return cand
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST format, optionally gzipped) into a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError; truncation is an EOFError
        raise DataError(f"{path}: unreadable ({type(err).__name__}: {err}); re-stage the file") from None
    if len(data) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(data)} bytes, no header)")
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned byte payload
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes)")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    payload = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if payload.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file ({payload.size} bytes of {int(np.prod(dims))})")
    return payload.reshape(dims)


def load_mnist_split(root: Path, split: str, dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """One MNIST-format split from a staged folder: (uint8 (N, 1, 28, 28), int64 (N,))."""
    images_stem, labels_stem = MNIST_FILES[split]
    found = [_find(root, images_stem), _find(root, labels_stem)]
    if None in found:
        missing = images_stem if found[0] is None else labels_stem
        raise DataError(
            f"data.source_dir={root}: {missing}(.gz) not found; stage {STAGING_HELP[dataset]} there "
            f"(see datasets/README.md) or set data.dataset: dsprites"
        )
    images, labels = read_idx(found[0]), read_idx(found[1]).astype(np.int64)
    if len(images) != len(labels):
        raise DataError(f"{found[0]}: {len(images)} images but {len(labels)} labels in {found[1]}")
    if images.ndim != 3:
        raise DataError(f"{found[0]}: expected images of shape (N, H, W), got {images.shape}")
    k = len(CLASSES[dataset])
    bad = np.flatnonzero((labels < 0) | (labels >= k))
    if bad.size:
        raise DataError(f"{found[1]}: label {labels[bad[0]]} at row {bad[0]} is outside 0..{k - 1} ({dataset} has {k} classes)")
    return images[:, None], labels  # (N, 28, 28) -> (N, 1, 28, 28)


def _download_torchvision(name: str, raw_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import torchvision.datasets as tvd

    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    out = {}
    for split in ("train", "test"):
        ds = cls(str(raw_dir), train=split == "train", download=True)
        data = np.asarray(ds.data)
        data = data.transpose(0, 3, 1, 2) if data.ndim == 4 else data[:, None]  # -> (N, C, H, W)
        out[split] = (np.ascontiguousarray(data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64))
    return out


def _load_cifar_staged(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import torchvision.datasets as tvd

    base = root.parent if root.name == "cifar-10-batches-py" else root
    if not (base / "cifar-10-batches-py").is_dir():
        raise DataError(f"data.source_dir={root}: cifar-10-batches-py/ not found; stage {STAGING_HELP['cifar10']} "
                        "there or set data.dataset: dsprites")
    out = {}
    for split in ("train", "test"):
        ds = tvd.CIFAR10(str(base), train=split == "train", download=False)
        out[split] = (np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)), np.asarray(ds.targets, dtype=np.int64))
    return out


def _resize(images: np.ndarray, resolution: int) -> np.ndarray:
    """28 -> 32 by zero padding (LeNet's convention); other sizes by bilinear resampling."""
    size = images.shape[-1]
    if size == resolution:
        return images
    if size == 28 and resolution == 32:
        return np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    x = torch.from_numpy(images).float()
    x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


def load_torchvision(cfg: DataConfig, root: Path) -> tuple[Splits, list[str], str]:
    name = cfg.dataset
    if cfg.source_dir is not None:
        src = root / cfg.source_dir if not Path(cfg.source_dir).is_absolute() else Path(cfg.source_dir)
        if not src.is_dir():
            raise DataError(f"data.source_dir={src}: no such directory; stage {STAGING_HELP[name]} there")
        if name == "cifar10":
            raw = _load_cifar_staged(src)
        else:
            raw = {s: load_mnist_split(src, s, name) for s in ("train", "test")}
        source = f"torchvision {name}, staged in {src}"
    else:
        raw_dir = root / "datasets" / "raw" / name
        try:
            raw = _download_torchvision(name, raw_dir)
        except Exception as err:  # torchvision raises RuntimeError/URLError/OSError variously when offline
            raise DataError(
                f"data.dataset={name}: download failed ({type(err).__name__}); offline? stage "
                f"{STAGING_HELP[name]} in a folder and set data.source_dir to it, or set data.dataset: dsprites"
            ) from None
        source = f"torchvision {name}, downloaded to {raw_dir}"
    train_x, train_y = raw["train"]
    rng = np.random.default_rng(cfg.seed)
    perm = rng.permutation(len(train_y))
    n_val = min(cfg.n_val, len(perm) // 10)
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    if cfg.max_train is not None:
        train_idx = train_idx[: cfg.max_train]
    test_x, test_y = raw["test"]
    splits = {
        "train": (_resize(train_x[train_idx], cfg.resolution), train_y[train_idx], {}),
        "val": (_resize(train_x[val_idx], cfg.resolution), train_y[val_idx], {}),
        "test": (_resize(test_x, cfg.resolution), test_y, {}),
    }
    return splits, CLASSES[name], source


def load_source(cfg: DataConfig, root: Path) -> tuple[Splits, list[str], str]:
    """Dispatch on data.dataset; returns (splits, class names, a line describing the source)."""
    if cfg.dataset == "dsprites":
        splits, classes, source = load_dsprites(cfg)
    elif cfg.dataset == "folder":
        from components.data.folder import load_folder

        src = Path(cfg.source_dir) if Path(cfg.source_dir).is_absolute() else root / cfg.source_dir
        splits, classes, source = load_folder(src, cfg.resolution, cfg.seed)
    else:
        splits, classes, source = load_torchvision(cfg, root)
    if cfg.binarize:
        splits = {s: (np.where(x >= 128, 255, 0).astype(np.uint8), y, f) for s, (x, y, f) in splits.items()}
    return splits, classes, source


def prepare(params) -> DatasetSpec:
    """Build the dataset params.data describes and write it to params.data.out_dir (atomically)."""
    cfg = params.data
    splits, classes, source = load_source(cfg, params.root)
    return write_dataset(params.path(cfg.out_dir), name=cfg.dataset, splits=splits, classes=classes,
                         source=source, shard_rows=cfg.shard_rows)
