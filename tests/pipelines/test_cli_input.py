"""`genzoo` checks every input before it loads a model or writes a file (pipelines/cli.check_args): the model
name, -n and its cap, -o, and the --images array of translate. In-process: the checks run before the tracking
store is opened, so no registry is needed."""

import numpy as np
import pytest

from components.errors import ConfigError, DataError
from pipelines.cli import MAX_N, main
from tests.conftest import write_params


@pytest.fixture
def params_file(tiny_project, tmp_path):
    import shutil

    shutil.copytree(tiny_project / "datasets", tmp_path / "datasets")
    return str(write_params(tmp_path))


def run(params_file, *args):
    main(["--params", params_file, *args])


def test_unknown_model_names_the_allowed_ones(params_file):
    with pytest.raises(ConfigError, match=r"--model: unknown model 'flowpp'; allowed: vae, dcgan"):
        run(params_file, "sample", "--model", "flowpp")


@pytest.mark.parametrize("n", [0, -3, MAX_N + 1, 100000])
def test_n_is_bounded_and_the_cap_said(params_file, n):
    with pytest.raises(ConfigError, match=rf"-n: must be between 1 and {MAX_N} \(got {n}\)"):
        run(params_file, "sample", "--model", "dcgan", "-n", str(n))


def test_output_must_be_a_writable_png_file_path(params_file, tmp_path):
    (tmp_path / "adir").mkdir()
    for out, pattern in ((str(tmp_path / "adir"), "is a directory"), ("/dev/null/grid.png", "cannot write there"),
                         (str(tmp_path / "grid.jpg"), "must end in .png")):
        with pytest.raises(ConfigError, match=pattern):
            run(params_file, "sample", "--model", "dcgan", "-o", out)
    assert not list(tmp_path.rglob("*.tmp.png")), "nothing left behind"


@pytest.mark.parametrize("array,pattern", [
    (np.full((2, 1, 32, 32), 200.0, dtype=np.float32), r"floats must lie in \[0, 1\] \(got 200 to 200\)"),
    (np.full((2, 1, 32, 32), np.nan, dtype=np.float32), "NaN or infinite"),
    (np.zeros((0, 1, 32, 32), dtype=np.uint8), r"N >= 1, got shape \(0, 1, 32, 32\)"),
    (np.zeros((2, 1, 1, 1), dtype=np.uint8), r"images of shape \(1, 1, 1\), but the models are trained on \(C, H, W\) = \(1, 32, 32\)"),
    (np.zeros((2, 3, 32, 32), dtype=np.uint8), r"images of shape \(3, 32, 32\)"),
    (np.zeros((2, 1, 32, 32), dtype=np.int64), r"dtype int64; allowed: uint8 \(0-255\) or float in \[0, 1\]"),
    (np.zeros((32, 32), dtype=np.uint8), r"need an array \(N, C, H, W\)"),
])
def test_translate_images_are_checked_before_any_model_loads(params_file, tmp_path, array, pattern):
    np.save(tmp_path / "mine.npy", array)
    with pytest.raises(DataError, match=pattern):
        run(params_file, "translate", "--model", "cyclegan", "--images", str(tmp_path / "mine.npy"),
            "-o", str(tmp_path / "t.png"))
    assert not (tmp_path / "mlflow.db").exists(), "refused before the tracking store was opened"
