"""Stage `tune@<model>`: Ray Tune sweep (ASHA + Optuna) over tune.<model>.space; writes tuned/<model>.json."""

from __future__ import annotations

from pipelines import _stage


def main() -> None:
    args = _stage.parser(__doc__, model=True).parse_args()
    name = args.model
    if not args.dry_run:
        # a model without a sweep (most, in the default run) is recorded from tune.<model> alone, without the
        # model registry and torch: ~0.5 s instead of ~2 s. Its train stage validates everything else.
        from components.config import read_params
        from components.tuning.sweep import no_sweep

        light = read_params(args.params)
        skipped = no_sweep(light, name) if name in light.pipeline.models else None
        if skipped is not None:
            _stage.write_json(light.path(f"tuned/{name}.json"), skipped)
            print(f"tune {name}: skipped ({skipped['reason']})")
            return
    params = _stage.load(args)
    from components.config import tune_for, tune_settings

    spec, settings = tune_for(params, name), tune_settings(params)
    if _stage.dry_run(args, {"model": name, "tune": spec.model_dump(), "settings": settings.model_dump()}):
        return
    from components.tuning.sweep import tune_model

    _stage.ray_messages_to_log(f"tune@{name}")  # Ray's tracebacks to a file; the terminal keeps the last line
    result = tune_model(params, name)
    _stage.add_work(result.pop("work_s", 0.0))
    # tuned/<model>.json is a dependency of train@<model>: only what the sweep decided goes in, no run ids or
    # timings that differ between identical sweeps (they are in the MLflow sweep run and printed below)
    run_id, wall = result.pop("sweep_run_id", None), result.pop("wall_time_s", None)
    for trial in result.get("trials", []):
        trial.pop("trial_id", None)
    _stage.write_json(params.path(f"tuned/{name}.json"), result)
    if result["tuned"]:
        stopped = sum(t["stopped_early"] for t in result["trials"])
        print(f"tuned {name}: best {result['metric']} {result['best_metric']:.4g} with {result['best_config']}; "
              f"{len(result['trials'])} trials ({stopped} stopped early), {result['trial_epochs']} trial-epochs "
              f"in {wall:.0f} s; MLflow sweep run {run_id}")
    else:
        print(f"tune {name}: skipped ({result['reason']})")


if __name__ == "__main__":
    _stage.run(main)
