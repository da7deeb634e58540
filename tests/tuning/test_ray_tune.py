"""Real Ray Tune sweeps (ASHA + Optuna): trials that are 2-worker Ray Train runs, and one-worker trials all at once."""

import json

import pytest

from components.config import ModelTune, load_config, tune_settings
from components.tracking import Tracker
from components.training.job import resolve
from components.tuning.ray_tune import effective_concurrency, uses_early_stopping
from components.tuning.sweep import tune_model
from tests.conftest import write_params

SWEEP = {"tune": {"max_concurrent_trials": 2, "workers_per_trial": 2,
                  "vae": {"num_samples": 2, "max_epochs": 3,
                          "space": {"kl_weight": {"type": "choice", "values": [1.0, 1000.0]}},
                          "points_to_evaluate": [{"kl_weight": 1.0, "latent_dim": 8},
                                                 {"kl_weight": 1000.0, "latent_dim": 8}]}}}


@pytest.mark.slow  # a whole sweep / server / CLI process: CI's full suite, not the fast tier
def test_asha_stops_the_bad_trial_and_the_sweep_never_deadlocks(project, ray_local):
    from components.training.ray_train import connect

    ray_local.shutdown()  # a fresh 2-CPU cluster: nothing left over from earlier tests holds CPUs
    connect(num_cpus=2)
    params = load_config(write_params(project, SWEEP))
    # 2 concurrent trials x 2 workers would need 4 CPUs: the runner caps concurrency to what fits
    assert effective_concurrency(tune_settings(params), 1) == 1
    result = tune_model(params, "vae", log=print)
    assert result["tuned"] and result["metric"] == "val_neg_elbo"
    assert result["best_config"] == {"kl_weight": 1.0, "latent_dim": 8}
    by_weight = {t["config"]["kl_weight"]: t for t in result["trials"]}
    assert by_weight[1.0]["epochs"] == 3 and not by_weight[1.0]["stopped_early"]
    assert by_weight[1000.0]["epochs"] == 1 and by_weight[1000.0]["stopped_early"], "ASHA stopped it at its first rung"
    assert result["trial_epochs"] == 4, "compute spent: 3 + 1 trial-epochs"

    tracker = Tracker(f"sqlite:///{project / 'mlflow.db'}", "genzoo")
    children = tracker.client.search_runs([tracker.experiment_id], f"tags.mlflow.parentRunId = '{result['sweep_run_id']}'")
    assert len(children) == 2, "every trial is an MLflow run nested under the sweep run"
    status = {float(r.data.params["searched.kl_weight"]): r.info.status for r in children}
    assert status == {1.0: "FINISHED", 1000.0: "KILLED"}
    params_epochs = {r.data.params["model_config.epochs"] for r in children}
    assert params_epochs == {"3"}, "a trial records the epochs it ran (tune.vae.max_epochs), not models.vae.epochs"
    assert tracker.get_run(result["sweep_run_id"]).data.metrics["trial_epochs"] == 4
    chosen = [r for r in children if r.data.tags.get("genzoo.chosen") == "true"]
    assert len(chosen) == 1 and chosen[0].data.params["searched.kl_weight"] == "1.0", "the chosen trial is marked"
    assert tracker.get_run(result["sweep_run_id"]).data.tags["genzoo.chosen_run_id"] == chosen[0].info.run_id
    assert tracker.client.get_metric_history(chosen[0].info.run_id, "val_neg_elbo"), "a child holds its trial's curve"


def test_asha_runs_only_where_trials_wait_for_cpus():
    spec = ModelTune(num_samples=2, max_epochs=2)
    assert not uses_early_stopping(spec, concurrency=2), "all trials at once: a stop saves no time, only adds order"
    assert uses_early_stopping(spec, concurrency=1), "trials queue: ASHA's stops let the next one start sooner"
    assert not uses_early_stopping(ModelTune(num_samples=8), concurrency=1, exhaustive=True)


@pytest.mark.slow
def test_a_sweep_whose_trials_all_run_at_once_runs_each_to_the_end(project, ray_local):
    """The laptop default (two one-worker trials on two CPUs): no trial is cut at a rung, so which trial wins cannot
    depend on which reported first; the best at the last epoch is chosen."""
    from components.training.ray_train import connect

    ray_local.shutdown()
    connect(num_cpus=2)
    sweep = {"tune": {"max_concurrent_trials": 2, "workers_per_trial": 1,
                      "vae": {**SWEEP["tune"]["vae"], "max_epochs": 2}}}
    params = load_config(write_params(project, sweep))
    assert effective_concurrency(tune_settings(params), 1) == 2
    result = tune_model(params, "vae", log=print)
    assert [t["epochs"] for t in result["trials"]] == [2, 2]
    assert not any(t["stopped_early"] for t in result["trials"])
    assert result["best_config"] == {"kl_weight": 1.0, "latent_dim": 8}
    assert result["trial_epochs"] == 4


def test_train_takes_tuned_values_and_says_where_each_came_from(project):
    params = load_config(write_params(project))
    (project / "tuned").mkdir()
    (project / "tuned/vae.json").write_text(json.dumps({"tuned": True, "best_config": {"kl_weight": 2.5}}))
    from components.data import load_spec

    resolved = resolve(params, "vae", load_spec(project / "datasets/prepared"))
    assert resolved["model_config"]["kl_weight"] == 2.5
    assert resolved["provenance"]["kl_weight"] == "tuned/vae.json"
    assert resolved["provenance"]["latent_dim"] == "params.yaml"
    (project / "tuned/vae.json").write_text(json.dumps({"tuned": False}))
    assert resolve(params, "vae", load_spec(project / "datasets/prepared"))["model_config"]["kl_weight"] == 1.0


def test_no_space_means_no_sweep(project):
    params = load_config(write_params(project))
    assert tune_model(params, "dcgan") == {"model": "dcgan", "tuned": False, "reason": "tune.dcgan has no trials or no space"}
