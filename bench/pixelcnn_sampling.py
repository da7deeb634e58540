"""Benchmark: PixelCNN sampling, the ways of computing each pixel's prediction side by side in one run.

    uv run python bench/pixelcnn_sampling.py [--model models/pixelcnn/model.pt] [--n 2000] [--batch 500]
                                             [--threads 2] [--passes rows window] [--repeats 1]

Loads an exported PixelCNN (the main job's, or any `models/<m>/model.pt` of the pixelcnn or cpixelcnn family;
without one, an untrained 5-layer gated PixelCNN at 32x32: the cost does not depend on the weights), samples n
images in batches as the evaluate stage does (2,000 in batches of 500) with the same seed in each way
(`PixelCNNBase.sample(passes=...)`: rows, window, full), alternating the ways over the repeats, and prints
seconds per way, the speed-up over the first way and whether the images are identical. Appends a JSON line to bench/results/pixelcnn_sampling.jsonl.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(REPO / "models/pixelcnn/model.pt"))
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--passes", nargs="+", default=["rows", "window"], choices=["rows", "window", "full"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from components.data.shards import DatasetSpec
    from components.models import build
    from components.models.io import load_exported

    torch.set_num_threads(args.threads)
    if Path(args.model).exists():
        name, model = load_exported(Path(args.model))
        source = args.model
    else:
        spec = DatasetSpec(name="dsprites", resolution=32, channels=1, classes=["square", "ellipse", "heart"],
                           binary=True, counts={"train": 1}, shards={})
        name, model, source = "pixelcnn", build("pixelcnn", {}, spec).eval(), "untrained (no exported model)"
    labels = torch.arange(args.n) % model.spec.num_classes if model.conditional else None
    seconds = {p: [] for p in args.passes}
    images = {}
    for _ in range(args.repeats):
        for passes in args.passes:
            t0 = time.perf_counter()
            g = torch.Generator().manual_seed(args.seed)
            images[passes] = torch.cat([model.sample(min(args.batch, args.n - s), None if labels is None else
                                                     labels[s : s + args.batch], generator=g, passes=passes)
                                        for s in range(0, args.n, args.batch)])
            seconds[passes].append(time.perf_counter() - t0)
            print(f"[{name}] {passes}: {seconds[passes][-1]:.1f} s for {args.n} images", flush=True)
    base = args.passes[0]
    row = {"model": name, "source": source, "n": args.n, "batch": args.batch, "threads": args.threads, "machine": platform.machine(),
           "seconds": {p: round(statistics.median(s), 2) for p, s in seconds.items()},
           "identical_to": {p: bool(torch.equal(images[p], images[base])) for p in args.passes[1:]}}
    row["speedup_of_" + base] = {p: round(row["seconds"][p] / row["seconds"][base], 2) for p in args.passes[1:]}
    print(json.dumps(row), flush=True)
    out = REPO / "bench/results/pixelcnn_sampling.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
