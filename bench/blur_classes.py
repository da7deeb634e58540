"""How the feature classifier labels real test images blurred as a smooth generator draws them: the check
behind "classes covered 2 of 3" (the missing class is the square in every unconditional family).

    uv run python bench/blur_classes.py [project root, default .] [--sigmas 0 0.5 0.8 1 1.5]

Needs the prepared data and the feature classifier (`dvc repro featurize`). Prints, per Gaussian blur sigma
(pixels at 32x32), the share of test images per predicted class and, per true class, where its images go.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=".", type=Path)
    ap.add_argument("--sigmas", nargs="*", type=float, default=[0, 0.5, 0.8, 1.0, 1.5])
    args = ap.parse_args()

    import torch
    import torchvision.transforms.functional as TF

    from components.config import load_config
    from components.data.shards import load_spec, read_split
    from components.evaluation.features import embed, load_feature_net

    params = load_config(args.root / "params.yaml")
    data_dir = args.root / params.data.out_dir
    spec = load_spec(data_dir)
    images, labels = read_split(data_dir, spec, "test")
    net, _, _ = load_feature_net(args.root / "features" / "classifier.pt")
    x, y = torch.from_numpy(images).float() / 255, torch.from_numpy(labels)
    k = spec.num_classes
    print(f"{len(x)} test images of {spec.name}; classes {', '.join(spec.classes)}")
    for sigma in args.sigmas:
        xb = x if sigma == 0 else TF.gaussian_blur(x, kernel_size=7, sigma=sigma)
        _, pred = embed(net, xb)
        share = torch.bincount(pred, minlength=k).float() / len(pred)
        rows = []
        for c in range(k):
            p = torch.bincount(pred[y == c], minlength=k).float()
            rows.append(f"{spec.classes[c]} -> " + " / ".join(f"{v:.2f}" for v in p / p.sum()))
        print(f"sigma {sigma:g} px: predicted shares {' / '.join(f'{v:.3f}' for v in share)}; " + "; ".join(rows))


if __name__ == "__main__":
    main()
