"""Draw a bench/learn.py run's quality curve (from bench/results/learn.jsonl) as a PNG with labelled axes,
marking the default budget (1x) and its multiples, so a reader sees whether more budget would help.

    uv run python bench/learn_plot.py cgan _cgan_4x docs/images/learning-cgan.png --budget-epochs 6
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("tag")
    ap.add_argument("out")
    ap.add_argument("--budget-epochs", type=int, required=True, help="the default run's epochs (1x)")
    args = ap.parse_args()
    runs = [json.loads(line) for line in (REPO / "bench/results/learn.jsonl").open()]
    run = [r for r in runs if r["model"] == args.model and r["tag"] == args.tag][-1]
    from components.evaluation.curves import draw
    from pipelines.train import write_history

    per_epoch = run["history"][0]["images_seen"]
    marks = {f"{m}x": m * args.budget_epochs * per_epoch for m in (1, 2, 4)}
    with tempfile.TemporaryDirectory() as d:
        write_history(Path(d) / "h.csv", run["history"])
        png = draw(Path(d) / "h.csv", Path(args.out), f"{args.model}: quality over training "
                   f"({' '.join(run['set']) or 'defaults'}); 1x = {args.budget_epochs} epochs, the default", marks)
    print(f"wrote {png}; budgets (images): {marks}")


if __name__ == "__main__":
    main()
