"""The per-epoch quality curve (components/evaluation/validation.make_quality): what each family is judged on,
measured inside the loop on rank 0 after every epoch, for every family of the registry."""

import math

import pytest
import torch

from components.data import ShardStream, load_spec
from components.evaluation.validation import make_quality
from components.models import MODELS, build
from components.training.loop import LoopConfig, train
from tests.evaluation.test_evaluate import _Quiet, evaluated  # noqa: F401 - the featurized tiny project

EXPECTED = {  # family -> keys its curve must carry
    "vae": {"val_neg_elbo", "q_fid", "q_precision", "q_recall"},
    "cvae": {"val_neg_elbo_given_y", "q_fid", "q_precision", "q_recall", "q_cond_accuracy"},
    "dcgan": {"q_fid", "q_precision", "q_recall"},
    "cgan": {"q_fid", "q_precision", "q_recall", "q_cond_accuracy"},
    "infogan": {"q_fid", "q_precision", "q_recall", "q_code_accuracy"},
    "pixelcnn": {"val_nll"},  # autoregressive samplers (Family.curve_samples False): the likelihood is their curve
    "vqvae": {"val_neg_elbo"},
    "cyclegan": {"q_target_rate", "q_cycle_l1", "q_translation_fid"},
}


def test_autoregressive_samplers_keep_the_check_cheap():
    for name in ("pixelcnn", "cpixelcnn", "vqvae_prior"):
        assert not MODELS[name].curve_samples, name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_family_records_its_quality_after_every_epoch(evaluated, name):  # noqa: F811
    params, _, _ = evaluated
    root = params.root
    spec = load_spec(root / "datasets/prepared")
    quality = make_quality(MODELS[name], root / "datasets/prepared", spec, str(root / "features/classifier.pt"),
                           n=64, seed=0, k=3)
    torch.manual_seed(0)
    model = build(name, params.model_config_for(name), spec)
    stream = ShardStream(root / "datasets/prepared", spec, "train", 64, epoch_images=128)
    history = train(model, stream.epoch, LoopConfig(epochs=2, validate=quality), _Quiet())
    assert [h["epoch"] for h in history] == [1, 2]
    for h in history:
        assert EXPECTED[name] <= set(h), f"{name}: {EXPECTED[name] - set(h)} missing at epoch {h['epoch']}"
        assert all(math.isfinite(h[k]) for k in EXPECTED[name])
        assert h["validate_time_s"] >= 0 and h["images_seen"] == 128 * h["epoch"]
    assert model.training, "the loop trains on after measuring"
    for key in ("q_precision", "q_recall", "q_cond_accuracy", "q_code_accuracy", "q_target_rate"):
        assert all(0 <= h[key] <= 1 for h in history if key in h)


def test_the_curve_is_deterministic_for_a_fixed_model(evaluated):  # noqa: F811
    """A fixed validation sample and seed: the same weights give the same point, so the curve moves only
    when the model does."""
    params, _, _ = evaluated
    root = params.root
    spec = load_spec(root / "datasets/prepared")
    quality = make_quality(MODELS["dcgan"], root / "datasets/prepared", spec, str(root / "features/classifier.pt"),
                           n=64, seed=0)
    model = build("dcgan", params.model_config_for("dcgan"), spec)
    assert quality(model) == quality(model)
