"""Is low precision a matter of the latent's tails? Sample metrics of a latent model at lower sampling temperatures.

    uv run python bench/truncation.py [--models sngan wgan_gp dcgan vae] [--taus 1 0.8 0.6 0.4] [--n 2000]

Drawing z ~ N(0, tau^2 I) with tau < 1 keeps samples near the latent's mode: BigGAN's truncation trick (Brock et
al. 2019, section 3.1) in its simplest form, and the trade Kynkaanniemi et al. 2019 (section 4) show between
their precision and recall. If a family's low precision came from a few off-manifold samples in the tails,
precision would rise as tau falls. Prints FID and improved precision/recall against the test images (the evaluate
stage's N, k and feature network) and the feature classifier's class counts, for each exported model in
models/<model>/model.pt and each tau. A diagnostic only: the train and evaluate stages always sample at tau = 1. `--binarize` adds each sample set
thresholded at 0.5 (binary data only): do grey edge pixels, which no real dSprites image has, cost the precision?
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
    ap.add_argument("--models", nargs="+", default=["sngan", "wgan_gp", "dcgan", "vae"],
                    help="unconditional families with a Gaussian latent, exported to models/<model>/model.pt")
    ap.add_argument("--taus", nargs="+", type=float, default=[1.0, 0.8, 0.6, 0.4])
    ap.add_argument("--n", type=int, default=2000, help="samples and test images (the evaluate stage's N)")
    ap.add_argument("--binarize", action="store_true", help="also score the samples thresholded at 0.5")
    args = ap.parse_args()
    paths = {m: REPO / "models" / m / "model.pt" for m in args.models}
    require_files("--models", list(paths.values()))
    if any(t <= 0 for t in args.taus):
        raise SystemExit(f"--taus: {args.taus} must all be > 0")
    import torch

    from components.models.io import load_exported

    check = SampleCheck.load()
    f_test, _ = check.features(check.split("test", args.n)[0])
    print(check.heading(args.n))
    if args.binarize and not check.spec.binary:
        raise SystemExit(f"--binarize: the dataset {check.spec.name} is not binary; allowed only on binary data")
    print("| model | tau | samples | FID | precision | recall | samples per class |")
    print("|---|---|---|---|---|---|---|")
    for name, path in paths.items():
        _, model = load_exported(path)
        if getattr(model, "conditional", False) or not hasattr(model, "latent"):
            raise SystemExit(f"--models: {name} has no unconditional Gaussian latent; allowed: vae, dcgan, wgan, "
                             "wgan_gp, sngan")
        for tau in args.taus:
            g = torch.Generator().manual_seed(check.params.evaluate.seed)  # the same z for every tau, scaled
            with torch.no_grad(), model.evaluating():  # as `sample` does: eval mode, the EMA generator
                # drawn in batches of 500 as components.evaluation.sampling.generate does, so that tau = 1 gives
                # the evaluate stage's samples; z: (b, latent_dim)
                x = torch.cat([model.decode_latent(model.latent(min(500, args.n - i), g) * tau).clamp(0, 1)
                               for i in range(0, args.n, 500)])
            variants = [("as drawn", x)] + ([("thresholded at 0.5", (x > 0.5).float())] if args.binarize else [])
            for label, images in variants:
                fid, p, r, pred = check.score(f_test, images)
                counts = " / ".join(str(c) for c in torch.bincount(pred, minlength=check.spec.num_classes).tolist())
                print(f"| {name} | {tau:g} | {label} | {fid:.1f} | {p:.3f} | {r:.3f} | {counts} |", flush=True)


if __name__ == "__main__":
    main()
