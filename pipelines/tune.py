"""Stage `tune@<model>`: Ray Tune sweep (ASHA + Optuna) over tune.<model>.space; writes tuned/<model>.json."""

from __future__ import annotations

import json
import os

from pipelines import _stage


def main() -> None:
    args = _stage.parser(__doc__, model=True).parse_args()
    params = _stage.load(args)
    name = args.model
    from components.config import tune_for, tune_settings

    spec, settings = tune_for(params, name), tune_settings(params)
    if _stage.dry_run(args, {"model": name, "tune": spec.model_dump(), "settings": settings.model_dump()}):
        return
    from components.tuning import tune_model

    result = tune_model(params, name)
    _stage.add_work(result.pop("work_s", 0.0))
    out = params.path(f"tuned/{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    os.replace(tmp, out)
    if result["tuned"]:
        stopped = sum(t["stopped_early"] for t in result["trials"])
        print(f"tuned {name}: best {result['metric']} {result['best_metric']:.4g} with {result['best_config']}; "
              f"{len(result['trials'])} trials ({stopped} stopped early), {result['trial_epochs']} trial-epochs")
    else:
        print(f"tune {name}: skipped ({result['reason']})")


if __name__ == "__main__":
    _stage.run(main)
