"""The tune stage: `tune_model` runs a model's sweep on Ray Tune (`ray_tune`), or records that it has none."""

from __future__ import annotations

from components.config import Params, model_tune, tune_for, tune_settings


def no_sweep(params: Params, name: str) -> dict | None:
    """tuned/<name>.json for a model without a sweep (no trials or no space), else None. Reads tune.<name>
    alone: no model registry, so no torch (most families are not tuned in the default run)."""
    spec = model_tune(params, name)
    if spec.num_samples == 0 or not spec.space:
        return {"model": name, "tuned": False, "reason": f"tune.{name} has no trials or no space"}
    return None


def tune_model(params: Params, name: str, log=print, exhaustive: bool = False) -> dict:
    """Stage `tune@<model>`: run the model's sweep (or record that there is none, before importing
    Ray, MLflow or torch)."""
    spec = tune_for(params, name)
    skipped = no_sweep(params, name)
    if skipped is not None:
        return skipped
    from components.data import load_spec
    from components.tracking import Tracker, tracking_uri
    from components.training.job import base_job
    from components.training.ray_train import connect
    from components.tuning.ray_tune import run_sweep

    settings = tune_settings(params)
    from components.training.ray_train import check_local_cpus

    need = "tune.workers_per_trial x train.cpus_per_worker"
    check_local_cpus(params.ray.address, settings.workers_per_trial * params.train.cpus_per_worker, need)
    data_spec = load_spec(params.path(params.data.out_dir))
    uri = tracking_uri(params.mlflow.tracking_uri, params.root)
    tracker = Tracker(uri, params.mlflow.experiment, root=params.root)  # fails fast when unreachable
    tracker.close_abandoned_runs("tune", name)
    job = base_job(params, name, data_spec, params.model_config_for(name).model_dump(), uri)
    job.validate = {"feature_net": str(params.path("features/classifier.pt")), "val_images": settings.val_images,
                    "fid_samples": settings.fid_samples, "seed": params.evaluate.seed}
    connect(params.ray.address, settings.workers_per_trial * params.train.cpus_per_worker, params.root, need=need)
    return run_sweep(params, name, spec, settings, job, tracker, log=log, exhaustive=exhaustive)
