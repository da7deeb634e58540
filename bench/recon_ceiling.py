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
sys.path.insert(0, str(REPO / "bench"))

from _sample_check import SampleCheck, require_files  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=[str(REPO / "models/vqvae/model.pt")])
    ap.add_argument("--n", type=int, default=2000, help="images on each side (the evaluate stage's N)")
    args = ap.parse_args()
    require_files("--models", args.models)
    import torch

    from components.data import to_float
    from components.models.io import load_exported

    check = SampleCheck.load()
    val, _ = check.split("val", args.n)
    test, test_labels = check.split("test", args.n)
    f_val, _ = check.features(val)
    rows = [("real test images (the floor)", test)]
    for path in args.models:
        name, model = load_exported(Path(path))
        with torch.no_grad():
            x, y = to_float(torch.from_numpy(test)), torch.from_numpy(test_labels).long()
            y = y if getattr(model, "conditional", False) else None  # a CVAE reconstructs given the true label
            recon = torch.cat([model.reconstruct(x[i:i + 500], None if y is None else y[i:i + 500])
                               for i in range(0, len(x), 500)])
        rows.append((f"{name} reconstructions", recon))
    print(check.heading(args.n))
    print("| images | FID | precision | recall | classified as their image's class |")
    print("|---|---|---|---|---|")
    for label, images in rows:
        fid, p, r, pred = check.score(f_val, images)
        same = float((pred == torch.from_numpy(test_labels).long()).float().mean())
        print(f"| {label} | {fid:.1f} | {p:.3f} | {r:.3f} | {same:.3f} |", flush=True)


if __name__ == "__main__":
    main()
