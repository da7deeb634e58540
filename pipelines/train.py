"""Stage `train@<model>`: train one model on Ray Train, export it, write its curves, close the MLflow run."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from pipelines import _stage


def write_history(path: Path, history: list[dict]) -> None:
    """Per-epoch metrics as CSV (the DVC plot of training curves), written atomically."""
    from components.io import atomic_write

    keys = ["epoch"] + sorted({k for h in history for k in h} - {"epoch"})

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(history)

    atomic_write(path, write)


def trained_here(state: dict, started: float) -> list[dict]:
    """The history entries of the epochs this process trained: those after its first resume point (a
    resume recorded since `started`), or all of them when it resumed nothing."""
    here = [r["epoch"] for r in state.get("resumes", []) if r.get("time", 0.0) >= started]
    first = min(here) if here else 0
    return [h for h in state["history"] if h.get("epoch", 0) > first]


def main() -> None:
    args = _stage.parser(__doc__, model=True).parse_args()
    params = _stage.load(args)
    name = args.model
    if args.dry_run:
        from components.data import load_spec
        from components.training.job import resolve

        _stage.dry_run(args, resolve(params, name, load_spec(params.path(params.data.out_dir))))
        return
    from components.models.io import export_model
    from components.training.job import finish_run, run_training

    if params.train.quality_images and not params.path("features/classifier.pt").is_file():
        print(f"[{name}] features/classifier.pt missing: the quality curve has no sample metrics "
              "(dvc repro featurize adds them)", flush=True)
    _stage.ray_messages_to_log(f"train@{name}")  # Ray's tracebacks to a file; the terminal keeps the last line
    t0, started = time.perf_counter(), time.time()
    outcome = run_training(params, name)
    _stage.add_work(sum(h.get("epoch_time_s", 0.0) + h.get("validate_time_s", 0.0)
                        for h in trained_here(outcome.state, started)))
    out = params.path(f"models/{name}")
    out.mkdir(parents=True, exist_ok=True)
    export_model(out / "model.pt", name, outcome.model)
    _stage.write_json(out / "resolved_config.json", outcome.resolved)
    write_history(params.path(f"plots/train/{name}.csv"), outcome.state["history"])
    model_uri = finish_run(outcome, out / "model.pt", params)
    _stage.write_json(out / "run.json", {"run_id": outcome.run_id, "tracking_uri": outcome.tracking_uri,
                                         "model_uri": model_uri, "epochs": outcome.state["epoch"],
                                         "steps": outcome.state["step"], "resumed_from": outcome.state["resumes"]})
    resumed = f", resumed from {outcome.state['resumes']}" if outcome.state["resumes"] else ""
    print(f"trained {name}: {outcome.state['epoch']} epochs, {outcome.state['step']} steps in "
          f"{time.perf_counter() - t0:.0f}s{resumed}; MLflow run {outcome.run_id}")


if __name__ == "__main__":
    _stage.run(main)
