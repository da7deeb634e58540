"""Stage `evaluate`: metrics and figures of every model in pipeline.models: metrics/<model>.json and
evaluation/<model>/, logged to the model's training run. One process for all models: evaluation imports
torchvision (with torch._dynamo), torchmetrics (with scipy) and MLflow, ~10 s on a 2-core box and more than
most models' evaluation itself; a stage per model paid that twelve times. A model whose inputs are the ones
its metrics were computed from (its export and run, the data, the feature networks, the evaluate params and
the code evaluation runs: evaluation/<model>/inputs.json) keeps them, so retraining one model evaluates that
model only. `--model m` evaluates one model, whether or not its inputs changed."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from pipelines import _stage

CODE = Path(__file__).resolve().parent.parent  # the checkout whose code evaluates
# the code an evaluation runs besides components/evaluation and the model's own code (components.code.model_code)
CODE_FILES = ("pipelines/evaluate.py", "pipelines/_stage.py", "components/config.py", "components/data/shards.py",
              "components/models/io.py")


def _sha256(path: Path, cache: dict) -> str:
    """sha256 of a file ("absent" if there is none), each file hashed once per process."""
    if path not in cache:
        from components.data.shards import sha256_file

        cache[path] = sha256_file(path) if path.is_file() else "absent"
    return cache[path]


def inputs(params, name: str, cache: dict) -> dict:
    """What model `name`'s evaluation depends on, as {what: sha256 or value}: what its dvc stage depended
    on when there was one per model."""
    model_dir, features = params.path(f"models/{name}"), params.path("features")
    files = sorted(f for f in model_dir.rglob("*") if f.is_file()) if model_dir.is_dir() else []
    files += [params.path(params.data.out_dir) / "dataset.json"]  # names every shard by its sha256
    files += [features / f for f in ("classifier.pt", "features.pt", "regressor.pt")]
    code = sorted((CODE / "components/evaluation").glob("*.py")) + sorted((CODE / "components/tracking").glob("*.py"))
    from components.code import model_code

    code += [CODE / f for f in (*CODE_FILES, *model_code(name, CODE))]
    out = {"evaluate": params.evaluate.model_dump(mode="json"), "data.out_dir": params.data.out_dir}
    for f in files:
        out[str(f.relative_to(params.root))] = _sha256(f, cache)
    for f in code:
        out[str(f.relative_to(CODE))] = _sha256(f, cache)
    return out


def recorded(params, name: str) -> dict | None:
    """The inputs model `name`'s metrics and figures were computed from, or None."""
    try:
        if params.path(f"metrics/{name}.json").is_file():
            return json.loads(params.path(f"evaluation/{name}/inputs.json").read_text())
    except (OSError, ValueError):
        pass
    return None


def check_runs(params, names: list[str]) -> None:
    """Refuse before any evaluation runs or any file is replaced: every model's run (models/<m>/run.json) must
    be in this project's tracking store, and that store must be one MLflow can read."""
    from components.tracking import Tracker, own_run_store, tracking_uri

    Tracker(tracking_uri(params.mlflow.tracking_uri, params.root), params.mlflow.experiment, root=params.root)
    for name in names:
        run_file = params.path(f"models/{name}/run.json")
        if run_file.is_file():
            own_run_store(params, json.loads(run_file.read_text()), run_file)


def evaluate_one(params, name: str, now: dict) -> dict:
    """Evaluate model `name`, log the result to its run, and record `now` (its inputs) beside the figures."""
    from components.evaluation.run import evaluate_model

    model_dir, out_dir = params.path(f"models/{name}"), params.path(f"evaluation/{name}")
    tmp_dir = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    try:
        with _stage.work():
            metrics = evaluate_model(params, name, model_dir / "model.pt", tmp_dir, params.path("features"))
    except BaseException:  # nothing half-written: the evaluation before (if any) stays as it was
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    _stage.write_json(params.path(f"metrics/{name}.json"), metrics)
    shutil.rmtree(out_dir, ignore_errors=True)  # this evaluation's figures only, none left from an older one
    os.replace(tmp_dir, out_dir)
    run = json.loads((model_dir / "run.json").read_text()) if (model_dir / "run.json").is_file() else None
    if run:
        from components.tracking import Tracker, own_run_store

        tracker = Tracker(own_run_store(params, run, model_dir / "run.json"), params.mlflow.experiment, root=params.root)
        tracker.log_metrics(run["run_id"], {k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        tracker.set_tags(run["run_id"], {f"genzoo.protocol.{k}": v for k, v in metrics["protocol"].items()
                                         if not isinstance(v, dict)})
        tracker.log_dict(run["run_id"], metrics, "evaluation/metrics.json")
        tracker.log_artifact(run["run_id"], out_dir, "evaluation")
    _stage.write_json(out_dir / "inputs.json", now)  # last: an evaluation cut short is redone
    return metrics


def main() -> None:
    p = _stage.parser(__doc__)
    p.add_argument("--model", help="evaluate this model only, even if its inputs did not change "
                                   "(default: every model of pipeline.models, those whose inputs changed)")
    args = p.parse_args()
    params = _stage.load(args)
    names = [args.model] if args.model else list(params.pipeline.models)
    if _stage.dry_run(args, {"models": names, "evaluate": params.evaluate.model_dump()}):
        return
    from components.errors import DataError

    cache: dict = {}
    todo = {}
    for name in names:
        if not params.path(f"models/{name}/model.pt").is_file():
            raise DataError(f"{params.path(f'models/{name}/model.pt')}: no trained model; run `dvc repro train@{name}` first")
        now = inputs(params, name, cache)
        if not args.model and recorded(params, name) == now:
            print(f"evaluate {name}: unchanged (its export, data, feature networks, params and code are the ones "
                  f"metrics/{name}.json was computed from)")
        else:
            todo[name] = now
    if todo:
        check_runs(params, list(todo))  # before any work or write
    if not args.model:  # the stage's output folders hold the models of pipeline.models, no others
        for folder, suffix in (("metrics", ".json"), ("evaluation", "")):
            for f in params.path(folder).iterdir() if params.path(folder).is_dir() else []:
                if not f.name.startswith(".") and f.name.removesuffix(suffix) not in [*names, "real"]:
                    shutil.rmtree(f) if f.is_dir() else f.unlink()
    if not todo and params.path("metrics/real.json").is_file():
        return
    from components.evaluation.run import import_libraries

    import_libraries()  # start-up, not work
    import components.tracking  # noqa: F401 - MLflow too
    from components.evaluation.registry import METRICS
    for name, now in todo.items():
        with _stage.part(f"evaluate@{name}") if not args.model else contextlib.nullcontext():
            metrics = evaluate_one(params, name, now)
        shown = ", ".join(f"{k} {metrics[k]:.4g}" for k in METRICS if isinstance(metrics.get(k), (int, float)))
        print(f"evaluated {name}: {shown}; figures in evaluation/{name}/", flush=True)
    write_reference(params, names)


def write_reference(params, names: list[str]) -> None:
    """metrics/real.json: the real-data reference row at every N the models were evaluated at."""
    from components.evaluation.reference import reference_metrics

    sizes = {json.loads(params.path(f"metrics/{m}.json").read_text()).get("protocol", {}).get("n_fake")
             for m in names if params.path(f"metrics/{m}.json").is_file()}
    sizes = sorted(s for s in sizes if isinstance(s, int)) or [params.evaluate.n_samples]
    with _stage.work():
        real = reference_metrics(params, params.path("features"), sizes)
    _stage.write_json(params.path("metrics/real.json"), real)
    shown = ", ".join(f"{k} {real[k]:.4g}" for k in ("fid", "precision", "recall") if k in real)
    print(f"real-data reference (val vs test, N = {real['protocol']['n_real']}): {shown}", flush=True)


if __name__ == "__main__":
    _stage.run(main)
