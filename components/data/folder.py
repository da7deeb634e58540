"""`data.dataset: folder`: the user's own images, from `data.source_dir`.

Layouts (the first that matches):
  source_dir/train/, val/, test/   the splits as given, each with class subfolders (or flat: one class);
  source_dir/<class>/...           class subfolders give the labels (sorted names); split by data.seed;
  source_dir/*.png                 a flat folder: one class, "images"; split by data.seed.
Every PNG, JPEG, BMP, GIF, TIFF or WebP file is read with Pillow, grey or colour (all files alike), and resized
so its shorter side is data.resolution, then center-cropped (ImageOps.fit, bicubic). Without split folders each
class is split 80 / 10 / 10 % into train / val / test with data.seed (at least one image each), so every class
needs at least 3 images. Bad input is named in one line: an unreadable or truncated file, a folder with no images,
mixed grey and colour files, a class with too few images, files beside class folders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.data.shards import DataError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
SPLITS = ("train", "val", "test")
VAL_FRACTION = TEST_FRACTION = 0.1


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def _classes(folder: Path) -> dict[str, list[Path]]:
    """{class name: image files} of a folder with class subfolders, or {"images": files} of a flat one."""
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = _images(folder)
    if subdirs and loose:
        raise DataError(f"{folder}: {len(loose)} image file(s) (e.g. {loose[0].name}) beside class folders "
                        f"({', '.join(p.name for p in subdirs[:3])}); move them into a class folder")
    if not subdirs:
        if not loose:
            raise DataError(f"{folder}: no images ({', '.join(sorted(EXTENSIONS))}); point data.source_dir at your images")
        return {"images": loose}
    found = {d.name: _images(d) for d in subdirs}
    empty = [c for c, files in found.items() if not files]
    if empty:
        raise DataError(f"{folder / empty[0]}: a class folder with no images; remove it or add its images")
    return found


def _read(path: Path, resolution: int):
    """(uint8 (C, R, R) image, is grey) of one file; DataError naming it when Pillow cannot decode it."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, not later
            grey = img.mode in GREY_MODES
            img = img.convert("L" if grey else "RGB")
            img = ImageOps.fit(img, (resolution, resolution), Image.BICUBIC)  # shorter side -> R, center crop
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # UnidentifiedImageError is an OSError
        raise DataError(f"{path}: not a readable image ({type(err).__name__}: {err}); fix or remove the file") from None
    array = np.asarray(img, dtype=np.uint8)
    return (array[None] if grey else array.transpose(2, 0, 1)), grey  # (R, R) -> (1, R, R); (R, R, 3) -> (3, R, R)


def _load(files: dict[str, list[Path]], classes: list[str], resolution: int, kinds: dict[bool, Path]):
    images, labels = [], []
    for label, name in enumerate(classes):
        for f in files.get(name, []):
            x, grey = _read(f, resolution)
            kinds.setdefault(grey, f)
            if len(kinds) > 1:
                raise DataError(f"{kinds[True]} is grey but {kinds[False]} is colour: mixed channel counts in "
                                f"data.source_dir; convert the images to one kind")
            images.append(x)
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def load_folder(source_dir: Path, resolution: int, seed: int) -> tuple[dict, list[str], str]:
    """(splits {split: (images, labels, {})}, class names, a line naming the source) of an image folder."""
    if not source_dir.is_dir():
        raise DataError(f"data.source_dir={source_dir}: no such directory (data.dataset: folder reads images from it)")
    kinds: dict[bool, Path] = {}
    if all((source_dir / s).is_dir() for s in SPLITS):
        per_split = {s: _classes(source_dir / s) for s in SPLITS}
        classes = sorted(per_split["train"])
        for s in ("val", "test"):
            unknown = sorted(set(per_split[s]) - set(classes))
            if unknown:
                raise DataError(f"{source_dir / s / unknown[0]}: class {unknown[0]!r} is not in train/ "
                                f"({', '.join(classes)}); every class needs training images")
        splits = {s: (*_load(per_split[s], classes, resolution, kinds), {}) for s in SPLITS}
        return splits, classes, f"image folder {source_dir} (train/, val/, test/ as given)"
    files = _classes(source_dir)
    classes = sorted(files)
    small = [(c, len(f)) for c, f in files.items() if len(f) < 3]
    if small:
        raise DataError(f"{source_dir / small[0][0] if len(classes) > 1 else source_dir}: class {small[0][0]!r} has "
                        f"{small[0][1]} image(s); each class needs at least 3 (one each for train, val and test)")
    images, labels = _load(files, classes, resolution, kinds)
    rng = np.random.default_rng(seed)
    idx: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for k in range(len(classes)):  # stratified: each class split 80 / 10 / 10
        rows = rng.permutation(np.flatnonzero(labels == k))
        n_val = max(1, round(VAL_FRACTION * len(rows)))
        n_test = max(1, round(TEST_FRACTION * len(rows)))
        idx["val"].append(rows[:n_val])
        idx["test"].append(rows[n_val : n_val + n_test])
        idx["train"].append(rows[n_val + n_test :])
    splits = {s: (images[np.sort(np.concatenate(i))], labels[np.sort(np.concatenate(i))], {}) for s, i in idx.items()}
    return splits, classes, f"image folder {source_dir} ({len(classes)} class(es), split 80/10/10 by seed {seed})"
