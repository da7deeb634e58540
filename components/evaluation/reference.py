"""The real-data reference row: the validation split's real images in place of a model's samples, through
the same sample metrics, feature network and protocol as every model (FID 0 and precision/recall 1 are out
of reach even for real data at a finite N; this row says how close "close" is). One row per N in use, so a
family evaluated at a smaller N (PixelCNN's sampling budget) has its own floor."""

from __future__ import annotations

from pathlib import Path

import torch

from components.data import load_spec, read_split


def reference_metrics(params, feature_dir: Path, sizes: list[int]) -> dict:
    """{metrics of real val vs real test at the largest N, "protocol", "by_n": {N: metrics}} for every N in
    `sizes` (each capped at the test split); the training split stands in for val when val is smaller than N."""
    from components.evaluation.features import embed, load_feature_net
    from components.evaluation.run import versions
    from components.evaluation.sample_metrics import all_metrics

    cfg = params.evaluate
    data_dir = params.path(params.data.out_dir)
    spec = load_spec(data_dir)
    net, net_sha, _ = load_feature_net(feature_dir / "classifier.pt")
    cached = torch.load(feature_dir / "features.pt", weights_only=True)
    f_test = cached["test"]["features"]
    need = min(max(sizes), len(f_test))
    source = "val" if spec.counts.get("val", 0) >= need else "train"  # a split with N images, so N matches the models'
    val_images, _ = read_split(data_dir, spec, source, limit=need)
    f_val, pred_val = embed(net, val_images[:need])
    by_n = {}
    for n in sorted({min(s, len(f_test), len(f_val)) for s in sizes}, reverse=True):
        m = all_metrics(f_test[:n], f_val[:n], pred_val[:n], cached["train"]["labels"], cached["train"]["features"],
                        spec.num_classes, seed=cfg.seed, k=cfg.pr_k)
        m.pop("_nearest_index")
        m["protocol"] = {"dataset": spec.name, "dataset_manifest_sha256": spec.manifest_sha256, "split": "test",
                         "seed": cfg.seed, "feature_net_sha256": net_sha, "n_real": n, "n_fake": n,
                         "precision_recall_k": cfg.pr_k, "kid_subsets": 50,
                         "reference": f"the first N {source} images in place of samples", "reference_split": source, "versions": versions()}
        by_n[n] = m
    top = max(by_n)
    return {"model": "real data", **by_n[top], "by_n": {str(n): {k: v for k, v in m.items() if k != "protocol"}
                                                         for n, m in by_n.items()}}
