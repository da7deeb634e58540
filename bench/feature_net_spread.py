"""How far the sample metrics move when only the feature network changes: the same samples of every trained
model, measured through feature networks trained with other seeds.

    uv run python bench/feature_net_spread.py [--seeds 0 1 2] [--n 2000] [--models vae dcgan ...]

Needs a finished main job in this checkout (datasets/prepared, models/<m>/model.pt). Each model samples its N
images once, exactly as the evaluate stage does (evaluate.seed; a conditional model the test labels); the real
row uses the validation images in place of samples. Then, for each seed, a feature network is trained exactly as
the featurize stage trains it (`train_feature_net`, evaluate.feature_epochs; seed 0 is the stage's own, so its row
repeats metrics/<m>.json) and FID, precision, recall (k = evaluate.pr_k, Kynkaanniemi et al. 2019), classes
covered and, for conditional models, the share of samples classified as their requested label are measured on
the first N test images. Prints one row per model and metric (the values per seed, and max - min) and appends
the rows to bench/results/feature_net_spread.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

METRICS = ("fid", "precision", "recall", "classes_covered", "label_agreement")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=2000, help="samples and test images per metric")
    ap.add_argument("--models", nargs="*", default=None, help="default: every sampling model of pipeline.models")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from components.config import load_config
    from components.data import load_spec, read_split
    from components.evaluation.features import embed, train_feature_net
    from components.evaluation.sample_metrics import class_coverage, fid, precision_recall
    from components.evaluation.sampling import generate
    from components.models import MODELS
    from components.models.io import load_exported

    torch.set_num_threads(args.threads)
    params = load_config(REPO / "params.yaml")
    cfg = params.evaluate
    data_dir = params.path(params.data.out_dir)
    spec = load_spec(data_dir)
    names = args.models or [m for m in params.pipeline.models if not MODELS[m].capabilities.translation]
    missing = [m for m in names if not params.path(f"models/{m}/model.pt").is_file()]
    if missing:
        sys.exit(f"bench/feature_net_spread.py: no trained model for {', '.join(missing)} (models/<m>/model.pt); "
                 "run the main job (`dvc repro`) first")

    test_x, test_y = read_split(data_dir, spec, "test", limit=args.n)
    train_labels = torch.from_numpy(read_split(data_dir, spec, "train")[1]).long()  # the data's class shares
    n = min(args.n, len(test_y))
    test_x, test_labels = test_x[:n], torch.from_numpy(test_y[:n]).long()
    val_x, val_y = read_split(data_dir, spec, "val", limit=n)
    images = {"real (val)": (torch.from_numpy(val_x[:n]).float() / 255, torch.from_numpy(val_y[:n]).long())}
    for name in names:
        t0 = time.perf_counter()
        _, model = load_exported(params.path(f"models/{name}/model.pt"))
        labels = test_labels if MODELS[name].capabilities.labels else None
        images[name] = (generate(model, n, cfg.seed, labels=labels), labels)
        print(f"[spread] {name}: {n} samples in {time.perf_counter() - t0:.0f} s", flush=True)

    results: dict[str, dict[str, list[float]]] = {m: {k: [] for k in METRICS} for m in images}
    for seed in args.seeds:
        t0 = time.perf_counter()
        net, scores = train_feature_net(data_dir, spec, epochs=cfg.feature_epochs, seed=seed, log=lambda line: None)
        f_real = embed(net, test_x)[0]
        print(f"[spread] feature network seed {seed}: test accuracy {scores['test_accuracy']:.4f}, trained in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        for m, (x, labels) in images.items():
            feats, pred = embed(net, x)
            prec, rec = precision_recall(f_real, feats, k=cfg.pr_k)
            row = results[m]
            row["fid"].append(fid(f_real, feats))
            row["precision"].append(prec)
            row["recall"].append(rec)
            row["classes_covered"].append(class_coverage(pred, train_labels, spec.num_classes)["classes_covered"])
            row["label_agreement"].append(float((pred == labels).float().mean()) if labels is not None else None)

    out = REPO / "bench/results/feature_net_spread.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"\n| model | metric | {' | '.join(f'seed {s}' for s in args.seeds)} | max - min |")
    print(f"|---|---|{'---|' * (len(args.seeds) + 1)}")
    with out.open("a") as fh:
        for m, row in results.items():
            for k, vals in row.items():
                if vals[0] is None:
                    continue
                fmt = "{:.0f}" if k == "classes_covered" else "{:.3f}"
                print(f"| {m} | {k} | {' | '.join(fmt.format(v) for v in vals)} | {fmt.format(max(vals) - min(vals))} |")
            fh.write(json.dumps({"time": stamp, "model": m, "n": n, "seeds": args.seeds, **row}) + "\n")


if __name__ == "__main__":
    main()
