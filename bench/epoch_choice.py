"""Which epoch would a train stage export if it chose by its own per-epoch validation quality, instead of the last?

    uv run python bench/epoch_choice.py [plots/train]

Reads the quality curves the train stages wrote (plots/train/<m>.csv: N = 500 validation images, fixed seed) and
prints, per family whose curve has sample metrics, the last epoch beside the epoch a rule would pick: the lowest FID
(the usual checkpoint rule, Heusel et al. 2017), and the highest min(precision, recall) (Kynkaenniemi et al. 2019;
both must be >= 0.5 by issue 21's targets). Nothing is retrained: the figures are the curve's own, at N = 500, so
they read higher than the evaluate stage's N = 2,000 on the test split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RULES = {
    "last": lambda rows: rows[-1],
    "lowest FID": lambda rows: min(rows, key=lambda r: r["q_fid"]),
    "best min(P, R)": lambda rows: max(rows, key=lambda r: min(r["q_precision"], r["q_recall"])),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("curves", nargs="?", default=str(REPO / "plots/train"))
    args = ap.parse_args()
    from components.evaluation.curves import read_history

    print("| model | rule | epoch | FID | precision | recall | conditional accuracy |")
    print("|---|---|---|---|---|---|---|")
    for path in sorted(Path(args.curves).glob("*.csv")):
        rows = [r for r in read_history(path) if {"q_fid", "q_precision", "q_recall"} <= r.keys()]
        if not rows:
            continue
        for rule, pick in RULES.items():
            r = pick(rows)
            cond = f"{r['q_cond_accuracy']:.2f}" if "q_cond_accuracy" in r else ""
            print(f"| {path.stem} | {rule} | {r['epoch']:.0f} of {rows[-1]['epoch']:.0f} | {r['q_fid']:.1f} | "
                  f"{r['q_precision']:.2f} | {r['q_recall']:.2f} | {cond} |")


if __name__ == "__main__":
    main()
