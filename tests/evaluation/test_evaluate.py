"""featurize and evaluate_model on a tiny project, without Ray (the loop runs in-process)."""

import json

import pytest
import torch

from components.config import load_config
from components.data import ShardStream, load_spec
from components.errors import DataError, EvaluationError
from components.evaluation import evaluate_model
from components.evaluation.features import featurize, load_feature_net
from components.models import build
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
    params = load_config(write_params(root))
    summary = featurize(params, root / "features", log=lambda *_: None)
    spec = load_spec(root / "datasets/prepared")
    out = {}
    for name in ("vae", "dcgan"):
        torch.manual_seed(0)
        model = build(name, params.model_config_for(name), spec)
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
    assert vae["test_iwae_nats"] <= vae["test_elbo_nats"] + 1.0, "IWAE is the tighter bound"
    assert set(vae["figures"]) >= {"reconstructions", "traversal", "nearest_neighbours"}
    assert "traversal" not in out["dcgan"]["figures"]


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
    for name, m in out.items():
        (params.root / f"metrics/{name}.json").write_text(json.dumps(m))
    page = build_report(params.root, ["vae", "dcgan"], summary)
    assert page.count('class="best"') >= 5
    assert page.count("data:image/png;base64,") >= 7, "figures are embedded"
    assert "-IWAE (nats)" in page and summary["feature_net_sha256"][:16] in page
    best_fid = min(out["vae"]["fid"], out["dcgan"]["fid"])
    assert f'<td class="best">{best_fid:.4g}</td>' in page
