"""A model built on another one (Family.needs): its resolved config, and so its checkpoint key, carries the
upstream export's identity; without that export it refuses to start."""

import shutil

import pytest
import torch

from components.config import config_hash, load_config
from components.data import load_spec
from components.data.shards import sha256_file
from components.errors import ConfigError
from components.models import build
from components.models.io import export_model
from components.training.job import resolve
from tests.conftest import write_params

STACKED = {"pipeline": {"models": {"vqvae": "datasets/prepared", "vqvae_prior": "models/vqvae"}},
           "models": {"vqvae": {"codebook_size": 8, "code_dim": 4, "channels": 4}}}


def test_checkpoint_key_follows_the_upstream_export(tiny_project, tmp_path):
    shutil.copytree(tiny_project / "datasets", tmp_path / "datasets")
    params = load_config(write_params(tmp_path, STACKED))
    spec = load_spec(tmp_path / "datasets/prepared")
    with pytest.raises(ConfigError, match=r"models/vqvae/model\.pt: vqvae_prior is built on a trained vqvae, and there "
                                          r"is none; train it first \(dvc repro train@vqvae\)"):
        resolve(params, "vqvae_prior", spec)
    keys = []
    for seed in (0, 1):  # two trainings of the VQ-VAE: two different exports
        torch.manual_seed(seed)
        path = export_model(tmp_path / "models/vqvae/model.pt", "vqvae", build("vqvae", params.model_config_for("vqvae"), spec))
        resolved = resolve(params, "vqvae_prior", spec)
        assert resolved["upstream"] == {"vqvae": {"file": "models/vqvae/model.pt", "sha256": sha256_file(path)}}
        keys.append(config_hash(resolved))
    assert keys[0] != keys[1], "a retrained VQ-VAE gets the prior a new checkpoint key: no stale resume"
    assert "upstream" not in resolve(params, "vqvae", spec)
