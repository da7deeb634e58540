"""Stage `report`: reports/index.html comparing every model in pipeline.models; logged to MLflow."""

from __future__ import annotations

import json

from components.io import write_text
from pipelines import _stage


def main() -> None:
    args = _stage.parser(__doc__).parse_args()
    params = _stage.load(args)
    models = list(params.pipeline.models)
    if _stage.dry_run(args, {"models": models}):
        return
    from components.errors import DataError
    from components.evaluation.report import build_report

    missing = [m for m in models if not params.path(f"metrics/{m}.json").is_file()]
    if missing:
        raise DataError(f"metrics/{missing[0]}.json: not evaluated; run `dvc repro evaluate` first")
    feat_file = params.path("features/featurize.json")
    featurize = json.loads(feat_file.read_text()) if feat_file.is_file() else None
    out = params.path("reports/index.html")
    with _stage.work():
        page = build_report(params.root, models, featurize)
    write_text(out, page)
    from components.tracking import Tracker, tracking_uri

    tracker = Tracker(tracking_uri(params.mlflow.tracking_uri, params.root), params.mlflow.experiment, root=params.root)
    run_id = tracker.start_run("report", {"models": models}, tags={"genzoo.stage": "report"})
    tracker.log_artifact(run_id, out)
    tracker.end_run(run_id)
    print(f"report: {out.relative_to(params.root)} ({out.stat().st_size // 1024} KiB, {len(models)} models)")


if __name__ == "__main__":
    _stage.run(main)
