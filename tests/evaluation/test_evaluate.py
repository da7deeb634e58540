"""featurize and evaluate_model on a tiny project, without Ray (the loop runs in-process)."""

import json
import math

import pytest
import torch

from components.config import load_config
from components.data import ShardStream, load_spec
from components.errors import DataError, EvaluationError
from components.evaluation.features import featurize, load_feature_net
from components.evaluation.run import evaluate_model
from components.models import MODELS, build
from components.models.io import export_model
from components.training.loop import LoopConfig, train
from tests.conftest import write_params


class _Quiet:
    def on_epoch_end(self, *a):
        pass

    def on_progress(self, *a):
        pass


@pytest.fixture(scope="module")
def evaluated(tiny_project, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("evaluated")
    shutil.copytree(tiny_project / "datasets", root / "datasets")
    params = load_config(write_params(root, {"evaluate": {"feature_epochs": 4}}))  # a classifier that tells the classes apart
    summary = featurize(params, root / "features", log=lambda *_: None)
    spec = load_spec(root / "datasets/prepared")
    out, trained = {}, {}
    for name in ("vae", "dcgan", "cvae", "cgan", "infogan", "pixelcnn", "cpixelcnn", "vqvae", "vqvae_prior", "cyclegan"):
        torch.manual_seed(0)
        upstream = {m: trained[m] for m in MODELS[name].needs} or None  # the prior is built on the trained VQ-VAE
        model = build(name, params.model_config_for(name), spec, upstream)
        trained[name] = model
        stream = ShardStream(root / "datasets/prepared", spec, "train", 64)
        train(model, stream.epoch, LoopConfig(epochs=1), _Quiet())
        export_model(root / f"models/{name}/model.pt", name, model)
        out[name] = evaluate_model(params, name, root / f"models/{name}/model.pt", root / f"evaluation/{name}",
                                   root / "features", log=lambda *_: None)
    return params, summary, out


def test_featurize_records_accuracy_and_weights_hash(evaluated):
    params, summary, _ = evaluated
    assert summary["test_accuracy"] >= summary["min_accuracy"] == 0.3
    net, sha, data_sha = load_feature_net(params.root / "features/classifier.pt")
    assert sha == summary["feature_net_sha256"] and data_sha == summary["dataset_manifest_sha256"]
    cached = torch.load(params.root / "features/features.pt", weights_only=True)
    assert cached["train"]["features"].shape == (512, 128) and cached["test"]["labels"].shape == (256,)


def test_every_model_gets_sample_metrics_and_their_protocol(evaluated):
    params, summary, out = evaluated
    for name, m in out.items():
        if MODELS[name].capabilities.translation:
            continue  # measured on translations: test_translation_metrics
        for key in ("fid", "kid", "precision", "recall", "classes_covered", "class_kl", "memorization_fraction"):
            assert isinstance(m[key], (int, float)), (name, key)
        assert m["fid_inception"] is None and "not computed" in m["fid_inception_note"], "never reported as zero"
        p = m["protocol"]
        assert p["feature_net_sha256"] == summary["feature_net_sha256"]
        assert p["dataset_manifest_sha256"] == summary["dataset_manifest_sha256"]
        assert p["n_real"] == p["n_fake"] == 256 and p["split"] == "test" and p["seed"] == 0
        assert {"torch", "torchmetrics", "torchvision"} <= set(p["versions"])
        for fig in m["figures"].values():
            assert (params.root / f"evaluation/{name}/{fig}").is_file()
    vae = out["vae"]
    assert vae["test_neg_iwae_nats"] <= vae["test_neg_elbo_nats"] + 1.0, "IWAE is the tighter bound"
    assert set(vae["figures"]) >= {"reconstructions", "traversal", "nearest_neighbours"}
    assert "traversal" not in out["dcgan"]["figures"]


def test_evaluation_follows_declared_capabilities(evaluated):
    """Each family gets the metrics and figures of what it declares, named for what they are."""
    params, _, out = evaluated
    cvae, cgan, infogan = out["cvae"], out["cgan"], out["infogan"]
    assert cvae["test_neg_iwae_given_y_nats"] <= cvae["test_neg_elbo_given_y_nats"] + 1.0 and "test_neg_elbo_nats" not in cvae
    assert cvae["primary_metric"] == "test_neg_iwae_given_y_nats" and out["vae"]["primary_metric"] == "test_neg_iwae_nats"
    assert "test_neg_elbo_nats" not in cgan and cgan["primary_metric"] == "fid"
    for m in (cvae, cgan):
        assert 0 <= m["cond_accuracy"] <= 1 and set(m["kid_per_class"]) == {"0", "1", "2"}
        assert m["kid_per_class_mean"] == pytest.approx(sum(m["kid_per_class"].values()) / 3)
        assert {"class_grid", "interpolation"} <= set(m["figures"]) and "conditional accuracy" in m["protocol"]["conditioning"]
    assert "cond_accuracy" not in out["dcgan"] and "cond_accuracy" not in infogan
    assert 1 / 3 - 1e-9 <= infogan["code_accuracy"] <= 1 and sorted(infogan["code_to_class"]) == [0, 1, 2]
    codes = params.model_config_for("infogan").continuous
    assert set(infogan["code_factor_corr"]) == {f"c{j + 1}" for j in range(codes)} and codes >= 2
    assert set(infogan["code_factor_corr"]["c1"]) == {"scale", "orientation", "pos_x", "pos_y"}
    assert set(infogan["code_sample_factor_corr"]) == set(infogan["code_factor_corr"])  # G's side, per code
    for key in ("code_factor_corr_best", "code_factor_corr_untrained", "code_sample_factor_corr_best",
                "code_sample_factor_corr_untrained"):
        assert 0 <= infogan[key] <= 1, key
    assert "code_traversal" in infogan["figures"] and "reconstructions" not in infogan["figures"]
    pixelcnn = out["pixelcnn"]  # an exact likelihood is an NLL, never an ELBO
    assert pixelcnn["primary_metric"] == "test_nll_nats" and pixelcnn["test_nll_nats"] > 0
    assert pixelcnn["test_nll_bits_per_dim"] == pytest.approx(pixelcnn["test_nll_nats"] / (32 * 32 * math.log(2)))
    assert not any("elbo" in k or "iwae" in k for k in pixelcnn) and "exact" in pixelcnn["protocol"]["likelihood_metrics"]
    assert pixelcnn["protocol"]["n_fake"] == out["dcgan"]["protocol"]["n_fake"] and set(pixelcnn["figures"]) == {"samples", "nearest_neighbours"}
    from components.evaluation.registry import METRICS

    for name, m in out.items():  # the registry (and so the report) has what each model is promoted on
        assert m["primary_metric"] in METRICS, name
    cpixelcnn = out["cpixelcnn"]  # exact and conditional: an NLL given y, with the conditional metrics
    assert cpixelcnn["primary_metric"] == "test_nll_given_y_nats" and cpixelcnn["test_nll_given_y_nats"] > 0
    assert "test_nll_nats" not in cpixelcnn and 0 <= cpixelcnn["cond_accuracy"] <= 1
    assert set(cpixelcnn["figures"]) == {"samples", "nearest_neighbours", "class_grid"}


def test_vqvae_and_its_prior_report_codebook_usage_and_the_two_stage_bound(evaluated):
    _, _, out = evaluated
    vq, prior = out["vqvae"], out["vqvae_prior"]
    for m in (vq, prior):
        assert 1 <= m["codebook_perplexity"] <= m["codebook_size"] and 0 <= m["codebook_dead_codes"] < m["codebook_size"]
        assert m["primary_metric"] == "test_neg_elbo_nats" and "test_neg_iwae_nats" not in m, "deterministic posterior"
        assert {"samples", "reconstructions"} <= set(m["figures"]) and "perplexity" in m["protocol"]["codebook"]
    assert prior["codebook_perplexity"] == pytest.approx(vq["codebook_perplexity"]), "the prior keeps the VQ-VAE's codes"
    assert 0 <= vq["recon_accuracy"] <= 1 and prior["recon_accuracy"] == pytest.approx(vq["recon_accuracy"])
    # same decoder term; the learned prior replaces h w log K (here 8 x 8 x log 64 = 266 nats)
    assert prior["test_neg_elbo_nats"] < vq["test_neg_elbo_nats"]


def test_translation_metrics_and_factor_regressor(evaluated):
    params, summary, out = evaluated
    m = out["cyclegan"]
    assert m["primary_metric"] == "translation_fid" and set(m["figures"]) == {"translations"}
    assert set(m["translation"]) == {"a2b", "b2a"} and m["translation_images"]["a"] > 0 and m["translation_images"]["b"] > 0
    for key in ("translation_fid", "translation_target_rate", "cycle_l1", "factor_error_pos_x", "factor_error_pos_y",
                "factor_error_scale", "factor_error_orientation_deg"):
        assert isinstance(m[key], float) and m[key] >= 0, key
        assert m[key] == pytest.approx((m["translation"]["a2b"][key] + m["translation"]["b2a"][key]) / 2), key
    assert 0 <= m["translation_target_rate"] <= 1 and m["factor_error_orientation_deg"] <= 45
    for d in ("a2b", "b2a"):  # the error splits into a shared shift and the spread about it
        t = m["translation"][d]
        for f in ("pos_x", "pos_y", "scale", "orientation_deg"):
            assert t[f"factor_spread_{f}"] <= t[f"factor_error_{f}"] + abs(t[f"factor_shift_{f}"]) + 1e-6
            assert abs(t[f"factor_shift_{f}"]) <= t[f"factor_error_{f}"] + 1e-6
    assert "factor_shift_pos_x" not in m and m["factor_spread_pos_x"] >= 0  # shifts of opposite sign would cancel
    assert "fid" not in m and "A = square, B = heart" in m["protocol"]["translation"]
    # even from 512 images the regressor beats guessing the mean (8 steps; 22.5 deg modulo 90)
    assert summary["regressor_test_error_pos_x"] < 7 and summary["regressor_test_error_orientation_deg"] < 22.5
    assert m["regressor_floor_pos_x"] == pytest.approx(summary["regressor_test_error_pos_x"])


def test_factor_errors_by_hand():
    import numpy as np

    from components.evaluation.factors import errors

    true = {"pos_x": np.array([0, 31]), "pos_y": np.array([5, 5]), "scale": np.array([0, 5]),
            "orientation": np.array([0, 9])}  # 0 and 81 degrees
    pred = {"pos_x": torch.tensor([1.0, 31.0]), "pos_y": torch.tensor([5.0, 3.0]), "scale": torch.tensor([0.0, 5.0]),
            "orientation": torch.tensor([89.0, 80.0])}  # 89 is 1 degree from 0 modulo 90
    e = errors(pred, true)
    assert e == pytest.approx({"factor_error_pos_x": 0.5, "factor_error_pos_y": 1.0, "factor_error_scale": 0.0,
                               "factor_error_orientation_deg": 1.0})


def test_shift_and_spread_by_hand():
    """A translation that moves every sprite 2 steps up has a shift of -2 and no spread; orientation wraps mod 90."""
    import numpy as np

    from components.evaluation.translation import shift_and_spread

    true = {"pos_x": np.array([0, 10]), "pos_y": np.array([5, 9]), "scale": np.array([1, 3]),
            "orientation": np.array([0, 0])}
    pred = {"pos_x": torch.tensor([1.0, 9.0]), "pos_y": torch.tensor([3.0, 7.0]), "scale": torch.tensor([1.0, 3.0]),
            "orientation": torch.tensor([88.0, 86.0])}  # 2 and 4 degrees below 0, modulo 90
    s = shift_and_spread(pred, true)
    assert s["factor_shift_pos_y"] == pytest.approx(-2.0) and s["factor_spread_pos_y"] == pytest.approx(0.0)
    assert s["factor_shift_pos_x"] == pytest.approx(0.0) and s["factor_spread_pos_x"] == pytest.approx(1.0)
    assert s["factor_shift_orientation_deg"] == pytest.approx(-3.0) and s["factor_spread_orientation_deg"] == pytest.approx(1.0)


def test_conditional_accuracy_is_the_classifier_agreeing_with_the_requested_class():
    """Through the sampling interface: a "model" that returns images of the requested class scores 1 and
    matches each class's real features; one that ignores its label (always class 0) scores 1/3 and has a
    worse per-class FID. The classifier is a real FeatureNet trained on three striped classes."""
    import torch.nn.functional as F

    from components.evaluation.conditional import conditional_metrics
    from components.evaluation.features import FeatureNet, embed
    from tests.models.test_contract import spec, stripes

    torch.manual_seed(0)
    x, y = stripes(300, spec())
    x = (x + 0.1 * torch.rand_like(x)).clamp(0, 1)  # a little noise: distinct images per class
    net = FeatureNet(1, 3, width=8)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    real_f, pred = embed(net, x)
    assert (pred == y).float().mean() == 1.0

    class Oracle:  # images of the requested class
        def sample(self, n, labels=None, generator=None):
            return torch.stack([x[y == int(k)][i % 100] for i, k in enumerate(labels)])

    class Deaf(Oracle):  # ignores the label: always class 0
        def sample(self, n, labels=None, generator=None):
            return super().sample(n, torch.zeros(n, dtype=torch.long))

    good = conditional_metrics(Oracle(), net, real_f, y, 3, 60, 0)
    deaf = conditional_metrics(Deaf(), net, real_f, y, 3, 60, 0)
    assert good["cond_accuracy"] == 1.0 and deaf["cond_accuracy"] == pytest.approx(1 / 3)
    assert good["kid_per_class"]["0"] == pytest.approx(deaf["kid_per_class"]["0"])
    assert good["kid_per_class_mean"] < deaf["kid_per_class_mean"]

    from components.evaluation.conditional import code_sample_accuracy

    class Coded:  # InfoGAN's side: code value c draws class (c + 1) % 3, a permutation the matching undoes
        k = 3

        def sample_code(self, cat, generator=None):
            return Oracle().sample(len(cat), (cat + 1) % 3)

    class Ignored(Coded):  # the code changes nothing: every value draws class 2
        def sample_code(self, cat, generator=None):
            return Oracle().sample(len(cat), torch.full_like(cat, 2))

    assert code_sample_accuracy(Coded(), net, 90, 3, 0, batch_size=40) == 1.0
    assert code_sample_accuracy(Ignored(), net, 90, 3, 0) == pytest.approx(1 / 3)


def test_continuous_code_figures_read_the_generator_and_stand_beside_their_chance_level():
    """G's side: a code that sets the sprite's column correlates with the regressor's x reading, a code G ignores
    does not. The regressor here is a real centre-of-mass reading, not a trained net."""
    import contextlib

    import numpy as np
    from torch import nn

    from components.evaluation import factors as factor_lib
    from components.evaluation.conditional import code_sample_factor_corr, untrained_code_floor
    from tests.models.test_contract import spec, tiny

    class CentreOfMass(nn.Module):  # (B, 1, H, W) in [-1, 1] -> (B, 5): x, y in [0, 1], scale 0, orientation 0
        def forward(self, x):
            w = (x + 1) / 2
            cols = torch.linspace(0, 1, w.shape[-1])
            mass = w.sum((1, 2, 3)).clamp_min(1e-6)
            cx, cy = (w.sum((1, 2)) * cols).sum(1) / mass, (w.sum((1, 3)) * cols).sum(1) / mass
            zero = torch.zeros_like(cx)
            return torch.stack([cx, cy, zero, zero + 1, zero], 1)

    class Coded:  # code 1 sets the column of a 4x4 square, code 2 changes nothing
        j = 2

        def latent(self, n, generator=None):
            return torch.rand(n, 2, generator=generator) * 2 - 1

        def evaluating(self):
            return contextlib.nullcontext()

        def decode_latent(self, latent):
            img = torch.zeros(len(latent), 1, 32, 32)
            for i, col in enumerate(((latent[:, 0] + 1) / 2 * 27).round().long().tolist()):
                img[i, :, 14:18, col : col + 4] = 1
            return img

    out = code_sample_factor_corr(Coded(), CentreOfMass(), 200, 0, batch_size=64)
    assert out["code_sample_factor_corr"]["c1"]["pos_x"] > 0.99 and out["code_sample_factor_corr_best"] > 0.99
    assert max(out["code_sample_factor_corr"]["c2"].values()) < 0.25

    s = spec()  # the chance level: fresh copies of the same config; the same seed gives the same figure
    model = tiny("infogan", s, continuous=2)
    x, y = (torch.rand(64, *s.shape) * 255).to(torch.uint8).numpy(), np.arange(64) % 3
    factors = {"pos_x": np.arange(64) % 8, "pos_y": np.arange(64) // 8, "scale": np.zeros(64, int),
               "orientation": np.zeros(64, int)}
    floor = untrained_code_floor(model, s, x, y, factors, CentreOfMass(), 64, 0, copies=2)
    assert 0 <= floor["code_factor_corr_untrained"] <= 1 and 0 <= floor["code_sample_factor_corr_untrained"] <= 1
    assert floor == untrained_code_floor(model, s, x, y, factors, CentreOfMass(), 64, 0, copies=2)
    assert "code_sample_factor_corr_untrained" not in untrained_code_floor(model, s, x, y, factors, None, 64, 0, 1)
    assert factor_lib.predict(CentreOfMass(), torch.zeros(1, 1, 32, 32))["pos_x"].shape == (1,)


def test_code_matching_finds_the_best_permutation():
    import numpy as np

    from components.evaluation.conditional import matched_accuracy

    labels = np.array([0, 0, 1, 1, 2, 2])
    assert matched_accuracy(np.array([2, 2, 0, 0, 1, 1]), labels, 3, 3) == (1.0, [1, 2, 0])
    acc, mapping = matched_accuracy(np.array([0, 0, 0, 0, 1, 1]), labels, 3, 3)
    assert acc == pytest.approx(4 / 6)
    acc, mapping = matched_accuracy(np.array([0, 1, 2, 3, 4, 4]), labels, 5, 3)  # more codes than classes:
    assert acc == pytest.approx(4 / 6) and sorted(m for m in mapping if m >= 0) == [0, 1, 2]  # still one-to-one


def test_code_matching_is_one_to_one_for_ten_codes():
    """K = 10: two codes that both predict class 0 best may not both map to it (a many-to-one majority map
    would score 1.0 here, the audit's inflated InfoGAN figure on 10-class data)."""
    import numpy as np

    from components.evaluation.conditional import matched_accuracy

    labels = np.repeat(np.arange(10), 10)  # 100 images, 10 per class
    codes = labels.copy()
    codes[labels == 1] = 0  # code 0 is read for classes 0 and 1; code 1 never appears
    acc, mapping = matched_accuracy(codes, labels, 10, 10)
    assert acc == pytest.approx(0.9) and len(set(mapping)) == 10


def test_kid_std_over_subsets_is_positive_for_small_sets():
    from components.evaluation.sample_metrics import kid

    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g) + 0.3
    mean, std = kid(real, fake)
    assert mean > 0 and std > 0, "subsets of the whole set would all be the set itself"


def test_circular_orientation_code_scores_one():
    import numpy as np

    from components.evaluation.conditional import circular_corr

    rng = np.random.default_rng(0)
    orientation, shape = rng.integers(0, 40, 2000), rng.integers(0, 3, 2000)
    period = np.array([10, 20, 40])[shape]
    perfect = ((orientation % period) / period + 0.3) % 1.0  # grows with the angle, wraps once per symmetry period
    assert circular_corr(perfect, orientation, shape) > 0.99
    assert abs(np.corrcoef(perfect, orientation)[0, 1]) < 0.9, "a straight line through the angle scores it low"
    assert circular_corr(rng.random(2000), orientation, shape) < 0.1


def test_bits_per_dim_of_padded_mnist_counts_its_784_real_pixels():
    from components.data.shards import DatasetSpec
    from components.evaluation.likelihood import content_dims

    def spec(name, res=32, ch=1):
        return DatasetSpec(name, res, ch, ["0"], False, {}, {})

    assert content_dims(spec("mnist")) == 784 and content_dims(spec("fashion_mnist")) == 784
    assert content_dims(spec("dsprites")) == 1024 and content_dims(spec("cifar10", ch=3)) == 3072
    assert content_dims(spec("mnist", res=64)) == 4096, "resampled, not padded: every pixel carries data"


def test_feature_gate_stops_featurize_with_the_reason(tiny_project, tmp_path):
    import shutil

    shutil.copytree(tiny_project / "datasets", tmp_path / "datasets")
    params = load_config(write_params(tmp_path, {"evaluate": {"min_feature_accuracy": 1.0}}))
    with pytest.raises(EvaluationError, match=r"held-out accuracy 0\.\d+ < evaluate.min_feature_accuracy 1.0 for dsprites"):
        featurize(params, tmp_path / "features", log=lambda *_: None)
    assert not (tmp_path / "features/classifier.pt").exists()


def test_evaluation_refuses_a_model_from_another_dataset(evaluated, tmp_path):
    params, _, _ = evaluated
    blob = torch.load(params.root / "models/vae/model.pt", weights_only=True)
    blob["spec"]["manifest_sha256"] = "0" * 64
    torch.save(blob, tmp_path / "other.pt")
    with pytest.raises(DataError, match="trained on dataset 000000000000"):
        evaluate_model(params, "vae", tmp_path / "other.pt", tmp_path / "ev", params.root / "features")


def test_report_marks_the_best_value_per_column(evaluated):
    from components.evaluation.report import build_report

    params, summary, out = evaluated
    (params.root / "metrics").mkdir(exist_ok=True)
    for name, m in out.items():  # as if both had learned: precision, recall and classes at their targets
        (params.root / f"metrics/{name}.json").write_text(json.dumps({**m, "precision": 0.9, "recall": 0.8,
                                                                      "classes_covered": m.get("classes_total")}))
    page = build_report(params.root, ["vae", "dcgan"], summary)
    assert page.count('class="best"') >= 5 and "did not learn" not in page
    assert page.count("data:image/png;base64,") >= 7, "figures are embedded"
    assert "-IWAE (nats)" in page and summary["feature_net_sha256"][:16] in page
    best_fid = min(out["vae"]["fid"], out["dcgan"]["fid"])
    assert f'<td class="best">{best_fid:.4g}</td>' in page


def test_report_says_which_model_did_not_learn_and_does_not_rank_it(evaluated):
    from components.evaluation.report import build_report

    params, summary, out = evaluated
    (params.root / "metrics").mkdir(exist_ok=True)
    (params.root / "metrics/vae.json").write_text(json.dumps({**out["vae"], "precision": 0.9, "recall": 0.8}))
    (params.root / "metrics/dcgan.json").write_text(json.dumps({**out["dcgan"], "precision": 0.1, "recall": 0.6,
                                                                 "fid": 0.001}))
    page = build_report(params.root, ["vae", "dcgan"], summary)
    assert "did not learn at this budget: precision 0.10 &lt; 0.5" in page
    assert '<td class="best">0.001</td>' not in page, "a model that did not learn is not ranked"


def test_report_does_not_rank_the_samples_of_a_model_that_is_not_a_sampler(evaluated):
    """The VQ-VAE's samples decode uniformly drawn codes (Family.sample_targets False): shown, never marked best."""
    from components.evaluation.report import build_report

    params, summary, out = evaluated
    (params.root / "metrics").mkdir(exist_ok=True)
    good = {"precision": 0.9, "recall": 0.8, "classes_covered": out["vae"].get("classes_total")}
    (params.root / "metrics/vae.json").write_text(json.dumps({**out["vae"], **good}))
    (params.root / "metrics/dcgan.json").write_text(json.dumps({**out["dcgan"], **good, "fid": 0.001,
                                                                 "sample_targets": False}))
    page = build_report(params.root, ["vae", "dcgan"], summary)
    assert "not a sampler (decodes uniformly drawn codes): not ranked" in page
    assert '<td class="best">0.001</td>' not in page


def test_report_draws_the_quality_curve_with_axes(evaluated, tmp_path):
    from components.evaluation.curves import draw, panels, read_history
    from pipelines.train import write_history

    history = [{"epoch": e, "images_seen": 1000 * e, "loss_D": 1.0 / e, "q_fid": 50.0 / e, "q_precision": 0.2 * e,
                "q_recall": 0.25 * e, "q_floor_fid": 0.5, "q_floor_precision": 0.95, "q_floor_recall": 0.96,
                "validate_time_s": 0.1} for e in (1, 2, 3)]
    write_history(tmp_path / "dcgan.csv", history)
    ps = panels(read_history(tmp_path / "dcgan.csv"))
    assert set(ps) == {"fid", "pr", "losses"} and ps["fid"]["floors"] == {"real data (FID)": 0.5}
    assert ps["pr"]["lines"]["precision"] == ([1000, 2000, 3000], [0.2, 0.4, 0.6000000000000001])
    assert ps["losses"]["lines"] == {"loss_D": ([1000, 2000, 3000], [1.0, 0.5, 1 / 3])}
    png = draw(tmp_path / "dcgan.csv", tmp_path / "curves.png", "dcgan")
    from PIL import Image

    assert Image.open(png).size[0] > 600, "three panels side by side"


def test_a_validation_bound_is_drawn_without_a_real_data_line(tmp_path):
    """Only q_ metrics have a real-data floor (q_floor_*): a bound's panel must not label its own last value
    "real data" (it did: the floor lookup replaced "q_" in "val_nll", which has none)."""
    from components.evaluation.curves import panels, read_history
    from pipelines.train import write_history

    history = [{"epoch": e, "images_seen": 1000 * e, "nll": 60.0 / e, "val_nll": 50.0 / e, "q_fid": 40.0 / e,
                "q_floor_fid": 0.7} for e in (1, 2)]
    write_history(tmp_path / "pixelcnn.csv", history)
    ps = panels(read_history(tmp_path / "pixelcnn.csv"))
    assert ps["bound"]["lines"] == {"NLL": ([1000, 2000], [50.0, 25.0])}
    assert ps["bound"]["floors"] == {}
    assert ps["fid"]["floors"] == {"real data (FID)": 0.7}


class _RunsCode:
    """A pickle payload: unpickling it runs a shell command."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_inception_weights_that_would_run_code_are_refused_unrun(tmp_path):
    from components.evaluation.run import inception_fid

    marker = tmp_path / "code-ran"
    path = tmp_path / "pt_inception.pth"
    torch.save({"conv.weight": torch.zeros(1), "payload": _RunsCode(marker)}, path)
    fake = torch.zeros(2, 1, 32, 32)
    with pytest.raises(DataError, match=r"evaluate.inception_weights=.*pt_inception.pth: not a plain state_dict of tensors; refused") as err:
        inception_fid(path, torch.zeros(2, 1, 32, 32, dtype=torch.uint8), fake)
    assert "\n" not in str(err.value) and not marker.exists(), "the payload never ran"


def test_real_data_reference_row_at_every_n_in_use(evaluated):
    from components.evaluation.reference import reference_metrics

    params, _, out = evaluated
    real = reference_metrics(params, params.root / "features", [256, 64])
    assert real["protocol"]["n_real"] == real["protocol"]["n_fake"] == 256 and set(real["by_n"]) == {"256", "64"}
    assert real["precision"] > 0.6 and real["recall"] > 0.6, "real images are on the real manifold"
    assert real["fid"] < min(out[m]["fid"] for m in ("vae", "dcgan")), "no tiny model beats real data"
    assert real["by_n"]["64"]["fid"] > real["by_n"]["256"]["fid"], "FID's small-N bias: the floor rises as N falls"


def test_report_page_has_every_row_every_value_and_only_decodable_images(evaluated):
    """The page as a reader gets it, without a browser: the reference row first, a row per model in the
    tables of its metrics (CycleGAN in the translation table), no empty cell where a metric exists, no
    ranking across N, and every embedded image decodes."""
    import base64
    import io
    import re

    from PIL import Image

    from components.evaluation.reference import reference_metrics
    from components.evaluation.registry import METRICS
    from components.evaluation.report import build_report

    params, summary, out = evaluated
    (params.root / "metrics").mkdir(exist_ok=True)
    out = {**out, "pixelcnn": {**out["pixelcnn"], "protocol": {**out["pixelcnn"]["protocol"], "n_fake": 128,
                                                                "n_real": 128}}}  # as if evaluated at another N
    for name, m in out.items():
        (params.root / f"metrics/{name}.json").write_text(json.dumps(m))
    sizes = sorted({m["protocol"]["n_fake"] for m in out.values() if "n_fake" in m["protocol"]})
    assert len(sizes) == 2
    (params.root / "metrics/real.json").write_text(json.dumps(reference_metrics(params, params.root / "features", sizes)))
    page = build_report(params.root, list(out), summary)
    assert page.index("real data (train vs test, N = 256)") < page.index('href="#vae"'), "val has 128 < N images"
    for name, m in out.items():
        assert f'<a href="#{name}">{name}</a>' in page
        for k in METRICS:
            if isinstance(m.get(k), float):
                assert f"{m[k]:.4g}" in page, f"{name}: {k} missing from the page"
    assert "translated into target class" in page and "cycle L1 (per pixel)" in page
    floor = page.index("real data (the factor regressor on real test images)")  # the translation table's floor row
    assert page.index("Translation (CycleGAN)") < floor < page.index('href="#cyclegan"', floor)
    assert f'{out["cyclegan"]["regressor_floor_pos_x"]:.4g}' in page[floor:page.index("</tr>", floor)]
    assert f"N = {sizes[0]}: ranked only against rows at N = {sizes[0]}" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) > 20
    for b64 in images:
        Image.open(io.BytesIO(base64.b64decode(b64))).verify()


def test_targets_follow_what_a_family_is_for():
    from components.evaluation.report import shortfall

    assert shortfall({"precision": 0.1, "recall": 0.9}) == "precision 0.10 < 0.5"
    vq = {"precision": 0.1, "recall": 0.1, "sample_targets": False, "codebook_size": 64, "codebook_perplexity": 39.2,
          "recon_accuracy": 0.93}
    assert shortfall(vq) is None, "the VQ-VAE is judged on its codebook and reconstructions, not its uniform-prior samples"
    assert "codebook perplexity 20.0 < 32" in shortfall({**vq, "codebook_perplexity": 20.0})
    assert shortfall({"cond_accuracy": 0.84, "precision": 0.6, "recall": 0.8}) == "cond_accuracy 0.84 < 0.9"
    # issue 21's target: every class covered (a model that draws no squares has not learned the data)
    assert shortfall({"precision": 0.6, "recall": 0.8, "classes_covered": 2, "classes_total": 3}) == "classes covered 2 of 3"
    assert shortfall({"precision": 0.6, "recall": 0.8, "classes_covered": 3, "classes_total": 3}) is None
    assert shortfall({**vq, "classes_covered": 2, "classes_total": 3}) is None
