"""Stage `promote@<model>`: register the trained model as genzoo-<model> and move `champion` only when it
is finite and better on the same dataset and metric protocol; the decision goes to promotion/<model>.json."""

from __future__ import annotations

import json
import os

from pipelines import _stage


def promote_model(params, name: str) -> dict:
    from components.errors import DataError
    from components.tracking import Tracker, own_run_store
    from components.tracking.registry import promote

    run_file, metrics_file = params.path(f"models/{name}/run.json"), params.path(f"metrics/{name}.json")
    for f, stage in ((run_file, f"train@{name}"), (metrics_file, f"evaluate@{name}")):
        if not f.is_file():
            raise DataError(f"{f}: missing; run `dvc repro {stage}` first")
    run, metrics = json.loads(run_file.read_text()), json.loads(metrics_file.read_text())
    tracker = Tracker(own_run_store(params, run, run_file), params.mlflow.experiment, root=params.root)
    return promote(tracker, name, run["run_id"], run["model_uri"], metrics, params.promote.min_improvement)


def main() -> None:
    args = _stage.parser(__doc__, model=True).parse_args()
    params = _stage.load(args)
    if _stage.dry_run(args, {"model": args.model, "promote": params.promote.model_dump()}):
        return
    with _stage.work():
        decision = promote_model(params, args.model)
    out = params.path(f"promotion/{args.model}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(decision, indent=2) + "\n")
    os.replace(tmp, out)
    verdict = "champion" if decision["promoted"] else "not promoted"
    print(f"promote {args.model}: version {decision['version']} {verdict}: {decision['reason']}")


if __name__ == "__main__":
    _stage.run(main)
