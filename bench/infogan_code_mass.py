"""Probe: how much a trained InfoGAN draws for each value of its categorical code, against the real images of the
class that value stands for (with `supervised_fraction` > 0, code value k is class k).

    uv run python bench/infogan_code_mass.py [models/infogan/model.pt] [--n 4000] [--seed 0]

Draws n samples from the exported model, n/K per code value (`InfoGAN.sample_code`: z and the continuous codes
from their priors, the EMA generator),
and reads per code value: the quantiles of an image's mass (the sum of its pixel values in [0, 1], i.e. white
pixels), the share of faint images (no pixel above 0.5) and of tiny ones (mass below the real images' 1st
percentile). The same quantiles for the test split's images of each class stand beside them. Saves a grid of 64
samples per code value to bench/results/infogan-code<k>.png, so the numbers can be looked at.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="models/infogan/model.pt", help="an exported InfoGAN (models/<m>/model.pt)")
    ap.add_argument("--n", type=int, default=4000, help="samples to draw")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.n < 1:
        ap.error(f"--n: {args.n}; must be >= 1")

    import torch
    from torchvision.utils import save_image

    from components.config import load_config
    from components.data import load_spec
    from components.data.shards import read_split
    from components.models.io import load_exported

    name, model = load_exported(REPO / args.model)
    if name != "infogan":
        sys.exit(f"{args.model}: a {name} model has no categorical code; pass an exported InfoGAN")
    g = torch.Generator().manual_seed(args.seed)
    cat = torch.arange(args.n) % model.k  # each code value n/K times
    x = model.sample_code(cat, g).cpu()  # (n, C, H, W) in [0, 1]; z and the continuous codes from their priors

    params = load_config(REPO / "params.yaml")
    data = params.path(params.data.out_dir)
    spec = load_spec(data)
    xr, yr = read_split(data, spec, "test")
    xr, yr = torch.from_numpy(xr).float() / 255, torch.from_numpy(yr).long()

    def mass(images):
        return images.flatten(1).sum(1)

    q = torch.tensor(QUANTILES)
    real_mass = mass(xr)
    tiny = float(torch.quantile(real_mass, 0.01))
    print(f"mass = sum of pixel values; quantiles {QUANTILES}; tiny = below the real 1st percentile ({tiny:.1f})")
    out = REPO / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    for k in range(model.k):
        fake = x[cat == k]
        m = mass(fake)
        faint = (fake.flatten(1).max(1).values < 0.5).float().mean()
        line = (f"code {k}: n {len(fake)}, mass {[round(float(v), 1) for v in torch.quantile(m, q)]}, "
                f"faint {float(faint):.3f}, tiny {float((m < tiny).float().mean()):.3f}")
        if k < spec.num_classes:
            real = real_mass[yr == k]
            line += f" | real {spec.classes[k]}: mass {[round(float(v), 1) for v in torch.quantile(real, q)]}"
        print(line)
        save_image(fake[:64], out / f"infogan-code{k}.png", nrow=8, pad_value=0.5)
    print(f"grids: {out}/infogan-code<k>.png")


if __name__ == "__main__":
    main()
