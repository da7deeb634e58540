"""The MLflow adapter against a real SQLite store."""

import time

import pytest

from components.errors import TrackingError
from components.tracking import Tracker, tracking_uri
from components.tracking.mlflow_store import flatten


def test_uri_precedence(tmp_path, monkeypatch):
    assert tracking_uri(None, tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert tracking_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/m.db")
    assert tracking_uri("http://127.0.0.1:5000", tmp_path) == "sqlite:////elsewhere/m.db"


def test_history_is_logged_once_per_epoch_even_when_repeated(tmp_path):
    tracker = Tracker(tracking_uri(None, tmp_path), "genzoo", root=tmp_path)
    run_id = tracker.start_run("t", {"a": {"b": 1, "c": [1, 2]}})
    history = [{"epoch": 1, "loss": 3.0}, {"epoch": 2, "loss": 2.0}]
    assert tracker.log_history(run_id, history[:1]) == 1
    assert tracker.log_history(run_id, history) == 1, "only the new epoch"
    assert tracker.log_history(run_id, history) == 0
    assert tracker.metric_history(run_id, "loss") == [(1, 3.0), (2, 2.0)]
    assert tracker.get_run(run_id).data.params == {"a.b": "1", "a.c": "[1, 2]"}
    assert tracker.client.get_experiment(tracker.experiment_id).name == "genzoo"


def test_failed_run_records_the_reason(tmp_path):
    tracker = Tracker(tracking_uri(None, tmp_path), "genzoo", root=tmp_path)
    run_id = tracker.start_run("t", {})
    tracker.end_run(run_id, failed=True, reason="non-finite loss in phase 'G' at step 3")
    run = tracker.get_run(run_id)
    assert run.info.status == "FAILED" and "phase 'G'" in run.data.tags["genzoo.failure"]


def test_unreachable_server_fails_fast_with_one_line():
    t0 = time.perf_counter()
    with pytest.raises(TrackingError, match=r"MLflow tracking server http://127.0.0.1:9 is unreachable") as err:
        Tracker("http://127.0.0.1:9", "genzoo")
    assert time.perf_counter() - t0 < 10 and "\n" not in str(err.value)


def test_flatten():
    assert flatten({"a": {"b": {"c": 1}}, "d": "x"}) == {"a.b.c": "1", "d": "x"}


def test_a_copied_project_never_writes_into_the_original(tmp_path):
    """cp -a of a project: its mlflow.db names the original's artifact folder and its run.json the original's
    store. The copy refuses both with one line; the original's files are untouched."""
    import json
    import shutil

    from components.config import load_config
    from components.errors import DataError
    from components.tracking import own_run_store
    from tests.conftest import write_params

    original, copy = tmp_path / "original", tmp_path / "copy"
    original.mkdir()
    write_params(original)
    tracker = Tracker(tracking_uri(None, original), "genzoo", root=original)
    run_id = tracker.start_run("train-vae", {})
    tracker.log_dict(run_id, {"a": 1}, "x.json")
    (original / "models/vae").mkdir(parents=True)
    (original / "models/vae/run.json").write_text(json.dumps({"run_id": run_id, "tracking_uri": tracker.uri}))
    shutil.copytree(original, copy, symlinks=True)
    before = sorted(p.relative_to(original) for p in original.rglob("*"))
    mtime = (original / "mlflow.db").stat().st_mtime_ns

    params = load_config(copy / "params.yaml")
    with pytest.raises(DataError, match=r"copy/models/vae/run.json: its run \w+ is in sqlite:///.*original/mlflow.db, "
                                        r"but this project tracks to sqlite:///.*copy/mlflow.db") as err:
        own_run_store(params, json.loads((copy / "models/vae/run.json").read_text()), copy / "models/vae/run.json")
    assert "\n" not in str(err.value)
    with pytest.raises(TrackingError, match=r"copy/mlflow.db: experiment 'genzoo' keeps its artifacts in .*original/mlartifacts, "
                                            r"outside this project"):
        Tracker(tracking_uri(None, copy), "genzoo", root=copy).start_run("train-vae", {})
    assert sorted(p.relative_to(original) for p in original.rglob("*")) == before
    assert (original / "mlflow.db").stat().st_mtime_ns == mtime
    fresh = Tracker(tracking_uri(None, copy), "genzoo-copy", root=copy)  # the fix the message names
    assert fresh.client.get_experiment(fresh.experiment_id).artifact_location.startswith((copy / "mlartifacts").as_uri())


def test_a_damaged_store_is_refused_with_its_name_and_left_as_it_was(tmp_path):
    from components.errors import ConfigError

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    tracker = Tracker(uri, "genzoo", root=tmp_path)
    tracker.end_run(tracker.start_run("a-run", {"x": 1}))
    good = db.read_bytes()
    cases = {"empty": b"", "overwritten": b"not a database at all\n" * 100, "truncated": good[: len(good) // 3]}
    for what, content in cases.items():
        db.write_bytes(content)
        with pytest.raises(ConfigError, match=rf"{db}: .*(move it away to start a fresh store)"):
            Tracker(uri, "genzoo", root=tmp_path)
        assert db.read_bytes() == content, f"{what}: nothing written"
    db.write_bytes(good)
    assert Tracker(uri, "genzoo", root=tmp_path).client.search_experiments(), "a sound store opens"


def test_a_dvc_queued_experiment_tracks_to_the_project_that_queued_it(tmp_path):
    """DVC runs queued and --temp experiments in <project>/.dvc/tmp/exps/<tmp>/: their runs and registered models
    belong in the project's store, not in a copy DVC deletes afterwards (tests/pipelines/test_dvc_repro.py runs one)."""
    from components.tracking.mlflow_store import tracking_home, tracking_uri

    workspace = tmp_path / "proj/.dvc/tmp/exps/tmpab12cd"
    workspace.mkdir(parents=True)
    assert tracking_home(workspace) == (tmp_path / "proj").resolve()
    assert tracking_uri(None, workspace) == f"sqlite:///{(tmp_path / 'proj/mlflow.db').resolve()}"
    assert tracking_home(tmp_path / "proj") == (tmp_path / "proj").resolve(), "a project is its own home"
