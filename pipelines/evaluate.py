"""Stage `evaluate@<model>`: metrics and figures of a trained model; metrics/<model>.json, evaluation/<model>/."""

from __future__ import annotations

import json
import os

from pipelines import _stage


def main() -> None:
    args = _stage.parser(__doc__, model=True).parse_args()
    params = _stage.load(args)
    name = args.model
    if _stage.dry_run(args, {"model": name, "evaluate": params.evaluate.model_dump()}):
        return
    from components.errors import DataError
    from components.evaluation import evaluate_model, import_libraries

    model_dir = params.path(f"models/{name}")
    if not (model_dir / "model.pt").is_file():
        raise DataError(f"{model_dir / 'model.pt'}: no trained model; run `dvc repro train@{name}` first")
    import_libraries()  # start-up, not work
    with _stage.work():
        metrics = evaluate_model(params, name, model_dir / "model.pt", params.path(f"evaluation/{name}"),
                                 params.path("features"))
    out = params.path(f"metrics/{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, out)
    run = json.loads((model_dir / "run.json").read_text()) if (model_dir / "run.json").is_file() else None
    if run:
        from components.tracking import Tracker, own_run_store

        tracker = Tracker(own_run_store(params, run, model_dir / "run.json"), params.mlflow.experiment, root=params.root)
        tracker.log_metrics(run["run_id"], {k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        tracker.set_tags(run["run_id"], {f"genzoo.protocol.{k}": v for k, v in metrics["protocol"].items()
                                         if not isinstance(v, dict)})
        tracker.log_dict(run["run_id"], metrics, "evaluation/metrics.json")
        tracker.log_artifact(run["run_id"], params.path(f"evaluation/{name}"), "evaluation")
    keys = ("fid", "kid", "precision", "recall", "classes_covered", "memorization_fraction", "test_elbo_nats",
            "test_iwae_nats", "test_iwae_bits_per_dim", "test_elbo_given_y_nats", "test_iwae_given_y_nats",
            "test_nll_nats", "test_nll_given_y_nats", "cond_accuracy", "fid_per_class_mean", "code_accuracy",
            "code_factor_corr_best_mean", "codebook_perplexity", "codebook_dead_codes", "translation_fid",
            "translation_target_rate", "cycle_l1")
    shown = ", ".join(f"{k} {metrics[k]:.4g}" for k in keys if metrics.get(k) is not None)
    print(f"evaluated {name}: {shown}; figures in evaluation/{name}/")


if __name__ == "__main__":
    _stage.run(main)
