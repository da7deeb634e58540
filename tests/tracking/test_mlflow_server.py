"""The train, tune and promote path against a real `mlflow server` process (SQLite backend, local
artifact store) given by MLFLOW_TRACKING_URI; an unreachable server fails fast with a clear message."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from components.config import load_config
from components.errors import TrackingError
from components.evaluation.features import featurize
from components.evaluation.run import evaluate_model
from components.models.io import export_model
from components.tracking import Tracker
from components.tracking.registry import CHAMPION, load_by_alias
from components.training.job import finish_run, run_training
from components.tuning.sweep import tune_model
from pipelines.promote import promote_model
from tests.conftest import write_params


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_server(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the server's whole process group: its uvicorn worker would otherwise go on serving the port."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def start_server(tmp_path: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "store"),
         "--workers", "1"],
        # no job-execution consumers: 7 huey processes polling at ~15 % CPU each would starve 2 cores
        env=dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # its own group: see kill_server
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(uri + "/health", timeout=2).read()
            break
        except OSError:
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start within 120 s")
    return proc


@pytest.fixture
def server(tmp_path):
    port = free_port()
    proc = start_server(tmp_path, port)
    yield f"http://127.0.0.1:{port}", proc
    kill_server(proc)


@pytest.mark.slow  # a whole sweep / server / CLI process: CI's full suite, not the fast tier
def test_train_tune_promote_against_a_server(project, server, monkeypatch, ray_local):
    uri, proc = server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = load_config(write_params(project, {"models": {"vae": {"epochs": 1}}, "tune": {
        "vae": {"num_samples": 1, "max_epochs": 1, "space": {"kl_weight": {"type": "uniform", "low": 0.5, "high": 2.0}}}}}))
    featurize(params, project / "features", log=lambda *_: None)
    sweep = tune_model(params, "vae")
    assert sweep["tuned"] and len(sweep["trials"]) == 1
    # a one-worker trial trains in its Tune actor and logs to its nested run like a Ray Train run would
    server_tracker = Tracker(uri, "genzoo")
    (trial,) = server_tracker.client.search_runs([server_tracker.experiment_id],
                                                 f"tags.mlflow.parentRunId = '{sweep['sweep_run_id']}'")
    assert trial.info.status == "FINISHED" and trial.data.tags["genzoo.workers"] == "1"
    assert "val_neg_elbo" in trial.data.metrics
    (project / "tuned").mkdir()
    (project / "tuned/vae.json").write_text(json.dumps(sweep))

    outcome = run_training(params, "vae")
    assert outcome.tracking_uri == uri and outcome.resolved["provenance"]["kl_weight"] == "tuned/vae.json"
    model_file = export_model(project / "models/vae/model.pt", "vae", outcome.model)
    model_uri = finish_run(outcome, model_file, params)
    (project / "models/vae/run.json").write_text(json.dumps({"run_id": outcome.run_id, "tracking_uri": uri,
                                                              "model_uri": model_uri}))
    metrics = evaluate_model(params, "vae", model_file, project / "evaluation/vae", project / "features", log=lambda *_: None)
    (project / "metrics").mkdir()
    (project / "metrics/vae.json").write_text(json.dumps(metrics))
    decision = promote_model(params, "vae")
    assert decision["promoted"] and decision["version"] == 1

    tracker = Tracker(uri, "genzoo")
    run = tracker.get_run(outcome.run_id)
    assert run.info.status == "FINISHED" and [s for s, _ in tracker.metric_history(outcome.run_id, "neg_elbo")] == [1]
    assert int(tracker.client.get_model_version_by_alias("genzoo-vae", CHAMPION).version) == 1
    assert load_by_alias(tracker, "vae", CHAMPION, 4).shape == (4, 1, 32, 32)
    assert not (project / "mlflow.db").exists(), "nothing went to the local store"

    kill_server(proc)
    t0 = time.perf_counter()
    with pytest.raises(TrackingError, match=f"MLflow tracking server {uri} is unreachable"):
        promote_model(params, "vae")
    assert time.perf_counter() - t0 < 10


@pytest.mark.slow
def test_a_server_that_dies_mid_run_fails_the_stage_then_its_run_is_closed(project, server, tmp_path):
    """SIGKILL of the server during training: the train stage exits within a bounded time with one error line
    (MLflow's retries are bounded); once the server is back, the next train run marks the abandoned run FAILED."""
    from tests.conftest import REPO

    uri, proc = server
    write_params(project, {"models": {"vae": {"epochs": 2000}}, "train": {"max_failures": 0, "checkpoint_every": 500}})
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "pipelines.train", "--model", "vae"]
    stage = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tracker = Tracker(uri, "genzoo")
    deadline = time.time() + 300
    while time.time() < deadline and stage.poll() is None:
        runs = tracker.client.search_runs([tracker.experiment_id], "tags.`genzoo.stage` = 'train'")
        if runs and runs[0].data.metrics:  # its first epoch is logged
            break
        time.sleep(0.5)
    (first,) = runs
    kill_server(proc, signal.SIGKILL)
    t0 = time.time()
    _, err = stage.communicate(timeout=600)
    assert stage.returncode == 1 and time.time() - t0 < 120, err[-3000:]
    line = err.strip().splitlines()[-1]  # the stage's own line last: Ray's messages are in .genzoo/logs
    assert line == (f"error: training vae failed (restarts allowed: train.max_failures=0): the MLflow tracking server "
                    f"{uri} stopped answering; a rerun resumes from its last checkpoint "
                    "(Ray's messages and tracebacks: .genzoo/logs/train@vae.log)"), err[-3000:]

    proc = start_server(tmp_path, int(uri.rsplit(":", 1)[1]))  # the same store comes back
    try:
        assert Tracker(uri, "genzoo").get_run(first.info.run_id).info.status == "RUNNING", "nobody could close it"
        write_params(project, {"models": {"vae": {"epochs": 1}}})  # any next train run of the model
        again = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]
        closed = Tracker(uri, "genzoo").get_run(first.info.run_id)
        assert closed.info.status == "FAILED" and "ended without closing the run" in closed.data.tags["genzoo.failure"]
    finally:
        kill_server(proc)
