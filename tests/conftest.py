"""Shared fixtures: tiny prepared datasets, tiny params files, one local Ray per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MNIST_T10K = REPO / "tests" / "data" / "mnist-t10k"  # the real MNIST test split, in the repository (README there)

TINY = {
    "data": {"n_train": 512, "n_val": 128, "n_test": 256, "shard_rows": 256},
    "train": {"workers": 2, "log_every": 1000, "max_failures": 2},
    "models": {
        "vae": {"hidden_dim": 64, "latent_dim": 4, "batch_size": 64, "epochs": 2},
        "dcgan": {"latent_dim": 8, "g_channels": 8, "d_channels": 8, "batch_size": 64, "epochs": 1},
        "cvae": {"hidden_dim": 64, "latent_dim": 4, "batch_size": 64, "epochs": 2},
        "cgan": {"latent_dim": 8, "g_channels": 8, "d_channels": 8, "batch_size": 64, "epochs": 1},
        "infogan": {"latent_dim": 8, "g_channels": 8, "d_channels": 8, "batch_size": 64, "epochs": 1},
        "sngan": {"latent_dim": 8, "g_channels": 8, "d_channels": 8, "batch_size": 64, "epochs": 1},
        "pixelcnn": {"channels": 8, "layers": 2, "batch_size": 64, "epochs": 1},
        "cpixelcnn": {"channels": 8, "layers": 2, "batch_size": 64, "epochs": 1},
    },
    "pipeline": {"models": {"vae": "datasets/prepared", "dcgan": "datasets/prepared"}},
    "tune": {m: {"num_samples": 0} for m in ("vae", "dcgan", "wgan", "wgan_gp", "cvae", "cgan", "infogan", "sngan",
                                             "pixelcnn", "cpixelcnn", "vqvae", "vqvae_prior", "cyclegan")},
    "evaluate": {"grid_size": 16, "traversal_dims": 3, "iw_samples": 20, "feature_epochs": 1,
                 "min_feature_accuracy": 0.3},
}


MODEL_FILES = {f.stem for f in (REPO / "components/models").glob("*.py")}  # write_params completes their entries
REPLACED = {("pipeline", "models")}  # mappings an overlay replaces as a whole (the model list)


def deep_update(base: dict, extra: dict, path: tuple = ()) -> dict:
    out = dict(base)
    for k, v in extra.items():
        merge = isinstance(v, dict) and (*path, k) not in REPLACED
        out[k] = deep_update(out.get(k, {}), v, (*path, k)) if merge else v
    return out


def write_params(root: Path, extra: dict | None = None) -> Path:
    """params.yaml in root: the repo's defaults overlaid with TINY and `extra`. A pipeline.models entry given as
    a path alone (`vae: datasets/prepared`) is written in full: that data and the model files vae imports."""
    from components.config import pipeline_entry

    base = yaml.safe_load((REPO / "params.yaml").read_text())
    params = deep_update(deep_update(base, TINY), extra or {})
    models = params.get("pipeline", {}).get("models")
    if isinstance(models, dict):
        params["pipeline"]["models"] = {m: pipeline_entry(m, v) if isinstance(v, str) and m in MODEL_FILES else v
                                        for m, v in models.items()}
    path = Path(root) / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    """A project directory with tiny params and a prepared dSprites dataset (shared, read-only)."""
    from components.config import load_config
    from components.data.sources import prepare

    root = tmp_path_factory.mktemp("project")
    prepare(load_config(write_params(root)))
    return root


@pytest.fixture
def project(tiny_project, tmp_path) -> Path:
    """A fresh project directory (own MLflow store and checkpoints) sharing the prepared dataset."""
    shutil.copytree(tiny_project / "datasets", tmp_path / "datasets")
    write_params(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def _ray_shutdown_at_exit():
    yield
    import ray

    ray.shutdown()


@pytest.fixture(scope="module")
def ray_local(_ray_shutdown_at_exit):
    """A local Ray (2 CPUs even on a 1-core box), shared by the session's modules; a module that left
    for its own cluster (tests/training/test_multinode.py) gets a fresh one."""
    import ray

    from components.training.ray_train import connect

    connect(num_cpus=2, root=REPO)  # no-op while one is connected
    return ray


RAY_PROCESS_MARKERS = ("ray::", "raylet", "gcs_server", "ray/dashboard", "default_worker.py", "log_monitor.py",
                       "ray/autoscaler", "runtime_env/agent")


def ray_processes() -> dict[int, str]:
    """Live Ray processes on this machine (head and node daemons, workers, dashboards): {pid: command}."""
    import psutil

    found = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["pid"] != os.getpid() and any(m in cmd for m in RAY_PROCESS_MARKERS):
            found[proc.info["pid"]] = cmd[:120]
    return found


def leftover_ray_processes(before: dict[int, str], grace_s: float = 30.0) -> dict[int, str]:
    """Ray processes started since `before` that are still alive after up to `grace_s` seconds."""
    import time

    deadline = time.time() + grace_s
    while True:
        left = {pid: cmd for pid, cmd in ray_processes().items() if pid not in before}
        if not left or time.time() > deadline:
            return left
        time.sleep(0.5)



@pytest.fixture(autouse=True)
def _no_user_tracking_env(monkeypatch):
    """Tests choose their own tracking store and Ray address."""
    for key in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    yield
    os.environ.pop("GENZOO_TEST", None)
