"""MLflow adapter: experiment `genzoo`, runs, metrics, figures and logged models.

URI: `MLFLOW_TRACKING_URI` wins, then params `mlflow.tracking_uri`, else `sqlite:///<project>/mlflow.db`
with artifacts in `<project>/mlartifacts`. All calls go through an explicit `MlflowClient` and a run id,
so Ray workers (rank 0) can log to the driver's run without global state.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient

from components.errors import TrackingError

ARTIFACTS_DIR = "mlartifacts"
# A tracking server that dies must fail a stage within seconds, not after MLflow's defaults (7 retries with
# exponential backoff, 120 s timeouts: minutes per call). Overridable; Ray jobs carry them to their workers.
MLFLOW_ENV = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "20", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
              "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
for _key, _value in MLFLOW_ENV.items():
    os.environ.setdefault(_key, _value)


def tracking_home(root: Path) -> Path:
    """The project whose SQLite store (mlflow.db, mlartifacts/) a stage uses: the project itself, or, for a stage
    that DVC runs in a queued or --temp experiment's workspace (<project>/.dvc/tmp/exps/<tmp>/...), the project
    that queued it, so the experiment's runs and registered models land in the user's store and not in a copy
    that DVC deletes afterwards (whose empty store would also disown the runs models/*/run.json name)."""
    parts = Path(root).resolve().parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return Path(root).resolve()


def tracking_uri(configured: str | None, root: Path) -> str:
    """The URI to use: MLFLOW_TRACKING_URI, else the configured one, else the project's SQLite store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured
    return uri or f"sqlite:///{(tracking_home(root) / 'mlflow.db').resolve()}"


def own_run_store(params, run: dict, run_file: Path) -> str:
    """The tracking URI for a run recorded in models/<m>/run.json, resolved from this project and environment
    (never from the absolute URI the file recorded): if they differ, the run lives in another store (a copied
    project, a changed MLFLOW_TRACKING_URI) and nothing is written to it."""
    uri = tracking_uri(params.mlflow.tracking_uri, params.root)
    if run.get("tracking_uri") != uri:
        from components.errors import DataError

        raise DataError(f"{run_file}: its run {run.get('run_id')} is in {run.get('tracking_uri')}, but this project "
                        f"tracks to {uri} (a copied project, or MLFLOW_TRACKING_URI changed?); rerun the model's train stage")
    return uri


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"a": {"b": 1}} -> {"a.b": "1"} for MLflow params."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, (list, tuple)) else str(v)
    return out


@contextmanager
def using(uri: str):
    """mlflow's fluent API pointed at `uri` for the block only: mlflow.set_tracking_uri also sets
    MLFLOW_TRACKING_URI in os.environ, which would leak this store into later runs of the process."""
    prev_env, prev = os.environ.get("MLFLOW_TRACKING_URI"), mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(prev)
        if prev_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = prev_env


def check_sqlite_store(path: Path) -> None:
    """Refuse a SQLite tracking store that exists but is not one MLflow can read, before anything is written:
    MLflow would otherwise re-create an empty (0-byte) file silently, losing the registry while models/*/run.json
    still name its runs, or fail deep in SQLAlchemy without naming the file. A missing file is fine (MLflow
    creates it)."""
    import sqlite3

    from components.errors import ConfigError

    if not path.exists():
        return
    what = "restore it from a backup, or move it away to start a fresh store (runs and registry are then lost)"
    if path.is_dir() or path.stat().st_size == 0:
        raise ConfigError(f"{path}: the MLflow tracking store is {'a directory' if path.is_dir() else 'empty (0 bytes)'}; {what}")
    with open(path, "rb") as f:
        header = f.read(16)
    if header != b"SQLite format 3\x00":
        raise ConfigError(f"{path}: not an SQLite database (overwritten?), so not an MLflow tracking store; {what}")
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            ok = con.execute("PRAGMA quick_check").fetchone()[0]
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as err:
        raise ConfigError(f"{path}: damaged SQLite database ({err}); {what}") from None
    if ok != "ok":
        raise ConfigError(f"{path}: damaged SQLite database (integrity check: {ok}); {what}")
    if tables and not {"experiments", "runs"} <= tables:
        raise ConfigError(f"{path}: an SQLite database but not an MLflow tracking store (no experiments/runs tables); {what}")


class Tracker:
    """One experiment in one tracking store."""

    def __init__(self, uri: str, experiment: str = "genzoo", root: Path | None = None):
        self.uri, self.experiment_name = uri, experiment
        self._check_reachable()
        self.client = MlflowClient(tracking_uri=uri)
        self.root = tracking_home(root if root is not None else Path.cwd())
        self._experiment_id: str | None = None

    def _check_reachable(self, timeout: float = 5.0) -> None:
        if self.uri.startswith("sqlite:///"):
            check_sqlite_store(Path(self.uri.removeprefix("sqlite:///")))
            return
        if not self.uri.startswith(("http://", "https://")):
            return
        try:
            urllib.request.urlopen(self.uri.rstrip("/") + "/health", timeout=timeout).read()
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise TrackingError(f"MLflow tracking server {self.uri} is unreachable ({reason}); start it "
                                "or unset MLFLOW_TRACKING_URI to use the local SQLite store") from None

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment_name)
            if exp is not None:
                self._check_artifact_location(exp.artifact_location)
                self._experiment_id = exp.experiment_id
            else:
                location = None
                if self.uri.startswith("sqlite:") or "://" not in self.uri:
                    location = (self.root / ARTIFACTS_DIR).resolve().as_uri()
                self._experiment_id = self.client.create_experiment(self.experiment_name, artifact_location=location)
        return self._experiment_id

    def _check_artifact_location(self, location: str) -> None:
        """This project's own SQLite store must keep its artifacts in this project: a copied project (cp -a)
        carries the original's absolute artifact location and would write into the original."""
        own = f"sqlite:///{(self.root / 'mlflow.db').resolve()}"
        if self.uri != own or not (location or "").startswith("file:"):
            return
        path = Path(urllib.parse.urlparse(location).path)
        if not path.is_relative_to(self.root.resolve()):
            raise TrackingError(f"{own.removeprefix('sqlite:///')}: experiment '{self.experiment_name}' keeps its "
                                f"artifacts in {path}, outside this project (a copy of another project?); set "
                                "mlflow.experiment to a new name, or remove mlflow.db and mlartifacts/ here")

    # -- runs ----------------------------------------------------------------------------------------
    def close_abandoned_runs(self, stage: str, model: str) -> list[str]:
        """Mark FAILED the RUNNING runs of this stage and model whose process on this machine is gone (it was
        killed, or the tracking server was unreachable when it tried to close them). Returns their ids."""
        import socket

        from components.process import start_time

        query = f"tags.`genzoo.stage` = '{stage}' and tags.`genzoo.model` = '{model}' and attributes.status = 'RUNNING'"
        closed = []
        for run in self.client.search_runs([self.experiment_id], query):
            tags = run.data.tags
            if tags.get("genzoo.host") != socket.gethostname() or "genzoo.pid" not in tags:
                continue  # another machine's run: its process cannot be checked from here
            if str(start_time(int(tags["genzoo.pid"]))) == tags.get("genzoo.pid_start"):
                continue  # still running
            self.end_run(run.info.run_id, failed=True, reason="its stage process ended without closing the run "
                         "(killed, or the tracking server was unreachable)")
            closed.append(run.info.run_id)
        return closed

    def start_run(self, name: str, params: dict[str, Any], tags: dict[str, str] | None = None,
                  parent_run_id: str | None = None) -> str:
        import socket

        from components.process import start_time

        tags = {**(tags or {}), "genzoo.host": socket.gethostname(), "genzoo.pid": str(os.getpid()),
                "genzoo.pid_start": str(start_time(os.getpid()))}
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        flat = flatten(params)
        items = [Param(k, v[:6000]) for k, v in flat.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run.info.run_id, params=items[i : i + 100])
        return run.info.run_id

    def end_run(self, run_id: str, failed: bool = False, reason: str | None = None, killed: bool = False) -> None:
        """FINISHED, FAILED (with the reason as a tag) or KILLED (interrupted by the user)."""
        if reason:
            self.client.set_tag(run_id, "genzoo.failure", reason[:5000])
        status = RunStatus.to_string(RunStatus.KILLED if killed else RunStatus.FAILED if failed else RunStatus.FINISHED)
        self.client.set_terminated(run_id, status=status)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        for k, v in tags.items():
            self.client.set_tag(run_id, k, str(v))

    # -- metrics -------------------------------------------------------------------------------------
    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        import time

        ts = int(time.time() * 1000)
        batch = [Metric(k, float(v), ts, step) for k, v in metrics.items() if isinstance(v, (int, float))]
        self.client.log_batch(run_id, metrics=batch)

    def log_history(self, run_id: str, history: Iterable[dict[str, float]], step_key: str = "epoch") -> int:
        """Log epochs of `history` whose step is not in the run yet (no duplicates after a resume)."""
        history = list(history)
        if not history:
            return 0
        probe = next(k for k in history[-1] if k != step_key)
        logged = {m.step for m in self.client.get_metric_history(run_id, probe)}
        new = [h for h in history if int(h[step_key]) not in logged]
        for h in new:
            self.log_metrics(run_id, {k: v for k, v in h.items() if k != step_key}, step=int(h[step_key]))
        return len(new)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    # -- artifacts -----------------------------------------------------------------------------------
    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(run_id, str(path), artifact_path)

    def log_dict(self, run_id: str, data: dict, name: str) -> None:
        self.client.log_dict(run_id, data, name)

    def system_metrics(self, run_id: str, interval_s: float):
        """Start MLflow's system-metrics monitor on `run_id` (a thread sampling CPU, memory, disk, network and, with
        nvidia-ml-py, GPU every `interval_s` seconds, logged as system/*); call `.finish()` at the end. It resumes
        the step count of a restarted run."""
        import logging

        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # no start/stop lines in the stage's output
        monitor = SystemMetricsMonitor(run_id, sampling_interval=interval_s, resume_logging=True, tracking_uri=self.uri)
        monitor.start()
        return monitor

    def log_model(self, run_id: str, model_file: Path, family: str) -> str:
        """Log an exported model as an MLflow pyfunc that rebuilds the torch module and samples from it, with its
        signature and an input example (components.tracking.pyfunc)."""
        from components.models.io import load_exported
        from components.tracking.pyfunc import GenZooSampler, input_example, signature

        _, model = load_exported(model_file)
        with using(self.uri), mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=GenZooSampler(),
                artifacts={"model": str(model_file)},
                signature=signature(model),
                input_example=input_example(model),
                pip_requirements=["torch", "torchvision", "numpy", "pydantic"],
                code_paths=[str(Path(__file__).resolve().parents[1])],
                metadata={"genzoo_family": family},
            )
        return info.model_uri

    def download(self, run_id: str, artifact: str) -> Path:
        dst = Path(tempfile.mkdtemp(prefix="genzoo-"))
        return Path(self.client.download_artifacts(run_id, artifact, str(dst)))

    def get_run(self, run_id: str):
        return self.client.get_run(run_id)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[str]:
        return [a.path for a in self.client.list_artifacts(run_id, path)]
