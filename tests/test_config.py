"""Bad params are refused with one line naming the key and what is allowed."""

import pytest
import yaml

from components.config import load_config
from components.errors import ConfigError
from components.models import MODELS
from tests.conftest import REPO, write_params

ALLOWED = ", ".join(sorted(MODELS))


def test_repo_params_are_valid_and_complete():
    params = load_config(REPO / "params.yaml")
    default = [m for m, family in MODELS.items() if family.default_run]
    assert list(params.pipeline.models) == default, "the default run trains every family not marked out of it"
    assert set(params.models) == set(MODELS), "every registered family has its params section"
    assert params.model_config_for("vae").latent_dim == 20
    assert params.model_config_for("vae").hidden_dim == 400
    assert params.root == REPO


@pytest.mark.parametrize(
    "extra,pattern",
    [
        ({"models": {"vae": {"latent_dim": 0}}}, r"models\.vae\.latent_dim: .*greater than or equal to 1 \(got 0\)"),
        ({"models": {"vae": {"kl_weight": -1}}}, r"models\.vae\.kl_weight: .*greater than or equal to 0"),
        ({"models": {"dcgan": {"lr": 0}}}, r"models\.dcgan\.lr: .*greater than 0"),
        ({"models": {"vae": {"lr": "fast"}}}, r"models\.vae\.lr: .*valid number"),
        ({"train": {"workers": 0}}, r"train\.workers: .*greater than or equal to 1"),
        ({"data": {"resolution": 48}}, r"data\.resolution: .*32 or 64 \(got 48\)"),
        ({"data": {"dataset": "imagenet"}}, r"data\.dataset: .*'dsprites', 'mnist', 'fashion_mnist', 'cifar10' or 'folder'"),
        ({"models": {"gpt": {}}}, r"models\.gpt: unknown model; allowed: " + ALLOWED),
        ({"pipeline": {"models": {"vae": "datasets/prepared", "flow": "datasets/prepared"}}},
         r"pipeline\.models: unknown model 'flow'; allowed: " + ALLOWED),
        ({"pipeline": {"models": ["vae"]}}, r"pipeline\.models: .*a mapping of model -> what it trains on"),
        ({"pipeline": {"models": {"vqvae_prior": "models/vqvae"}}},
         r"pipeline\.models\.vqvae_prior: needs vqvae listed before it .*add vqvae: \{data: datasets/prepared, "
         r"code1: vqvae, code2: vqvae, code3: vqvae\} above"),
        ({"pipeline": {"models": {"vqvae": "datasets/prepared", "vqvae_prior": "datasets/prepared"}}},
         r"pipeline\.models\.vqvae_prior\.data: must be models/vqvae \(it is built on vqvae's export\); got 'datasets/prepared'"),
        ({"pipeline": {"models": {"vae": "models/dcgan"}}},
         r"pipeline\.models\.vae\.data: must be datasets/prepared \(it trains on the prepared data, data\.out_dir\)"),
        ({"pipeline": {"models": {"vae": {"data": "datasets/prepared", "code1": "layers", "code2": "losses",
                                          "code3": "gan"}}}},
         r"pipeline\.models\.vae: must be \{data: datasets/prepared, code1: layers, code2: losses, code3: vae\} "
         r"\(the model files components/models/vae\.py imports: its stages' dvc\.yaml deps\)"),
        ({"pipeline": {"models": {"vae": {"data": "datasets/prepared", "code1": "layers"}}}},
         r"pipeline\.models\.vae: must be \{data: datasets/prepared, code1: layers, code2: losses, code3: vae\} .*"
         r"got \{data: datasets/prepared, code1: layers, code2: None, code3: None\}"),
        ({"train": {"wokers": 2}}, r"train\.wokers: unknown key"),
        ({"models": {"vae": {"kl_wieght": 2}}}, r"models\.vae\.kl_wieght: unknown key"),
        ({"models": {"dcgan": {"loss": "hinge"}}}, r"models\.dcgan\.loss: .*'non_saturating' or 'minimax'"),
        ({"tune": {"vae": {"space": {"depth": {"type": "int", "low": 1, "high": 3}}}}},
         r"tune\.vae\.space\.depth: not a searchable parameter of vae; allowed: arch, hidden_dim, latent_dim, kl_weight"),
        ({"tune": {"vae": {"space": {"kl_weight": {"type": "loguniform", "low": 0, "high": 3}}}}},
         r"tune\.vae\.space\.kl_weight\.low: must be > 0 for loguniform"),
        ({"tune": {"wgan": {"space": {"clip_value": {"type": "uniform", "low": 0.1, "high": 0.01}}}}},
         r"tune\.wgan\.space\.clip_value: low must be below high"),
        ({"tune": {"vae": {"space": {"kl_weight": {"type": "gaussian", "low": 0, "high": 1}}}}},
         r"tune\.vae\.space\.kl_weight\.type: .*'uniform', 'loguniform', 'int' or 'choice'"),
        ({"tune": {"vae": {"space": {"kl_weight": {"type": "int", "low": 1, "high": 4}}}}},
         r"tune\.vae\.space\.kl_weight: type int, but models\.vae\.kl_weight is not an integer"),
        ({"tune": {"dcgan": {"space": {"latent_dim": {"type": "choice", "values": []}}}}},
         r"tune\.dcgan\.space\.latent_dim\.values: a non-empty list is required"),
        ({"tune": {"vae": {"num_samples": -1}}}, r"tune\.vae\.num_samples: .*greater than or equal to 0"),
        ({"tune": {"vae": {"points_to_evaluate": [{"lr": 0.1}]}}}, r"tune\.vae\.points_to_evaluate\[0\]: keys \['lr'\]"),
        ({"tune": {"gan": {}}}, r"tune\.gan: unknown model or setting"),
        ({"tune": {"vae": {"points_to_evaluate": [{"kl_weight": 2.0}]}}},
         r"tune\.vae\.points_to_evaluate\[0\]: must set every searched key; missing \['latent_dim'\]"),
        ({"tune": {"max_concurrent_trials": 0}}, r"tune\.max_concurrent_trials: .*greater than or equal to 1"),
        ({"promote": {"min_improvement": -0.1}}, r"promote\.min_improvement: .*greater than or equal to 0"),
        ({"models": {"vae": {"lr": float("inf")}}}, r"models\.vae\.lr: Input should be a finite number"),
        ({"models": {"vae": {"epochs": True}}}, r"models\.vae\.epochs: expected a number, not a yes/no value"),
        ({"train": {"seed": 2**70}}, r"train\.seed: Input should be less than or equal to 4294967295"),
        ({"data": {"seed": -1}}, r"data\.seed: Input should be greater than or equal to 0"),
        ({"pipeline": {"models": {}}}, r"pipeline\.models: Dictionary should have at least 1 item"),
        ({"data": {"out_dir": "."}}, r"data\.out_dir: must be a folder inside the project"),
        ({"data": {"out_dir": ".."}}, r"data\.out_dir: must be a folder inside the project"),
        ({"data": {"out_dir": "/tmp/elsewhere"}}, r"data\.out_dir: must be a folder inside the project"),
        ({"tune": {"vae": {"space": {"latent_dim": {"type": "choice", "values": [8, 0]}}}}},
         r"tune\.vae\.space\.latent_dim\.values\[1\]: 0 is not allowed for models\.vae\.latent_dim: .*greater than or equal to 1"),
        ({"tune": {"vae": {"space": {"latent_dim": {"type": "uniform", "low": 8, "high": 32}}}}},
         r"tune\.vae\.space\.latent_dim: type uniform on the integer models\.vae\.latent_dim; use type int"),
        ({"tune": {"vae": {"space": {"kl_weight": {"type": "uniform", "low": -1, "high": 2}}}}},
         r"tune\.vae\.space\.kl_weight\.low: -1\.0 is not allowed for models\.vae\.kl_weight"),
        ({"tune": {"vae": {"space": {"kl_weight": {"type": "uniform", "low": 0.1, "high": float("inf")}}}}},
         r"tune\.vae\.space\.kl_weight\.high: Input should be a finite number"),
        ({"tune": {"vae": {"space": {"arch": {"type": "choice", "values": ["mlp", "transformer"]}}}}},
         r"tune\.vae\.space\.arch\.values\[1\]: 'transformer' is not allowed for models\.vae\.arch"),
        ({"tune": {"vae": {"space": {"latent_dim": {"type": "int", "low": 2.5, "high": 8}}}}},
         r"tune\.vae\.space\.latent_dim: type int needs whole-number low and high"),
        ({"tune": {"vae": {"space": {"arch": {"type": "uniform", "low": 0, "high": 1}}}}},
         r"tune\.vae\.space\.arch: type uniform, but models\.vae\.arch is not a number; use type choice"),
        ({"profile": "tpu"}, r"profile: unknown profile 'tpu'; allowed: gpu"),
        ({"profile": "gpu", "profiles": {"gpu": {"train": {"precision": "fp8"}}}}, r"train\.precision: .*'fp32', 'bf16' or 'auto'"),
        ({"tune": {"epoch_images": 0}}, r"tune\.epoch_images: .*greater than or equal to 1"),
    ],
)
def test_bad_params_name_the_key(tmp_path, extra, pattern):
    path = write_params(tmp_path, extra)
    with pytest.raises(ConfigError, match=pattern) as err:
        load_config(path)
    assert "\n" not in str(err.value)


def test_a_pipeline_entry_given_as_a_path_alone_is_answered_with_the_line_to_write(tmp_path):
    """dvc.yaml reads each entry's data and code1-3; a bare path (the older form) is answered with the full entry,
    by load_config; read_params (stages that build no model) accepts it."""
    path = write_params(tmp_path)
    params = yaml.safe_load(path.read_text())
    params["pipeline"]["models"] = {"cvae": "datasets/prepared"}
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"pipeline\.models\.cvae: must be \{data: datasets/prepared, code1: layers, "
                       r"code2: losses, code3: vae\} \(the model files components/models/cvae\.py imports: its "
                       r"stages' dvc\.yaml deps\); got its data alone$"):
        load_config(path)


def test_unreadable_params_files(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(tmp_path / "list.yaml")


def test_relative_paths_resolve_against_the_params_file(tmp_path):
    params = load_config(write_params(tmp_path))
    assert params.path(params.data.out_dir) == tmp_path / "datasets/prepared"
    assert params.path("/abs/x") .as_posix() == "/abs/x"


def test_gpu_profile_lays_large_batch_bf16_settings_over_the_defaults(tmp_path):
    cpu = load_config(REPO / "params.yaml")
    gpu = load_config(write_params(tmp_path, {"profile": "gpu"}))
    assert (cpu.train.precision, cpu.train.compile, cpu.train.channels_last) == ("auto", False, False)
    assert (gpu.train.precision, gpu.train.compile, gpu.train.channels_last, gpu.train.use_gpu) == ("bf16", True, True, "yes")
    assert gpu.model_config_for("dcgan").batch_size > cpu.model_config_for("dcgan").batch_size
    assert gpu.model_config_for("dcgan").lr == cpu.model_config_for("dcgan").lr, "keys the profile leaves alone stay"



def test_every_shipped_profile_fits_its_dsprites_images_in_the_factor_grid(tmp_path):
    """The default turns sprites 0-18 degrees (18,432 distinct images); the GPU profile's 220,000 need the full turn."""
    import numpy as np

    from components.data import dsprites

    for overrides in ({}, {"profile": "gpu"}):
        data = load_config(write_params(tmp_path, overrides)).data
        n = data.n_train + data.n_val + data.n_test
        factors = dsprites.sample_factors(n, np.random.default_rng(0), data.orientation_steps)  # raises if n does not fit
        assert len(factors["shape"]) == n and factors["orientation"].max() < data.orientation_steps

def test_duplicate_keys_are_refused_with_their_line(tmp_path):
    text = (REPO / "params.yaml").read_text().replace("  n_train: 12000", "  n_train: 12000\n  n_train: 500", 1)
    (tmp_path / "params.yaml").write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("  n_train: 500"))
    with pytest.raises(ConfigError, match=rf"params.yaml:{line}: duplicate key 'n_train' \(first at line {line - 1}\)"):
        load_config(tmp_path / "params.yaml")


def test_yaml_aliases_are_refused_before_they_expand(tmp_path):
    """An alias bomb (a billion laughs) under profiles: refused at the first alias, in well under a second."""
    import time

    bomb = "profiles:\n  a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"  {chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text().split("\nprofiles:")[0] + "\n" + bomb)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"params.yaml:\d+: YAML aliases \(\*name\) are not allowed"):
        load_config(tmp_path / "params.yaml")
    assert time.perf_counter() - t0 < 1
