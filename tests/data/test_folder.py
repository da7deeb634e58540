"""data.dataset: folder: the user's own images (generated PNGs and JPEGs here), through prepare and featurize."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from components.config import load_config
from components.data import load_spec, read_split
from components.data.sources import prepare
from components.errors import ConfigError, DataError
from tests.conftest import REPO, write_params


def draw(path, shape: str, rng, size=(48, 40), mode="RGB", fmt=None):
    """A white disc or square on black, at a random place and size, in a non-square image (tests the crop)."""
    img = Image.new(mode, size, 0)
    r = int(rng.integers(6, 12))
    cx, cy = int(rng.integers(r + 6, size[0] - r - 6)), int(rng.integers(r, size[1] - r))
    box = (cx - r, cy - r, cx + r, cy + r)
    fill = (255, 255, 255) if mode == "RGB" else 255
    (ImageDraw.Draw(img).ellipse if shape == "disc" else ImageDraw.Draw(img).rectangle)(box, fill=fill)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def make_classes(root, n=20, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    for shape in ("disc", "square"):
        for i in range(n):
            ext = "png" if i % 2 else "jpg"  # both formats
            draw(root / shape / f"{i}.{ext}", shape, rng, mode=mode)
    return root


def folder_params(tmp_path, source, **data):
    return load_config(write_params(tmp_path, {"data": {"dataset": "folder", "source_dir": str(source), **data}}))


def test_class_subfolders_give_labels_and_a_seeded_stratified_split(tmp_path):
    src = make_classes(tmp_path / "images")
    spec = prepare(folder_params(tmp_path, src))
    assert spec.name == "folder" and spec.classes == ["disc", "square"] and spec.channels == 3 and spec.resolution == 32
    assert spec.counts == {"train": 32, "val": 4, "test": 4}, "each class 80 / 10 / 10"
    x, y = read_split(tmp_path / "datasets/prepared", spec, "test")
    assert x.shape == (4, 3, 32, 32) and np.bincount(y).tolist() == [2, 2]
    assert x.max() == 255 and x.min() == 0, "the shapes survive the resize and crop"
    again = prepare(folder_params(tmp_path, src))
    assert again.manifest_sha256 == spec.manifest_sha256, "the same seed gives the same split"


def test_a_flat_grey_folder_is_one_class_and_split_folders_are_kept(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(10):
        draw(tmp_path / "flat" / f"{i}.png", "disc", rng, mode="L")
    spec = prepare(folder_params(tmp_path, tmp_path / "flat"))
    assert spec.classes == ["images"] and spec.channels == 1 and spec.counts == {"train": 8, "val": 1, "test": 1}
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        for shape in ("disc", "square"):
            for i in range(n):
                draw(tmp_path / "given" / split / shape / f"{i}.png", shape, rng)
    spec = prepare(folder_params(tmp_path, tmp_path / "given"))
    assert spec.counts == {"train": 12, "val": 4, "test": 6}, "train/, val/, test/ are used as given"


@pytest.mark.parametrize("case, message", [
    ("corrupt", r"bad\.png: not a readable image"),
    ("truncated", r"cut\.png: not a readable image"),
    ("empty", r"no images"),
    ("mixed", r"is grey but .* is colour: mixed channel counts"),
    ("few", r"class 'square' has 2 image\(s\); each class needs at least 3"),
    ("loose", r"image file\(s\) \(e\.g\. stray\.png\) beside class folders"),
])
def test_bad_folders_are_named_in_one_line_and_nothing_is_written(tmp_path, case, message):
    src = tmp_path / "images"
    rng = np.random.default_rng(2)
    if case == "empty":
        src.mkdir()
    else:
        make_classes(src, n=4 if case != "few" else 4)
    if case == "corrupt":
        (src / "disc" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    elif case == "truncated":
        data = draw(src / "disc" / "full.png", "disc", rng, size=(200, 200)).read_bytes()
        (src / "disc" / "cut.png").write_bytes(data[: len(data) // 2])
    elif case == "mixed":
        draw(src / "disc" / "grey.png", "disc", rng, mode="L")
    elif case == "few":
        for f in sorted((src / "square").iterdir())[2:]:
            f.unlink()
    elif case == "loose":
        draw(src / "stray.png", "disc", rng)
    with pytest.raises(DataError, match=message):
        prepare(folder_params(tmp_path, src))
    assert not (tmp_path / "datasets/prepared").exists() and not (tmp_path / "datasets/prepared.tmp").exists()


def test_folder_without_source_dir_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.dataset: folder needs data\.source_dir"):
        load_config(write_params(tmp_path, {"data": {"dataset": "folder"}}))


def test_prepare_and_featurize_stages_run_on_a_folder(tmp_path):
    """The stages as a user runs them, on a folder of two classes: prepare, then featurize's classifier (no
    default gate for a user's data) learns the two shapes."""
    make_classes(tmp_path / "images", n=200)
    write_params(tmp_path, {"data": {"dataset": "folder", "source_dir": "images"}, "evaluate": {"feature_epochs": 8, "min_feature_accuracy": None}})
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    out = {}
    for stage in ("prepare", "featurize"):
        res = subprocess.run([sys.executable, "-m", f"pipelines.{stage}"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, env=env)
        assert res.returncode == 0, res.stderr[-2000:]
        out[stage] = res.stdout
    assert "prepared folder 3x32x32 (train 320, val 40, test 40)" in out["prepare"], out["prepare"]
    spec = load_spec(tmp_path / "datasets/prepared")
    assert spec.classes == ["disc", "square"]
    assert "no default accuracy gate" in out["featurize"], out["featurize"][-1500:]
    accuracy = float(out["featurize"].split("held-out accuracy ")[1].split()[0])
    assert accuracy >= 0.75, f"the classifier learns discs from squares: {accuracy}"
