"""Promotion through a real MLflow registry (SQLite): champion moves only for a finite, better model
evaluated on the same dataset and protocol; rollback; sampling by alias."""

import copy

import pytest
import torch

from components.data.shards import DatasetSpec
from components.errors import TrackingError
from components.models import build
from components.models.io import export_model
from components.tracking import Tracker, tracking_uri
from components.tracking.registry import CHAMPION, PREVIOUS, load_by_alias, promote, rollback

PROTOCOL = {"dataset": "dsprites", "dataset_manifest_sha256": "a" * 64, "split": "test", "n_real": 256,
            "n_fake": 256, "seed": 0, "feature_net_sha256": "f" * 64, "versions": {"torch": "x"}}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    tracker = Tracker(tracking_uri(None, root), "genzoo", root=root)
    spec = DatasetSpec(name="dsprites", resolution=32, channels=1, classes=["a", "b", "c"], binary=True,
                       counts={"train": 1}, shards={})
    torch.manual_seed(0)
    model = build("dcgan", {"latent_dim": 8, "g_channels": 4, "d_channels": 4}, spec)
    path = export_model(root / "model.pt", "dcgan", model)
    run_id = tracker.start_run("train-dcgan", {})
    uri = tracker.log_model(run_id, path, "dcgan")
    tracker.end_run(run_id)
    return tracker, run_id, uri, model


def candidate(fid, **protocol):
    return {"fid": fid, "protocol": {**copy.deepcopy(PROTOCOL), **protocol}}


def test_promotion_sequence(store):
    tracker, run_id, uri, _ = store
    first = promote(tracker, "dcgan", run_id, uri, candidate(30.0), 0.01)
    assert first["promoted"] and "no champion yet" in first["reason"]
    worse = promote(tracker, "dcgan", run_id, uri, candidate(29.9), 0.01)  # better, but by less than 1%
    assert not worse["promoted"] and "does not beat" in worse["reason"]
    nan = promote(tracker, "dcgan", run_id, uri, candidate(float("nan")), 0.01)
    assert not nan["promoted"] and "not finite" in nan["reason"]
    other_data = promote(tracker, "dcgan", run_id, uri, candidate(1.0, dataset_manifest_sha256="b" * 64), 0.01)
    assert not other_data["promoted"] and "not compared" in other_data["reason"]
    other_protocol = promote(tracker, "dcgan", run_id, uri, candidate(1.0, n_fake=10000), 0.01)
    assert not other_protocol["promoted"] and "protocol" in other_protocol["reason"]
    newer_libs = promote(tracker, "dcgan", run_id, uri, candidate(20.0, versions={"torch": "y"}), 0.01)
    assert newer_libs["promoted"], "library versions are not part of what is compared"

    client = tracker.client
    assert int(client.get_model_version_by_alias("genzoo-dcgan", CHAMPION).version) == newer_libs["version"]
    assert int(client.get_model_version_by_alias("genzoo-dcgan", PREVIOUS).version) == first["version"]
    tags = client.get_model_version("genzoo-dcgan", nan["version"]).tags
    assert tags["genzoo.decision"] == "rejected" and "not finite" in tags["genzoo.reason"]

    back = rollback(tracker, "dcgan")
    assert back == {"model": "dcgan", "champion": first["version"], "previous_champion": newer_libs["version"]}
    assert int(client.get_model_version_by_alias("genzoo-dcgan", CHAMPION).version) == first["version"]


def test_sampling_by_alias_rebuilds_the_torch_model(store):
    tracker, _, _, model = store
    images = load_by_alias(tracker, "dcgan", CHAMPION, 5, seed=3)
    expected = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert images.shape == (5, 1, 32, 32) and torch.allclose(images, expected, atol=1e-5)


def test_missing_alias_and_rollback_without_history_are_clear(store):
    tracker = store[0]
    with pytest.raises(TrackingError, match="genzoo-vae has no alias 'champion'"):
        load_by_alias(tracker, "vae", CHAMPION, 4)
    with pytest.raises(TrackingError, match="no 'previous-champion' alias"):
        rollback(tracker, "wgan")


@pytest.mark.slow  # a whole sweep / server / CLI process: CI's full suite, not the fast tier
def test_cli_samples_by_alias_and_rolls_back(store, tmp_path):
    import os
    import subprocess
    import sys

    from PIL import Image

    from tests.conftest import write_params

    tracker, run_id, uri, _ = store
    for fid in (25.0, 20.0):  # a champion and a previous one, also when this test runs alone
        promote(tracker, "dcgan", run_id, uri, candidate(fid), 0.01)
    write_params(tmp_path)
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracker.uri)
    genzoo = [sys.executable, "-m", "pipelines.cli", "--params", str(tmp_path / "params.yaml")]
    res = subprocess.run(genzoo + ["sample", "--model", "dcgan", "--alias", "champion", "-n", "9", "-o", "grid.png"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "sampled 9 images from genzoo-dcgan@champion" in res.stdout
    assert Image.open(tmp_path / "grid.png").size[0] > 3 * 32
    before = int(tracker.client.get_model_version_by_alias("genzoo-dcgan", CHAMPION).version)
    res = subprocess.run(genzoo + ["promote", "dcgan", "--rollback"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert int(tracker.client.get_model_version_by_alias("genzoo-dcgan", PREVIOUS).version) == before
    res = subprocess.run(genzoo + ["sample", "--model", "vae", "-n", "4"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 1 and res.stderr.strip() == (
        "error: sample: genzoo-vae has no alias 'champion'; run `dvc repro promote` first")


@pytest.fixture(scope="module")
def conditional(store):
    """A registered conditional model (cgan) in the same store, promoted to champion."""
    tracker = store[0]
    spec = DatasetSpec(name="dsprites", resolution=32, channels=1, classes=["a", "b", "c"], binary=True,
                       counts={"train": 1}, shards={})
    torch.manual_seed(0)
    model = build("cgan", {"latent_dim": 8, "g_channels": 4, "d_channels": 4}, spec)
    with torch.no_grad():  # make the label visible in the output: per-class shifts after batch norm
        for m in model.generator.norms:
            m.beta.weight.copy_(torch.arange(3.0)[:, None].expand_as(m.beta.weight))
    path = export_model(tracker.root / "cgan.pt", "cgan", model)
    run_id = tracker.start_run("train-cgan", {})
    uri = tracker.log_model(run_id, path, "cgan")
    tracker.end_run(run_id)
    assert promote(tracker, "cgan", run_id, uri, candidate(40.0), 0.01)["metric"] == "fid"
    return tracker, model


def test_sampling_a_conditional_model_by_label(conditional):
    tracker, model = conditional
    for label, index in (("b", 1), ("2", 2)):
        images = load_by_alias(tracker, "cgan", CHAMPION, 4, seed=5, label=label)
        expected = model.sample(4, labels=torch.full((4,), index), generator=torch.Generator().manual_seed(5))
        assert torch.allclose(images, expected, atol=1e-5), label
    assert not torch.allclose(load_by_alias(tracker, "cgan", CHAMPION, 4, seed=5, label="a"), images)
    from components.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--label: 'd' is not a class of genzoo-cgan@champion; allowed: a, b, c or 0..2"):
        load_by_alias(tracker, "cgan", CHAMPION, 4, label="d")
    with pytest.raises(ConfigError, match=r"--label: dcgan is not conditional; models that take labels: cvae, cgan"):
        load_by_alias(tracker, "dcgan", CHAMPION, 4, label="a")


@pytest.fixture(scope="module")
def translator(store):
    """A registered CycleGAN (square <-> heart) in the same store, promoted to champion."""
    tracker = store[0]
    spec = DatasetSpec(name="dsprites", resolution=32, channels=1, classes=["square", "ellipse", "heart"], binary=True,
                       counts={"train": 1}, shards={})
    torch.manual_seed(0)
    model = build("cyclegan", {"g_channels": 4, "d_channels": 4, "res_blocks": 1}, spec).eval()
    path = export_model(tracker.root / "cyclegan.pt", "cyclegan", model)
    run_id = tracker.start_run("train-cyclegan", {})
    uri = tracker.log_model(run_id, path, "cyclegan")
    tracker.end_run(run_id)
    result = promote(tracker, "cyclegan", run_id, uri, {"translation_fid": 50.0, "protocol": PROTOCOL}, 0.01)
    assert result["promoted"] and result["metric"] == "translation_fid"
    return tracker, model


def test_translating_by_alias_matches_the_torch_model(translator):
    from components.errors import ConfigError
    from components.tracking.registry import translate_by_alias

    tracker, model = translator
    x = torch.rand(3, 1, 32, 32)
    out, back = translate_by_alias(tracker, "cyclegan", CHAMPION, x.numpy(), "b2a")
    import mlflow

    from components.tracking.mlflow_store import using

    with using(tracker.uri):
        sig = mlflow.models.get_model_info(f"models:/genzoo-cyclegan@{CHAMPION}").signature
    assert sig.inputs.input_names() == ["images"] and sig.params.params[0].name == "direction"
    with torch.no_grad():
        assert torch.allclose(out, model.translate(x, "b2a"), atol=1e-5)
        assert torch.allclose(back, model.translate(model.translate(x, "b2a"), "a2b"), atol=1e-5)
    with pytest.raises(ConfigError, match=r"--model: dcgan does not translate; models that do: cyclegan"):
        translate_by_alias(tracker, "dcgan", CHAMPION, x.numpy(), "a2b")
    with pytest.raises(ConfigError, match=r"--model: cyclegan translates images and does not sample; use `genzoo translate"):
        load_by_alias(tracker, "cyclegan", CHAMPION, 4)


@pytest.mark.slow  # a whole sweep / server / CLI process: CI's full suite, not the fast tier
def test_cli_translates_the_prepared_test_split_and_a_npy_file(translator, tiny_project, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from tests.conftest import write_params

    tracker = translator[0]
    shutil.copytree(tiny_project / "datasets", tmp_path / "datasets")
    write_params(tmp_path)
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracker.uri)
    genzoo = [sys.executable, "-m", "pipelines.cli", "--params", str(tmp_path / "params.yaml"), "translate",
              "--model", "cyclegan"]
    res = subprocess.run(genzoo + ["-n", "5", "-o", "t.png"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "translated 5 images a2b with genzoo-cyclegan@champion -> t.png" in res.stdout
    assert Image.open(tmp_path / "t.png").size[1] > 3 * 32 * 3 - 1, "three rows: source, translation, cycle back"
    np.save(tmp_path / "in.npy", (np.random.default_rng(0).random((2, 1, 32, 32)) * 255).astype(np.uint8))
    res = subprocess.run(genzoo + ["--images", "in.npy", "--direction", "b2a"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0 and "translated 2 images b2a" in res.stdout, res.stderr
    res = subprocess.run(genzoo + ["--direction", "sideways"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 2 and res.stderr.strip() == "error: --direction: 'sideways'; allowed: a2b, b2a"


def test_a_model_built_on_another_samples_by_alias_from_its_own_export(store):
    """vqvae_prior's export holds its VQ-VAE: the registry rebuilds both from one artifact."""
    tracker = store[0]
    spec = DatasetSpec(name="dsprites", resolution=32, channels=1, classes=["a", "b", "c"], binary=True,
                       counts={"train": 1}, shards={})
    torch.manual_seed(0)
    vq = build("vqvae", {"codebook_size": 8, "code_dim": 4, "channels": 4}, spec)
    prior = build("vqvae_prior", {"channels": 4, "layers": 1}, spec, {"vqvae": vq}).eval()
    path = export_model(tracker.root / "prior.pt", "vqvae_prior", prior)
    run_id = tracker.start_run("train-vqvae_prior", {})
    uri = tracker.log_model(run_id, path, "vqvae_prior")
    tracker.end_run(run_id)
    assert promote(tracker, "vqvae_prior", run_id, uri, {"test_neg_elbo_nats": 300.0, "protocol": PROTOCOL}, 0.01)["promoted"]
    images = load_by_alias(tracker, "vqvae_prior", CHAMPION, 3, seed=2)
    assert torch.allclose(images, prior.sample(3, generator=torch.Generator().manual_seed(2)), atol=1e-5)


def test_promote_stage_keeps_a_decision_until_run_or_metrics_change(tmp_path, monkeypatch):
    """The one `promote` stage for all models: a model whose run and metrics its promotion file already
    decided on keeps that decision (no second version); new metrics register a new version; the decision
    of a model no longer in pipeline.models is removed."""
    import json
    import sys

    from pipelines import promote as stage
    from tests.conftest import write_params

    write_params(tmp_path, {"pipeline": {"models": {"dcgan": "datasets/prepared"}}})
    tracker = Tracker(tracking_uri(None, tmp_path), "genzoo", root=tmp_path)
    spec = DatasetSpec(name="dsprites", resolution=32, channels=1, classes=["a", "b", "c"], binary=True,
                       counts={"train": 1}, shards={})
    (tmp_path / "models/dcgan").mkdir(parents=True)
    path = export_model(tmp_path / "models/dcgan/model.pt", "dcgan",
                        build("dcgan", {"latent_dim": 8, "g_channels": 4, "d_channels": 4}, spec))
    run_id = tracker.start_run("train-dcgan", {})
    run = {"run_id": run_id, "tracking_uri": tracker.uri, "model_uri": tracker.log_model(run_id, path, "dcgan")}
    tracker.end_run(run_id)
    (tmp_path / "models/dcgan/run.json").write_text(json.dumps(run))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/dcgan.json").write_text(json.dumps(candidate(30.0)))
    (tmp_path / "promotion").mkdir()
    (tmp_path / "promotion/gone.json").write_text("{}")  # a model no longer in pipeline.models

    def promote_stage():
        monkeypatch.setattr(sys, "argv", ["promote", "--params", str(tmp_path / "params.yaml")])
        stage.main()
        return json.loads((tmp_path / "promotion/dcgan.json").read_text())

    first = promote_stage()
    assert first["promoted"] and first["version"] == 1 and first["run_id"] == run_id
    assert not (tmp_path / "promotion/gone.json").exists()
    assert promote_stage() == first, "same run and metrics: the decision stands, no second version"
    assert len(tracker.client.search_model_versions("name='genzoo-dcgan'")) == 1
    (tmp_path / "metrics/dcgan.json").write_text(json.dumps(candidate(20.0)))
    second = promote_stage()
    assert second["version"] == 2 and second["promoted"] and int(second["champion_before"]["version"]) == 1
    tracker.client.delete_model_version("genzoo-dcgan", "2")  # the registry lost it: promote registers again
    assert promote_stage()["version"] == 3


def test_a_champion_registered_under_the_old_bound_names_is_still_compared(store):
    """The audit renamed test_iwae_nats -> test_neg_iwae_nats (it always held the negative bound): a champion
    registered before the rename, with the old metric tag and the protocol hash of the old spelling, is compared
    with a candidate under the new name, not refused as another protocol."""
    import hashlib
    import json

    tracker, run_id, uri, _ = store
    protocol = {**PROTOCOL, "likelihood_metrics": "bound: test_neg_elbo_nats, test_neg_iwae_nats (importance samples 8)"}
    old = {k: v for k, v in protocol.items() if k != "versions"}
    old["likelihood_metrics"] = "bound: test_elbo_nats, test_iwae_nats (importance samples 8)"
    old_hash = hashlib.sha256(json.dumps(old, sort_keys=True, default=str).encode()).hexdigest()[:16]
    first = promote(tracker, "vae", run_id, uri, {"test_neg_iwae_nats": 60.0, "protocol": protocol}, 0.01)
    assert first["promoted"] and first["protocol_hash"] == old_hash, "the renamed metrics keep their protocol hash"
    tracker.client.set_model_version_tag("genzoo-vae", first["version"], "genzoo.metric", "test_iwae_nats")  # as before
    worse = promote(tracker, "vae", run_id, uri, {"test_neg_iwae_nats": 59.9, "protocol": protocol}, 0.01)
    assert not worse["promoted"] and "does not beat champion" in worse["reason"], worse["reason"]
    better = promote(tracker, "vae", run_id, uri, {"test_neg_iwae_nats": 50.0, "protocol": protocol}, 0.01)
    assert better["promoted"] and "beats champion" in better["reason"]


def test_the_direction_of_a_primary_metric_comes_from_the_metric_registry():
    """decide() reads lower/higher-is-better from components.evaluation.registry, not a fixed 'lower'."""
    from components.tracking.registry import decide

    def entry(metric, value):
        return {"metric": metric, "value": value, "dataset": "d", "protocol": "p", "version": "1"}

    up, why = decide(entry("cond_accuracy", 0.95), entry("cond_accuracy", 0.80), 0.01)
    assert up and "higher is better" in why, why
    down, why = decide(entry("cond_accuracy", 0.70), entry("cond_accuracy", 0.80), 0.01)
    assert not down and "needs >= 0.808" in why, why
    up, why = decide(entry("fid", 20.0), entry("fid", 30.0), 0.01)
    assert up and "FID (feature space), lower is better" in why, why
