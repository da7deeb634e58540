"""Stage `featurize`: train the feature classifier whose penultimate layer is the sample-metric space."""

from __future__ import annotations

from pipelines import _stage


def main() -> None:
    args = _stage.parser(__doc__).parse_args()
    params = _stage.load(args)
    if _stage.dry_run(args, {"evaluate": params.evaluate.model_dump(), "data.out_dir": params.data.out_dir}):
        return
    import torch._dynamo  # noqa: F401 - torch's optimizers import it when the first is made (~2.5 s): start-up, not work

    from components.evaluation.features import featurize

    out = params.path("features")
    with _stage.work():
        summary = featurize(params, out)
    _stage.write_json(out / "featurize.json", summary)
    from components.tracking import Tracker, tracking_uri

    tracker = Tracker(tracking_uri(params.mlflow.tracking_uri, params.root), params.mlflow.experiment, root=params.root)
    run_id = tracker.start_run("featurize", {"evaluate": params.evaluate.model_dump()},
                               tags={"genzoo.stage": "featurize", "genzoo.dataset_sha256": summary["dataset_manifest_sha256"],
                                     "genzoo.feature_net_sha256": summary["feature_net_sha256"]})
    tracker.log_metrics(run_id, {k: v for k, v in summary.items() if isinstance(v, float)})
    tracker.log_artifact(run_id, out / "classifier.pt")
    tracker.end_run(run_id)
    print(f"featurize: held-out accuracy {summary['test_accuracy']:.4f} (gate {summary['min_accuracy']}), "
          f"weights sha256 {summary['feature_net_sha256'][:12]}")


if __name__ == "__main__":
    _stage.run(main)
