"""Stage scripts as users run them: exit codes, one-line errors, --dry-run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.config import load_config
from components.models import MODELS
from components.tuning.sweep import tune_model
from tests.conftest import REPO, write_params


def stage(name, *args, cwd):
    return subprocess.run([sys.executable, "-m", f"pipelines.{name}", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(cwd)})


@pytest.mark.parametrize("name", ["prepare", "tune", "train", "evaluate"])
def test_bad_params_exit_2_with_one_line_naming_the_key(tmp_path, name):
    write_params(tmp_path, {"models": {"vae": {"kl_weight": -1}}, "train": {"workers": 0}})
    args = ["--model", "vae"] if name != "prepare" else []
    res = stage(name, *args, cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: train.workers:"), res.stderr
    assert not (tmp_path / "datasets").exists() and not (tmp_path / "mlflow.db").exists(), "nothing half-written"


def test_a_model_without_a_sweep_is_recorded_without_the_registry_or_torch(tmp_path):
    # the default run tunes 3 of 12 models: the other 9 tune stages only record that there is no sweep
    write_params(tmp_path, {"tune": {"dcgan": {"num_samples": 0, "space": {"latent_dim": {"type": "choice", "values": [8]}}}}})
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipelines.tune", "--model", "dcgan"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    assert res.returncode == 0 and "tune dcgan: skipped" in res.stdout, res.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")}
    assert "components.config" in imported and not {"torch", "components.models", "ray", "mlflow"} & imported
    recorded = json.loads((tmp_path / "tuned/dcgan.json").read_text())
    assert recorded == tune_model(load_config(tmp_path / "params.yaml"), "dcgan") == {
        "model": "dcgan", "tuned": False, "reason": "tune.dcgan has no trials or no space"}
    # a model that is swept goes through the full validation: a bad space is refused, naming its key
    write_params(tmp_path, {"tune": {"vae": {"num_samples": 2, "space": {"depth": {"type": "int", "low": 1, "high": 3}}}}})
    res = stage("tune", "--model", "vae", cwd=tmp_path)
    assert res.returncode == 2 and "tune.vae.space.depth: not a searchable parameter of vae" in res.stderr, res.stderr


def test_unknown_model_is_refused(tmp_path):
    write_params(tmp_path)
    res = stage("train", "--model", "flowpp", cwd=tmp_path)
    assert res.returncode == 2 and f"unknown model 'flowpp'; allowed: {', '.join(sorted(MODELS))}" in res.stderr


def test_dry_run_prints_the_resolved_config_and_runs_nothing(project):
    res = stage("train", "--model", "vae", "--dry-run", cwd=project)
    assert res.returncode == 0, res.stderr
    resolved = json.loads(res.stdout)
    assert resolved["model_config"]["kl_weight"] == 1.0 and resolved["model_config"]["likelihood"] == "auto"
    assert resolved["dataset"]["name"] == "dsprites" and len(resolved["dataset"]["manifest_sha256"]) == 64
    assert not (project / "mlflow.db").exists() and not (project / "models").exists()


def test_training_without_prepared_data_says_what_to_run(tmp_path):
    write_params(tmp_path)
    res = stage("train", "--model", "vae", cwd=tmp_path)
    assert res.returncode == 2 and "dataset.json: no prepared dataset here; run `dvc repro prepare` first" in res.stderr


def test_evaluate_without_a_model_says_what_to_run(project):
    res = stage("evaluate", "--model", "dcgan", cwd=project)
    assert res.returncode == 2 and "run `dvc repro train@dcgan` first" in res.stderr


def test_a_failed_evaluation_leaves_the_one_before_as_it_was(project):
    (project / "models/dcgan").mkdir(parents=True)
    (project / "models/dcgan/model.pt").write_bytes(b"not a state_dict")
    (project / "evaluation/dcgan").mkdir(parents=True)
    (project / "evaluation/dcgan/samples.png").write_bytes(b"the evaluation before")
    res = stage("evaluate", "--model", "dcgan", cwd=project)
    assert res.returncode != 0 and res.stderr.strip().splitlines()[-1].startswith("error:"), res.stderr[-2000:]
    assert (project / "evaluation/dcgan/samples.png").read_bytes() == b"the evaluation before"
    assert not (project / "evaluation/dcgan.tmp").exists() and not (project / "metrics/dcgan.json").exists()


def test_a_run_in_another_store_is_refused_before_any_evaluation_or_write(project):
    """models/<m>/run.json of a copied project names the other project's store: refused first, in one line naming
    the file, before the model is loaded or features are looked for, and the evaluation before stays."""
    (project / "models/dcgan").mkdir(parents=True)
    (project / "models/dcgan/model.pt").write_bytes(b"never loaded")
    (project / "models/dcgan/run.json").write_text(json.dumps({"run_id": "abc", "tracking_uri": "sqlite:////elsewhere/mlflow.db"}))
    (project / "evaluation/dcgan").mkdir(parents=True)
    (project / "evaluation/dcgan/samples.png").write_bytes(b"the evaluation before")
    res = stage("evaluate", "--model", "dcgan", cwd=project)
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 2 and "models/dcgan/run.json" in last and "a copied project" in last, res.stderr[-2000:]
    assert (project / "evaluation/dcgan/samples.png").read_bytes() == b"the evaluation before"
    assert not (project / "metrics/dcgan.json").exists() and not (project / "evaluation/dcgan.tmp").exists()


def test_prepare_writes_the_dataset(tmp_path):
    write_params(tmp_path)
    res = stage("prepare", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "prepared dsprites 1x32x32 (train 512, val 128, test 256)" in res.stdout
    assert json.loads((tmp_path / "datasets/prepared/dataset.json").read_text())["counts"]["test"] == 256


@pytest.mark.parametrize("out_dir", [".", ".."])
def test_prepare_into_the_project_or_above_deletes_nothing(tmp_path, out_dir):
    project = tmp_path / "project"
    project.mkdir()
    write_params(project, {"data": {"out_dir": out_dir}})
    (project / "notes.txt").write_text("keep me")
    res = stage("prepare", cwd=project)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: data.out_dir: must be a folder inside"), res.stderr
    assert (project / "notes.txt").read_text() == "keep me" and (project / "params.yaml").is_file()


def test_prepare_refuses_a_folder_it_did_not_write(tmp_path):
    # pipeline.models names what each model trains on, so it follows data.out_dir
    write_params(tmp_path, {"data": {"out_dir": "components"}, "pipeline": {"models": {"vae": "components"}}})
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "code.py").write_text("print('mine')")
    res = stage("prepare", cwd=tmp_path)
    assert res.returncode == 2 and "holds files prepare did not write" in res.stderr, res.stderr
    assert (tmp_path / "components" / "code.py").is_file() and not (tmp_path / "components.tmp").exists()


@pytest.mark.parametrize("name,extra,key", [
    ("train", {"train": {"workers": 64}}, "train.workers x train.cpus_per_worker = 64 CPUs"),
    ("tune", {"tune": {"workers_per_trial": 3, "vae": {"num_samples": 2}}, "train": {"cpus_per_worker": 40}},
     "tune.workers_per_trial x train.cpus_per_worker = 120 CPUs"),
])
def test_more_workers_than_local_cpus_is_refused_before_ray_or_mlflow(project, name, extra, key):
    write_params(project, extra)
    res = stage(name, "--model", "vae", cwd=project)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and key in lines[0] and "but this machine has" in lines[0], res.stderr
    assert not (project / "mlflow.db").exists(), "refused before any run was opened"


@pytest.mark.slow
def test_a_train_stage_runs_from_a_path_with_a_space_and_a_non_ascii_character(tiny_project, tmp_path):
    """Ray starts workers through `bash -c "exec <interpreter> ..."`: a project (with its .venv) under such a path
    once failed every worker after minutes. Here the project and the interpreter path both hold "my proj é"."""
    import shutil

    root = tmp_path / "my proj é"
    shutil.copytree(tiny_project / "datasets", root / "datasets")
    write_params(root, {"models": {"vae": {"epochs": 1}}})
    venv = Path(sys.prefix)
    assert Path(sys.executable).is_relative_to(venv), f"the suite runs in a virtual environment ({sys.prefix})"
    (root / ".venv").symlink_to(venv, target_is_directory=True)  # the interpreter as a user's own .venv there
    python = root / ".venv" / Path(sys.executable).relative_to(venv)
    res = subprocess.run([str(python), "-m", "pipelines.train", "--model", "vae"], cwd=root, capture_output=True,
                         text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(root)})
    assert res.returncode == 0, res.stderr[-3000:]
    assert (root / "models/vae/model.pt").is_file() and (root / "mlflow.db").is_file()


@pytest.mark.slow  # starts a local Ray in the stage's process
def test_a_failed_train_stage_keeps_rays_tracebacks_in_a_log_and_ends_with_its_own_line(project):
    """A diverging run (lr 1e30: a non-finite loss in the worker): what Ray and MLflow print on stderr (worker
    reports and tracebacks, INFO lines) goes to .genzoo/logs/train@vae.log, and the terminal's stderr holds the
    stage's own lines, the last one naming that file."""
    write_params(project, {"models": {"vae": {"lr": 1e30}}, "train": {"workers": 2}})
    res = stage("train", "--model", "vae", cwd=project)
    assert res.returncode == 1, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: training vae") and "non-finite loss" in last, res.stderr[-3000:]
    assert "(Ray's messages and tracebacks: .genzoo/logs/train@vae.log)" in last
    assert "Traceback" not in res.stderr and "RayTrainWorker" not in res.stderr, res.stderr[-3000:]
    assert all(line.startswith(("error:", "[timing]")) for line in res.stderr.strip().splitlines()), res.stderr[-3000:]
    log = (project / ".genzoo/logs/train@vae.log").read_text()
    assert "RayTrainWorker" in log and "non-finite loss" in log, log[-3000:]
    assert "epoch 1/" in res.stdout or "worker(s) on" in res.stdout, "progress stays on the terminal"
