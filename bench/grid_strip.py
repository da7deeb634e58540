"""Put a bench/learn.py run's sample grids (`--grids E ...`) side by side, each titled with its budget, as one PNG.

    uv run python bench/grid_strip.py wgan_gp _4x docs/images/learning-wgan_gp-samples.png --budget-epochs 10 --epochs 10 20 40

Reads bench/results/<model><tag>-e<E>.png and the run's images per epoch from bench/results/learn.jsonl.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("tag")
    ap.add_argument("out")
    ap.add_argument("--budget-epochs", type=int, required=True, help="the default run's epochs (1x)")
    ap.add_argument("--epochs", nargs="+", type=int, required=True, help="the grids' epochs, left to right")
    ap.add_argument("--width", type=int, default=1000, help="width of the PNG in pixels")
    args = ap.parse_args()
    from PIL import Image, ImageDraw

    runs = [json.loads(line) for line in (REPO / "bench/results/learn.jsonl").open()]
    run = [r for r in runs if r["model"] == args.model and r["tag"] == args.tag][-1]
    per_epoch = run["history"][0]["images_seen"]
    grids = [Image.open(REPO / f"bench/results/{args.model}{args.tag}-e{e}.png").convert("RGB") for e in args.epochs]
    gap, head = 20, 28
    w, h = grids[0].size
    strip = Image.new("RGB", (len(grids) * w + (len(grids) - 1) * gap, h + head), "white")
    draw = ImageDraw.Draw(strip)
    for i, (grid, e) in enumerate(zip(grids, args.epochs, strict=True)):
        x = i * (w + gap)
        strip.paste(grid, (x, head))
        budget = e / args.budget_epochs
        draw.text((x + 4, 8), f"{args.model}{' ' + ' '.join(run['set']) if run['set'] else ''} after {e} epochs "
                  f"({budget:g}x, {e * per_epoch / 1000:.0f}k images)", fill="black")
    scale = args.width / strip.width
    strip = strip.resize((args.width, round(strip.height * scale)), Image.LANCZOS)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    strip.convert("L").save(args.out, optimize=True)  # the grids are grey: a third of the bytes
    print(f"wrote {args.out} ({strip.width}x{strip.height})")


if __name__ == "__main__":
    main()
