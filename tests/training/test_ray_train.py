"""Training on a real local Ray with 2 DDP workers (gloo), tracked in a real MLflow SQLite store."""


import os

import mlflow
import pytest
import torch

from components.config import load_config
from components.errors import TrainingError
from components.tracking import Tracker
from components.training.job import finish_run, run_training
from tests.conftest import write_params

STEPS_PER_EPOCH = 512 // (64 * 2)  # tiny n_train / (batch_size * workers)


@pytest.fixture(scope="module")
def trained(tiny_project, tmp_path_factory, ray_local):
    """One 2-worker VAE run shared by the tests below: 3 epochs, and rank 1's process dies once after
    epoch 2 (once Ray has registered that checkpoint), so one run covers the data split, logging,
    export and the restart from a checkpoint."""
    import shutil

    root = tmp_path_factory.mktemp("trained")
    shutil.copytree(tiny_project / "datasets", root / "datasets")
    params = load_config(write_params(root, {"models": {"vae": {"epochs": 3}}, "mlflow": {"system_metrics_interval": 0.5}}))
    marker = root / "crashed"
    outcome = run_training(params, "vae", fault={"rank": 1, "epoch": 2, "marker": str(marker)})
    from components.models.io import export_model

    model_file = export_model(root / "models/vae/model.pt", "vae", outcome.model)
    model_uri = finish_run(outcome, model_file, params)
    return params, outcome, model_uri


def test_two_workers_split_the_data_and_finish(trained):
    _, outcome, _ = trained
    assert outcome.state["epoch"] == 3
    assert outcome.state["step"] == 3 * STEPS_PER_EPOCH, "each step consumed one batch per worker"
    assert [h["epoch"] for h in outcome.state["history"]] == [1, 2, 3]
    assert outcome.state["history"][-1]["neg_elbo"] < outcome.state["history"][0]["neg_elbo"]


def test_crashed_worker_resumes_from_checkpoint_step(trained):
    params, outcome, _ = trained
    assert (params.root / "crashed").read_text().startswith("killed after epoch 2")
    # Rank 1 dies once Ray has registered epoch 2's checkpoint: the restarted group resumes there.
    (resume,) = outcome.state["resumes"]
    assert (resume["epoch"], resume["step"]) == (2, 2 * STEPS_PER_EPOCH), resume
    steps = [s for s, _ in Tracker(outcome.tracking_uri, "genzoo").metric_history(outcome.run_id, "neg_elbo")]
    assert steps == [1, 2, 3], "no duplicated or missing epochs in MLflow after the restart"


def test_mlflow_run_has_params_metrics_and_artifacts(trained):
    params, outcome, _ = trained
    tracker = Tracker(outcome.tracking_uri, "genzoo")
    run = tracker.get_run(outcome.run_id)
    assert outcome.tracking_uri == f"sqlite:///{params.root / 'mlflow.db'}"
    assert run.info.status == "FINISHED"
    assert run.data.params["model_config.kl_weight"] == "1.0"
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(run.data.metrics), \
        "MLflow's system metrics of the machine rank 0 trained on (mlflow.system_metrics_interval)"
    assert run.data.params["train.workers"] == "2"
    assert run.data.params["dataset.manifest_sha256"] == outcome.spec.manifest_sha256
    assert run.data.tags["genzoo.dataset_sha256"] == outcome.spec.manifest_sha256
    steps = [s for s, _ in tracker.metric_history(outcome.run_id, "neg_elbo")]
    assert steps == [1, 2, 3], "one point per epoch, logged by rank 0 only"
    # the quality curve (train.quality_images): measured on rank 0 after every epoch, logged with step = epoch
    quality = tracker.metric_history(outcome.run_id, "val_neg_elbo")
    assert [s for s, _ in quality] == [1, 2, 3] and all(v > 0 for _, v in quality)
    assert [s for s, _ in tracker.metric_history(outcome.run_id, "images_seen")] == [1, 2, 3]
    assert [h["images_seen"] for h in outcome.state["history"]] == [512, 1024, 1536]
    artifacts = tracker.list_artifacts(outcome.run_id)
    assert "resolved_config.json" in artifacts
    experiment = tracker.client.get_experiment_by_name("genzoo")
    assert experiment.artifact_location == (params.root / "mlartifacts").as_uri()


def test_logged_model_reloads_and_samples_without_training(trained):
    _, outcome, model_uri = trained
    mlflow.set_tracking_uri(outcome.tracking_uri)
    loaded = mlflow.pyfunc.load_model(model_uri)
    images = loaded.predict({"n": [6], "seed": [1]})
    assert images.shape == (6, 1, 32, 32) and images.min() >= 0 and images.max() <= 1
    assert loaded.unwrap_python_model().family == "vae"
    expected = outcome.model.sample(6, generator=torch.Generator().manual_seed(1)).numpy()
    assert abs(images - expected).max() < 1e-5
    info = mlflow.models.Model.load(model_uri)  # a signature and an input example, so serving tools can check input
    assert info.signature.inputs.input_names() == ["n", "seed"]
    assert info.signature.outputs.inputs[0].shape == (-1, 1, 32, 32)
    example = info.load_input_example(mlflow.artifacts.download_artifacts(model_uri))
    assert loaded.predict(example).shape == (4, 1, 32, 32), "the logged example is a valid input"
    with pytest.raises(Exception, match="seed"):
        loaded.predict({"n": [2], "seed": ["zero"]})


def test_non_finite_loss_stops_the_run_and_marks_it_failed(project, ray_local):
    params = load_config(write_params(project, {"models": {"vae": {"lr": 1e30}}, "train": {"max_failures": 2}}))
    with pytest.raises(TrainingError, match=r"non-finite loss .* phase 'elbo' at step \d+"):
        run_training(params, "vae")
    tracker = Tracker(f"sqlite:///{project / 'mlflow.db'}", "genzoo")
    runs = tracker.client.search_runs([tracker.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FAILED"
    assert "phase 'elbo'" in runs[0].data.tags["genzoo.failure"]
    assert not any((project / ".genzoo/ray").glob("vae-*")), "a diverged run leaves no checkpoint to resume from"


@pytest.mark.timeout(300)
def test_no_space_left_is_not_retried_and_the_last_line_names_the_path(project, ray_local):
    """An OSError a restart cannot fix (here ENOSPC, raised by rank 0 at epoch 2 of 3 on every attempt) stops the
    run at once: Ray's restarted worker group returns without redoing the epoch, and the error names the run's
    storage path, what to do, and the checkpoint a rerun resumes from (before: three identical doomed epochs)."""
    marker = project / "enospc"
    params = load_config(write_params(project, {"models": {"vae": {"epochs": 3}}, "train": {"max_failures": 2}}))
    with pytest.raises(TrainingError) as info:
        run_training(params, "vae", fault={"rank": 0, "epoch": 2, "marker": str(marker), "errno": "ENOSPC"})
    message = str(info.value)
    assert "not retried" in message and "No space left on device" in message, message
    assert str(project / ".genzoo/ray") in message and "free space" in message, message
    assert "resumes from epoch 1's checkpoint" in message, message
    assert marker.read_text().splitlines() == ["ENOSPC at epoch 2"], "epoch 2 was attempted once, not retried"
    import ray

    assert not [a for a in ray.util.list_named_actors(all_namespaces=True) if "genzoo-verdict" in str(a)], \
        "the verdict is taken"


@pytest.mark.timeout(300)
def test_two_worker_gan_records_sample_quality_without_waiting_for_rank_1(project, ray_local):
    """The quality check runs on rank 0 only, inside an initialised process group: a metric that synchronised
    across ranks (torchmetrics does by default) would wait forever for rank 1, which never computes it."""
    from components.evaluation.features import featurize

    params = load_config(write_params(project, {"evaluate": {"feature_epochs": 1}, "train": {"quality_images": 64}}))
    featurize(params, project / "features", log=lambda *_: None)
    outcome = run_training(params, "dcgan")
    (h,) = outcome.state["history"]
    assert {"q_fid", "q_precision", "q_recall", "q_floor_fid"} <= set(h) and h["validate_time_s"] < 60
    tracker = Tracker(outcome.tracking_uri, "genzoo")
    assert [s for s, _ in tracker.metric_history(outcome.run_id, "q_fid")] == [1]


def _listening_after_all_reduce(config):
    """A worker's loop: one all_reduce, then the TCP addresses this process listens on, written by rank 0."""
    import json
    from pathlib import Path

    import psutil
    import torch.distributed as dist

    t = torch.ones(1)
    dist.all_reduce(t)
    listening = sorted({c.laddr.ip for c in psutil.Process().net_connections("tcp") if c.status == psutil.CONN_LISTEN})
    if dist.get_rank() == 0:
        Path(config["out"]).write_text(json.dumps({"sum": t.item(), "listening": listening}))


LOOPBACK = ("127.", "::1", "::ffff:127.")


@pytest.mark.timeout(300)
def test_a_local_worker_group_listens_on_loopback_only(ray_local, tmp_path):
    """torch's TCPStore (Ray Train's rendezvous) listens on every interface whatever MASTER_ADDR says; a local
    session's worker group joins through a FileStore instead (ray_train._torch_config), so rank 0 listens on
    loopback only. Ray Train's own TorchConfig, run the same way, shows the wildcard listener the test catches."""
    import json

    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from components.training.ray_session import session_dir
    from components.training.ray_train import _torch_config

    stores = session_dir() / "pg"
    stores.mkdir(exist_ok=True)
    dead = stores / "999999999-left-by-a-killed-controller"
    dead.mkdir()
    before = set(stores.iterdir())

    def run(torch_config, name):
        out = tmp_path / f"{name}.json"
        TorchTrainer(_listening_after_all_reduce, train_loop_config={"out": str(out)}, torch_config=torch_config,
                     scaling_config=ray.train.ScalingConfig(num_workers=2),
                     run_config=ray.train.RunConfig(name=name, storage_path=str(tmp_path))).fit()
        return json.loads(out.read_text())

    ours = run(_torch_config("gloo"), "filestore")
    assert ours["sum"] == 2.0, "the two workers form one process group"
    assert all(ip.startswith(LOOPBACK) for ip in ours["listening"]), ours["listening"]
    theirs = run(TorchConfig(backend="gloo"), "tcpstore")
    assert theirs["sum"] == 2.0 and any(not ip.startswith(LOOPBACK) for ip in theirs["listening"]), theirs["listening"]
    assert not set(stores.iterdir()) - before, "the store's directory is removed at shutdown"
    assert not dead.exists(), "a store whose controller died is removed by the next worker group"


def test_every_train_stage_and_trial_uses_the_file_store_backend(trained):
    """make_trainer, which train stages and Tune trials both call, builds the trainer with _torch_config."""
    from components.data import load_spec
    from components.training.job import base_job
    from components.training.ray_train import make_trainer

    params, outcome, _ = trained
    spec = load_spec(params.path(params.data.out_dir))
    job = base_job(params, "vae", spec, params.model_config_for("vae").model_dump(), outcome.tracking_uri)
    assert type(make_trainer(job).backend_config).backend_cls.fget(None).__name__ == "_FileStoreBackend"


@pytest.mark.parametrize(("setting", "cluster_gpus", "expected"), [
    ("auto", 0, (False, "gloo")), ("auto", 8, (True, "nccl")), ("yes", 0, (True, "nccl")), ("yes", 1, (True, "nccl")),
    ("no", 0, (False, "gloo")), ("no", 8, (False, "gloo"))])
def test_the_gpu_branch_picks_nccl_for_gpu_workers_and_gloo_otherwise(setting, cluster_gpus, expected):
    """The choice the GPU profile (train.use_gpu: yes) makes on a GPU cluster, checked without a GPU."""
    from components.training.ray_train import placement

    assert placement(setting, cluster_gpus) == expected


@pytest.mark.parametrize("backend", ["gloo", "nccl"])
def test_both_backends_bind_their_sockets_to_the_loopback_interface_unless_the_user_chose(backend, monkeypatch):
    """What a one-node worker group runs before joining: gloo's pair sockets and NCCL's bootstrap sockets (the GPU
    profile's) on the interface that holds 127.0.0.1; a user's own GLOO_/NCCL_SOCKET_IFNAME is kept."""
    import psutil

    from components.training.ray_train import SOCKET_IFNAME, _sockets_on_loopback

    var = SOCKET_IFNAME[backend]
    monkeypatch.delenv(var, raising=False)
    _sockets_on_loopback(backend)
    addrs = psutil.net_if_addrs()[os.environ[var]]
    assert any(a.address == "127.0.0.1" for a in addrs), os.environ[var]
    monkeypatch.setenv(var, "eth7")
    _sockets_on_loopback(backend)
    assert os.environ[var] == "eth7"
