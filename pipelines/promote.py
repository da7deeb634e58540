"""Stage `promote`: for every model of pipeline.models, register the trained model as genzoo-<model> and
move `champion` only when it is finite and better on the same dataset and metric protocol; each decision
goes to promotion/<model>.json. One process for all models (a stage per model cost ~12 s of start-up and
dvc bookkeeping each for ~1 s of registry calls); a model whose train run and metrics are the ones its
promotion file already decided on keeps that decision and gets no second version. `--model m` promotes
one model (the `genzoo promote m` command does the same)."""

from __future__ import annotations

import hashlib
import json

from pipelines import _stage


def _inputs(params, name: str) -> tuple[dict, dict, str]:
    """(run.json, metrics, sha256 of the metrics file) of a trained and evaluated model."""
    from components.errors import DataError

    run_file, metrics_file = params.path(f"models/{name}/run.json"), params.path(f"metrics/{name}.json")
    for f, stage in ((run_file, f"train@{name}"), (metrics_file, "evaluate")):
        if not f.is_file():
            raise DataError(f"{f}: missing; run `dvc repro {stage}` first")
    raw = metrics_file.read_bytes()
    return json.loads(run_file.read_text()), json.loads(raw), hashlib.sha256(raw).hexdigest()


def _tracker(params, name: str, run: dict):
    """The project's store, which must be the one the model's run lives in (own_run_store)."""
    from components.tracking import Tracker, own_run_store

    store = own_run_store(params, run, params.path(f"models/{name}/run.json"))
    return Tracker(store, params.mlflow.experiment, root=params.root)


def promote_model(params, name: str, keep: bool = False) -> dict:
    """Register model `name` and decide on `champion`; the decision, with the run and metrics it was made on.
    With `keep`, promotion/<name>.json is returned instead (marked "kept") when it decided on this same run
    and metrics and its version is still in the registry: no second version of an unchanged model."""
    from components.tracking.registry import promote, registered_version_run

    run, metrics, metrics_sha = _inputs(params, name)
    tracker = _tracker(params, name, run)
    if keep:
        try:
            before = json.loads(params.path(f"promotion/{name}.json").read_text())
        except (OSError, ValueError):
            before = {}
        if ((before.get("run_id"), before.get("metrics_sha256")) == (run["run_id"], metrics_sha)
                and registered_version_run(tracker, name, before.get("version")) == run["run_id"]):
            return {**before, "kept": True}
    decision = promote(tracker, name, run["run_id"], run["model_uri"], metrics, params.promote.min_improvement)
    return {**decision, "run_id": run["run_id"], "metrics_sha256": metrics_sha}


def write_decision(params, name: str, decision: dict) -> None:
    _stage.write_json(params.path(f"promotion/{name}.json"), decision)


def main() -> None:
    p = _stage.parser(__doc__)
    p.add_argument("--model", help="promote this model only (default: every model of pipeline.models)")
    args = p.parse_args()
    params = _stage.load(args)
    names = [args.model] if args.model else list(params.pipeline.models)
    if _stage.dry_run(args, {"models": names, "promote": params.promote.model_dump()}):
        return
    if not args.model:  # the stage's output folder holds the decisions of the models it promotes, no others
        keep = {f"{n}.json" for n in names}
        for f in params.path("promotion").glob("*.json") if params.path("promotion").is_dir() else []:
            if f.name not in keep:
                f.unlink()
    import components.tracking  # noqa: F401 - MLflow's import is start-up, not the registry work timed below

    for name in names:
        with _stage.work():
            decision = promote_model(params, name, keep=True)
            kept = decision.pop("kept", False)
            if not kept:
                write_decision(params, name, decision)
        verdict = "champion" if decision["promoted"] else "not promoted"
        print(f"promote {name}: version {decision['version']} {verdict}: {decision['reason']}"
              + (" (decided before on this run and these metrics; unchanged)" if kept else ""))


if __name__ == "__main__":
    _stage.run(main)
