"""The train stage's job: `run_training` resolves a model's config (params.yaml, then tuned/<model>.json),
opens its MLflow run and trains it on Ray through the adapter (`ray_train`); `finish_run` logs the export."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from components.config import Params, config_hash
from components.data import DatasetSpec, load_spec


@dataclass
class TrainOutcome:
    name: str
    model: object  # the trained GenerativeModel (CPU, eval mode)
    spec: DatasetSpec
    state: dict  # final checkpoint state: epoch, step, history, optimizers
    resolved: dict  # the resolved config, as logged
    run_id: str
    tracking_uri: str


def tuned_overrides(path: Path) -> dict:
    """{key: value} a train stage takes from tuned/<model>.json (empty when tuning was off)."""
    if not path.is_file():
        return {}
    blob = json.loads(path.read_text())
    return blob.get("best_config", {}) if blob.get("tuned") else {}


def model_config(params: Params, name: str):
    """models.<name> with the values tuned/<name>.json holds for the searched keys, and where each came from."""
    cfg = params.model_config_for(name)
    tuned = tuned_overrides(params.path(f"tuned/{name}.json"))
    if tuned:
        cfg = type(cfg)(**{**cfg.model_dump(), **tuned})
    provenance = {k: (f"tuned/{name}.json" if k in tuned else "params.yaml") for k in cfg.model_dump()}
    return cfg, provenance


def upstream_files(params: Params, name: str) -> dict[str, Path]:
    """{model: its exported file} for the models family `name` is built on (Family.needs)."""
    from components.errors import ConfigError
    from components.models import MODELS

    files = {m: params.path(f"models/{m}/model.pt") for m in MODELS[name].needs}
    for m, f in files.items():
        if not f.is_file():
            raise ConfigError(f"{f}: {name} is built on a trained {m}, and there is none; train it first "
                              f"(dvc repro train@{m})")
    return files


def resolve(params: Params, name: str, spec: DatasetSpec) -> dict:
    """The resolved config of one training run: what was asked for, with every default filled in, and the
    identity of any upstream model (so checkpoints of a model built on a retrained upstream never resume)."""
    from components.code import model_code, model_code_hash
    from components.data.shards import sha256_file

    cfg, provenance = model_config(params, name)
    train = params.train.model_dump()
    upstream = {m: {"file": str(f.relative_to(params.root)), "sha256": sha256_file(f)}
                for m, f in upstream_files(params, name).items()}
    return {
        "model": name,
        "model_config": cfg.model_dump(),
        "provenance": provenance,
        "train": {k: train[k] for k in ("workers", "cpus_per_worker", "use_gpu", "seed", "checkpoint_every",
                                        "precision", "compile", "channels_last")},
        "dataset": {"name": spec.name, "manifest_sha256": spec.manifest_sha256, "counts": spec.counts},
        # the family's import closure and the loop: a code change keys a new run (never a stale resume)
        "code": {"files": model_code(name), "sha256": model_code_hash(name)},
        **({"upstream": upstream} if upstream else {}),
    }


def storage_path(params: Params) -> str:
    storage = params.ray.storage_path or ".genzoo/ray"
    return storage if "://" in storage else str(params.path(storage))


def announce_key(storage: str, name: str, run_name: str) -> None:
    """Say on one line whether this run resumes its key's checkpoint or starts afresh, and why."""
    if "://" in storage:
        return
    if (Path(storage) / run_name).is_dir():
        print(f"[{name}] checkpoint key {run_name}: a run with this config and code exists; resuming it", flush=True)
        return
    others = sorted(p.name for p in Path(storage).glob(f"{name}-*") if p.is_dir() and p.name.count("-") == name.count("-") + 1)
    why = (f"{len(others)} earlier run(s) of {name} ({', '.join(others[-2:])}) had another config, upstream or code"
           if others else f"no earlier run of {name}")
    print(f"[{name}] checkpoint key {run_name}: training afresh; {why}", flush=True)


def base_job(params: Params, name: str, spec: DatasetSpec, cfg: dict, uri: str, run_id: str = "",
             run_name: str = "", fault: dict | None = None):
    """The TrainJob of model `name`: its config `cfg` (whose epochs and batch_size are the run's) and params.train
    as one object, so no run setting is copied field by field (tuning overrides them in one place: ray_tune)."""
    from components.training.ray_train import TrainJob

    return TrainJob(
        model=name, model_config=cfg, data_dir=str(params.path(params.data.out_dir)), run_name=run_name,
        storage_path=storage_path(params), train=params.train, fault=fault,
        tracking={"uri": uri, "experiment": params.mlflow.experiment, "run_id": run_id,
                  "system_metrics_s": params.mlflow.system_metrics_interval},
        upstream={m: str(f) for m, f in upstream_files(params, name).items()},
        quality=quality_settings(params),
    )


def quality_settings(params: Params) -> dict | None:
    """What the per-epoch quality curve measures with (TrainJob.quality); None when train.quality_images is 0."""
    if not params.train.quality_images:
        return None
    return {"feature_net": str(params.path("features/classifier.pt")), "n": params.train.quality_images,
            "seed": params.evaluate.seed, "k": params.evaluate.pr_k}


def _close(tracker, run_id: str, **how) -> None:
    """End the run as FAILED/KILLED; if the store is unreachable now, the next train run closes it
    (Tracker.close_abandoned_runs) and the error the user sees stays the training one."""
    try:
        tracker.end_run(run_id, **how)
    except Exception:  # noqa: BLE001 - e.g. the tracking server died: that is what failed the run
        pass


def run_training(params: Params, name: str, fault: dict | None = None) -> TrainOutcome:
    """Train model `name` on the prepared dataset with Ray Train, tracked in MLflow."""
    from components.models import build
    from components.models.io import load_upstream
    from components.tracking import Tracker, tracking_uri
    from components.training.ray_train import TrainingError, check_local_cpus, connect, fit

    spec = load_spec(params.path(params.data.out_dir))
    model_cfg, _ = model_config(params, name)
    upstream = load_upstream(upstream_files(params, name))
    build(name, model_cfg, spec, upstream)  # fail here, before Ray starts, if config and data do not fit
    check_local_cpus(params.ray.address, params.train.workers * params.train.cpus_per_worker,
                     "train.workers x train.cpus_per_worker")
    resolved = resolve(params, name, spec)
    run_name = f"{name}-{config_hash(resolved)}"  # checkpoints are keyed by the resolved config and code
    announce_key(storage_path(params), name, run_name)
    uri = tracking_uri(params.mlflow.tracking_uri, params.root)
    tracker = Tracker(uri, params.mlflow.experiment, root=params.root)
    tracker.close_abandoned_runs("train", name)
    run_id = tracker.start_run(
        f"train-{name}", resolved,
        tags={"genzoo.model": name, "genzoo.stage": "train", "genzoo.dataset_sha256": spec.manifest_sha256,
              "genzoo.ray_run": run_name},
    )
    tracker.log_dict(run_id, resolved, "resolved_config.json")
    job = base_job(params, name, spec, model_cfg.model_dump(), uri, run_id, run_name, fault)
    try:
        connect(params.ray.address, params.train.workers * params.train.cpus_per_worker, params.root)
        state = fit(job)
    except TrainingError as err:
        _close(tracker, run_id, failed=True, reason=str(err))
        raise
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C: Ray's driver handler may turn it into sys.exit
        _close(tracker, run_id, killed=True, reason="interrupted by the user; a rerun resumes from the last checkpoint")
        raise KeyboardInterrupt from None
    tracker.log_history(run_id, state["history"])  # idempotent: fills epochs a resume may have skipped
    model = build(name, model_cfg, spec, upstream)
    model.load_state_dict(state["model"])
    return TrainOutcome(name, model.eval(), spec, state, resolved, run_id, uri)


def finish_run(outcome: TrainOutcome, model_file: Path, params: Params) -> str:
    """Log the exported model (an MLflow pyfunc that samples) and close the run; returns the model URI."""
    from components.tracking import Tracker

    tracker = Tracker(outcome.tracking_uri, params.mlflow.experiment, root=params.root)
    uri = tracker.log_model(outcome.run_id, model_file, outcome.name)
    tracker.end_run(outcome.run_id)
    return uri
