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
