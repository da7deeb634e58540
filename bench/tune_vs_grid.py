"""Benchmark: ASHA + Optuna against an exhaustive grid on one small VAE space, in one run.

Both search the same space (kl_weight x latent_dim, every key a choice) with the same per-trial budget
(max_epochs) on the same prepared data; the grid runs every point to max_epochs with no early stopping.
Reported: compute spent in trial-epochs and the best validation -ELBO each reached, and their ratio.

    uv run python bench/tune_vs_grid.py [--epochs 3] [--samples 4] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPACE = {"kl_weight": {"type": "choice", "values": [0.5, 1.0, 4.0, 16.0]},
         "latent_dim": {"type": "choice", "values": [4, 16]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3, help="max epochs per trial (ASHA max_t and the grid's budget)")
    ap.add_argument("--samples", type=int, default=4, help="ASHA + Optuna trials (the grid has 8 points)")
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=1, help="Ray Train workers per trial")
    ap.add_argument("--concurrency", type=int, default=2, help="max concurrent trials")
    ap.add_argument("--out", default=str(REPO / "bench/results"))
    args = ap.parse_args()

    from components.config import load_config
    from components.data.sources import prepare
    from components.tuning.sweep import tune_model

    root = Path(tempfile.mkdtemp(prefix="genzoo-bench-tune-"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(n_train=args.n_train, n_val=1000, n_test=1000)
    params["models"]["vae"].update(epochs=args.epochs)
    params["tune"] = {"max_concurrent_trials": args.concurrency, "workers_per_trial": args.workers, "grace_period": 1,
                      "reduction_factor": 2, "val_images": 1000,
                      "vae": {"num_samples": args.samples, "max_epochs": args.epochs, "space": SPACE}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = load_config(root / "params.yaml", models=["vae"])
    prepare(cfg)
    rows = {}
    for label, exhaustive in (("asha_optuna", False), ("grid", True)):
        t0 = time.perf_counter()
        res = tune_model(cfg, "vae", exhaustive=exhaustive)
        rows[label] = {"trials": len(res["trials"]), "trial_epochs": res["trial_epochs"],
                       "best_val_neg_elbo": res["best_metric"], "best_config": res["best_config"],
                       "stopped_early": sum(t["stopped_early"] for t in res["trials"]),
                       "wall_time_s": round(time.perf_counter() - t0, 1)}
        print(label, json.dumps(rows[label]), flush=True)
    a, g = rows["asha_optuna"], rows["grid"]
    summary = {"space": SPACE, "max_epochs": args.epochs, "n_train": args.n_train, "workers_per_trial": args.workers,
               "max_concurrent_trials": args.concurrency, "results": rows,
               "trial_epochs_ratio": a["trial_epochs"] / g["trial_epochs"],
               "best_objective_gap_nats": a["best_val_neg_elbo"] - g["best_val_neg_elbo"]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tune_vs_grid.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n| search | trials | trial-epochs | best val -ELBO (nats) | wall s |\n|---|---|---|---|---|")
    for label, r in rows.items():
        print(f"| {label} | {r['trials']} | {r['trial_epochs']} | {r['best_val_neg_elbo']:.2f} | {r['wall_time_s']} |")
    print(f"\nASHA+Optuna spent {summary['trial_epochs_ratio']:.2f}x the grid's trial-epochs; best objective "
          f"{summary['best_objective_gap_nats']:+.2f} nats against the grid's")


if __name__ == "__main__":
    main()
