"""components/code.py: the code that defines a model's training, found from its imports, and its hash
(part of the checkpoint key: a code change trains afresh, the reliability issue's first item)."""

import shutil

from components.code import model_code, model_code_hash
from components.models import MODELS
from tests.conftest import REPO


def test_closure_follows_imports_within_models_and_adds_the_loop():
    assert model_code("vae") == sorted(["components/models/base.py", "components/models/layers.py",
                                        "components/models/losses.py", "components/models/vae.py",
                                        "components/training/loop.py"])
    assert "components/models/vae.py" in model_code("cvae"), "cvae extends the VAE"
    assert "components/models/gan.py" in model_code("sngan") and "components/models/gan.py" not in model_code("vae")
    assert "components/models/layers.py" not in model_code("vqvae"), "vqvae never imports layers.py"
    for name in MODELS:  # never the registry, which imports every family
        assert "components/models/__init__.py" not in model_code(name)
        assert f"components/models/{name}.py" in model_code(name)


def test_a_comment_in_the_family_or_a_shared_file_changes_the_hash_of_those_that_import_it(tmp_path):
    shutil.copytree(REPO / "components", tmp_path / "components", ignore=shutil.ignore_patterns("__pycache__"))
    before = {m: model_code_hash(m, tmp_path) for m in ("sngan", "dcgan", "vqvae", "vae", "cvae")}
    assert before == {m: model_code_hash(m) for m in before}, "the hash depends on content, not on where it lies"
    with open(tmp_path / "components/models/sngan.py", "a") as f:
        f.write("\n# a comment-only edit\n")
    after = {m: model_code_hash(m, tmp_path) for m in before}
    assert after["sngan"] != before["sngan"] and after["dcgan"] == before["dcgan"]
    with open(tmp_path / "components/models/gan.py", "a") as f:
        f.write("\n# the GAN base\n")
    gan_edited = model_code_hash("dcgan", tmp_path)
    assert gan_edited != before["dcgan"]
    assert model_code_hash("vqvae", tmp_path) == before["vqvae"] and model_code_hash("vae", tmp_path) == before["vae"]
    with open(tmp_path / "components/models/vae.py", "a") as f:
        f.write("\n# the VAE, which the CVAE extends\n")
    assert model_code_hash("vae", tmp_path) != before["vae"] and model_code_hash("cvae", tmp_path) != before["cvae"]
    assert model_code_hash("dcgan", tmp_path) == gan_edited, "the GANs do not import the VAE"


def test_the_resolved_config_and_so_the_checkpoint_key_carry_the_code(tiny_project):
    from components.config import load_config
    from components.data import load_spec
    from components.training.job import resolve

    params = load_config(tiny_project / "params.yaml")
    resolved = resolve(params, "vae", load_spec(params.path(params.data.out_dir)))
    assert resolved["code"] == {"files": model_code("vae"), "sha256": model_code_hash("vae")}
