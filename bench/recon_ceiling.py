"""How good can a latent model's samples get? Its reconstructions of real test images, measured as samples.

    uv run python bench/recon_ceiling.py [--models models/vqvae/model.pt models/vae/model.pt] [--n 2000]

A VQ-VAE prior's samples are the VQ-VAE's decoder applied to sampled code maps, and a VAE's are its decoder applied
to z ~ N(0, I). With a perfect prior they could at best look like the decoder's reconstructions of real images, so
the sample metrics of those reconstructions (against validation images, as the evaluate stage measures samples
against test images: same N, k and feature network) bound from above what a better prior or a longer run of it can
reach. Prints FID and improved precision/recall (Heusel et al. 2017; Kynkaanniemi et al. 2019) of the
reconstructions, beside the real-data floor (the test images themselves) and the share of reconstructions the
feature classifier puts in their image's class.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=[str(REPO / "models/vqvae/model.pt")])
    ap.add_argument("--n", type=int, default=2000, help="images on each side (the evaluate stage's N)")
    args = ap.parse_args()
    missing = [m for m in args.models if not Path(m).is_file()]
    if missing:
        raise SystemExit(f"--models: {', '.join(missing)} not found; train them first (dvc repro train@<model>)")
    import torch

    from components.config import load_config
    from components.data import load_spec, read_split, to_float
    from components.evaluation.features import embed, load_feature_net
    from components.evaluation.sample_metrics import fid, precision_recall
    from components.models.io import load_exported

    params = load_config(REPO / "params.yaml")
    data = params.path(params.data.out_dir)
    spec = load_spec(data)
    net, sha, _ = load_feature_net(params.path("features/classifier.pt"))
    val, _ = read_split(data, spec, "val", limit=args.n)
    test, test_labels = read_split(data, spec, "test", limit=args.n)
    f_val, _ = embed(net, val)
    rows = [("real test images (the floor)", test)]
    for path in args.models:
        name, model = load_exported(Path(path))
        with torch.no_grad():
            x, y = to_float(torch.from_numpy(test)), torch.from_numpy(test_labels).long()
            y = y if getattr(model, "conditional", False) else None  # a CVAE reconstructs given the true label
            recon = torch.cat([model.reconstruct(x[i:i + 500], None if y is None else y[i:i + 500])
                               for i in range(0, len(x), 500)])
        rows.append((f"{name} reconstructions", recon))
    print(f"feature network {sha[:8]}, N = {args.n}, k = {params.evaluate.pr_k}")
    print("| images | FID | precision | recall | classified as their image's class |")
    print("|---|---|---|---|---|")
    for label, images in rows:
        f, pred = embed(net, images)
        p, r = precision_recall(f_val, f, k=params.evaluate.pr_k)
        same = float((pred == torch.from_numpy(test_labels).long()).float().mean())
        print(f"| {label} | {fid(f_val, f):.1f} | {p:.3f} | {r:.3f} | {same:.3f} |", flush=True)


if __name__ == "__main__":
    main()
