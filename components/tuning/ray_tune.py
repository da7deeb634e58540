"""The Ray Tune runner: every trial runs the same training code as `train@<model>`.

A trial is a function trainable. With `tune.workers_per_trial` > 1 it starts a TorchTrainer (a distributed
Ray Train run) with `TuneReportCallback`, which forwards rank 0's per-epoch reports, including the
validation objective, to Tune; the trial itself only waits, so it reserves memory but no CPU. With one
worker per trial (the default on a laptop) the trial runs the loop in its own actor (`run_in_process`)
and reports to Tune directly: the same loop and objective without a Train controller and worker process
to start per trial, which on 2 cores cost ~35 s a trial for a few seconds of training. ASHA (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning")
stops poor trials at its rungs where trials queue for CPUs (`uses_early_stopping`); Optuna's TPE sampler (Akiba et al. 2019) proposes configurations.
Every trial is an MLflow run nested under one sweep run. Works unchanged against a cluster
(`RAY_ADDRESS`): trial drivers and Train workers are scheduled by Ray.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, replace
from pathlib import Path

from components.config import ModelTune, Params, TuneSettings, config_hash
from components.training.ray_train import TrainJob

TRIAL_DRIVER_MEMORY = 64 * 1024**2  # bytes reserved per trial driver


def ray_space(spec: ModelTune) -> dict:
    from ray import tune

    out = {}
    for key, d in spec.space.items():
        if d.type == "uniform":
            out[key] = tune.uniform(d.low, d.high)
        elif d.type == "loguniform":
            out[key] = tune.loguniform(d.low, d.high)
        elif d.type == "int":
            out[key] = tune.randint(int(d.low), int(d.high) + 1)
        else:
            out[key] = tune.choice(d.values)
    return out


def _trial(config: dict, *, job: dict, sweep_run_id: str) -> None:
    """One Tune trial: a Ray Train run of the sampled config, tracked as a nested MLflow run."""
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from components.tracking import Tracker
    from components.training.loop import NonFiniteLossError
    from components.training.ray_train import make_trainer, raise_verdict, run_in_process

    trial_id = tune.get_context().get_trial_id()
    base = TrainJob(**job)
    tracker = Tracker(base.tracking["uri"], base.tracking["experiment"])
    model_config = {**base.model_config, **config}
    run_id = tracker.start_run(f"trial-{base.model}-{trial_id}", {"model_config": model_config, "searched": config},
                               tags={"genzoo.stage": "tune", "genzoo.model": base.model, "genzoo.trial": trial_id},
                               parent_run_id=sweep_run_id)
    trial_job = replace(base, model_config=model_config, run_name=f"{base.run_name}-{trial_id}",
                        tracking={**base.tracking, "run_id": run_id})
    if trial_job.train.workers == 1:  # the loop in this actor: no Train controller and worker processes to start
        try:
            run_in_process(trial_job, tune.report)
        except NonFiniteLossError as err:  # a diverged trial; Tune's own stops are closed by _close_trial_runs
            tracker.end_run(run_id, failed=True, reason=str(err))
            raise
    else:
        try:
            make_trainer(trial_job, callbacks=[TuneReportCallback()]).fit()
        except Exception as err:  # noqa: BLE001 - a no-space trial says so, whatever Ray raised
            raise_verdict(trial_job, err)
            raise
        raise_verdict(trial_job)  # its restarted workers returned at once: the trial did not finish
    tracker.end_run(run_id)


def trial_resources(job: TrainJob) -> dict:
    """What a trial's actor reserves. A one-worker trial trains in the actor itself: one worker's CPUs
    (and GPU). A trial of several workers only waits on its Ray Train run: no CPU (a fraction would starve
    the workers on a 2-core box), but Tune needs a non-empty bundle, so a little memory instead."""
    if job.train.workers == 1:
        from components.training.ray_train import uses_gpu

        return {"CPU": job.train.cpus_per_worker, **({"GPU": 1} if uses_gpu(job.train.use_gpu) else {})}
    return {"CPU": 0, "memory": TRIAL_DRIVER_MEMORY}


def effective_concurrency(settings: TuneSettings, cpus_per_worker: int) -> int:
    """Cap concurrent trials so their Train workers fit the cluster's CPUs (no starved trials)."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    fit = max(1, cpus // (settings.workers_per_trial * cpus_per_worker))
    return min(settings.max_concurrent_trials, fit)


def uses_early_stopping(spec: ModelTune, concurrency: int, exhaustive: bool = False) -> bool:
    """ASHA only where it saves time: when more trials are asked for than run at once. When all run at once,
    a stopped trial frees CPUs that no waiting trial takes, so the sweep ends no sooner, and which trial ASHA
    stops depends on which reports first at a rung (asynchronous successive halving compares a result only
    with those already in, and so mispromotes: Li et al. 2020, section 3), so two runs of one sweep could
    choose differently. Without it every trial runs max_epochs and the best at the last epoch wins, whatever
    the order."""
    return not exhaustive and spec.num_samples > concurrency


def grid_space(spec: ModelTune) -> dict:
    """Every combination of choice values (for the exhaustive-grid baseline of bench/tune_vs_grid.py)."""
    from ray import tune

    if any(d.type != "choice" for d in spec.space.values()):
        raise ValueError("an exhaustive grid needs every searched key to be of type choice")
    return {k: tune.grid_search(d.values) for k, d in spec.space.items()}


def run_sweep(params: Params, name: str, spec: ModelTune, settings: TuneSettings, base_job: TrainJob,
              tracker, log=print, exhaustive: bool = False) -> dict:
    """Run the sweep; returns {best_config, best_metric, metric, trials: [...], trial_epochs, ...}.
    exhaustive=True runs every grid point to max_epochs (no ASHA, no Optuna): the baseline."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from components.models import MODELS

    metric = MODELS[name].objective
    concurrency = effective_concurrency(settings, base_job.train.cpus_per_worker)
    if concurrency < settings.max_concurrent_trials:
        log(f"[tune {name}] max_concurrent_trials {settings.max_concurrent_trials} -> {concurrency}: "
            f"{settings.workers_per_trial} workers per trial must fit the cluster's CPUs")
    early_stopping = uses_early_stopping(spec, concurrency, exhaustive)
    if not exhaustive and not early_stopping:
        log(f"[tune {name}] all {spec.num_samples} trials run at once: each runs {spec.max_epochs} epochs, no ASHA "
            f"stops (they would save no time and make the choice depend on which trial reports first)")
    from components.code import model_code_hash
    from components.data.shards import sha256_file

    upstream = {m: sha256_file(Path(f)) for m, f in base_job.upstream.items()}  # a retrained upstream: a new sweep
    key = [spec.model_dump(), settings.model_dump(), base_job.model_config, exhaustive, model_code_hash(name),
           *([upstream] if upstream else [])]  # a code change: a new sweep, never a stale trial's checkpoint
    sweep_name = f"tune-{name}-{config_hash(key)}"
    sweep_run = tracker.start_run(f"{'grid' if exhaustive else 'tune'}-{name}", {"space": spec.model_dump(), "settings": settings.model_dump()},
                                  tags={"genzoo.stage": "tune", "genzoo.model": name})
    # a trial: max_epochs of epoch_images each, one checkpoint at its end, no restarts, workers_per_trial; the
    # trial's model_config says the epochs it ran (it is what its checkpoint and MLflow run record)
    job = replace(base_job, model_config={**base_job.model_config, "epochs": spec.max_epochs},
                  train=base_job.train.model_copy(update={"checkpoint_every": spec.max_epochs, "max_failures": 0,
                                                          "workers": settings.workers_per_trial}),
                  run_name=sweep_name, epoch_images=settings.epoch_images, quality=None)
    trainable = tune.with_parameters(_trial, job=asdict(job), sweep_run_id=sweep_run)
    tuner = tune.Tuner(
        tune.with_resources(trainable, trial_resources(job)),
        param_space=grid_space(spec) if exhaustive else ray_space(spec),
        tune_config=tune.TuneConfig(
            metric=metric, mode="min", num_samples=1 if exhaustive else spec.num_samples,
            max_concurrent_trials=concurrency,
            scheduler=FIFOScheduler() if not early_stopping else ASHAScheduler(
                max_t=spec.max_epochs, grace_period=min(settings.grace_period, spec.max_epochs),
                reduction_factor=settings.reduction_factor, time_attr="training_iteration"),
            search_alg=None if exhaustive else OptunaSearch(points_to_evaluate=spec.points_to_evaluate or None,
                                                            seed=settings.seed),
        ),
        run_config=tune.RunConfig(name=sweep_name, storage_path=base_job.storage_path, verbose=1),
    )
    t0 = time.perf_counter()
    grid = tuner.fit()
    trials, trial_time_s = [], 0.0
    for result in grid:
        history = result.metrics_dataframe
        values = [] if history is None or metric not in history else [float(v) for v in history[metric].dropna()]
        for column in ("epoch_time_s", "validate_time_s"):  # training and the objective: the trial's work
            if history is not None and column in history:
                trial_time_s += float(history[column].sum())
        trials.append({
            "trial_id": result.metrics.get("trial_id") if result.metrics else None,
            "config": {k: result.config[k] for k in spec.space},
            "epochs": len(values),
            metric: values[-1] if values else None,
            "best_" + metric: min(values) if values else None,
            "stopped_early": len(values) < spec.max_epochs and result.error is None,
            "error": str(result.error).splitlines()[0] if result.error else None,
        })
    _close_trial_runs(tracker, sweep_run, trials, spec.max_epochs)
    finite = [t for t in trials if t[metric] is not None and math.isfinite(t[metric]) and t["epochs"] == spec.max_epochs]
    if not finite:
        tracker.end_run(sweep_run, failed=True, reason="no trial finished with a finite objective")
        from components.errors import TrainingError

        raise TrainingError(f"tune {name}: no trial finished with a finite {metric}; see the MLflow sweep run")
    best = min(finite, key=lambda t: t[metric])
    _mark_chosen(tracker, sweep_run, best)
    trial_epochs = sum(t["epochs"] for t in trials)
    tracker.log_metrics(sweep_run, {f"best_{metric}": best[metric], "trial_epochs": trial_epochs,
                                    "trials": len(trials), "stopped_early": sum(t["stopped_early"] for t in trials)})
    tracker.end_run(sweep_run)
    return {"model": name, "tuned": True, "metric": metric, "mode": "min", "best_config": best["config"],
            "best_metric": best[metric], "trial_epochs": trial_epochs, "max_epochs": spec.max_epochs,
            "epoch_images": settings.epoch_images,  # None: each trial epoch is the whole train split
            "sweep_run_id": sweep_run, "wall_time_s": time.perf_counter() - t0, "trials": trials,
            # trials' training epochs and objectives, divided by how many ran at once (the stage's own work;
            # not written to tuned/<model>.json)
            "work_s": trial_time_s / concurrency}


def _mark_chosen(tracker, sweep_run: str, best: dict) -> None:
    """The chosen trial's run is tagged genzoo.chosen = true, and the sweep run names it (genzoo.chosen_trial,
    genzoo.chosen_run_id), so the MLflow UI shows which child the train stage took its values from."""
    runs = tracker.client.search_runs([tracker.experiment_id], f"tags.mlflow.parentRunId = '{sweep_run}' and "
                                                               f"tags.`genzoo.trial` = '{best['trial_id']}'")
    for run in runs:
        tracker.client.set_tag(run.info.run_id, "genzoo.chosen", "true")
        tracker.client.set_tag(sweep_run, "genzoo.chosen_run_id", run.info.run_id)
    tracker.client.set_tag(sweep_run, "genzoo.chosen_trial", str(best["trial_id"]))


def _close_trial_runs(tracker, sweep_run: str, trials: list[dict], max_epochs: int) -> None:
    """Tune stops a trial's actor once it reports max_t or ASHA cuts it, often before the trial can close
    its MLflow run: finished trials become FINISHED, trials cut short KILLED with the reason."""
    epochs = {t["trial_id"]: t["epochs"] for t in trials}
    runs = tracker.client.search_runs([tracker.experiment_id], f"tags.mlflow.parentRunId = '{sweep_run}'")
    for run in runs:
        if run.info.status != "RUNNING":
            continue
        done = epochs.get(run.data.tags.get("genzoo.trial"), 0)
        if done >= max_epochs:
            tracker.client.set_terminated(run.info.run_id, status="FINISHED")
        else:
            tracker.client.set_tag(run.info.run_id, "genzoo.stopped", f"stopped early by ASHA after {done} epochs")
            tracker.client.set_terminated(run.info.run_id, status="KILLED")
