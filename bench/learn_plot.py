"""Draw a bench/learn.py run (from bench/results/learn.jsonl): its quality curve as a PNG with labelled axes,
marking the default budget (1x) and its multiples, so a reader sees whether more budget would help; and with
--samples, its sample grids (`learn.py --grids`) side by side, each titled with its budget and images seen.

    uv run python bench/learn_plot.py cgan _4x docs/images/learning-cgan.png --budget-epochs 10 \\
        [--samples docs/images/learning-cgan-samples.png --grid-epochs 10 20 40]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def strip(model: str, tag: str, run: dict, epochs: list[int], budget_epochs: int, out: Path, width: int) -> None:
    """The grids bench/results/<model><tag>-e<E>.png left to right, each under a title, as one grey PNG."""
    from PIL import Image, ImageDraw

    per_epoch = run["history"][0]["images_seen"]
    grids = [Image.open(REPO / f"bench/results/{model}{tag}-e{e}.png").convert("RGB") for e in epochs]
    gap, head = 20, 28
    w, h = grids[0].size
    img = Image.new("RGB", (len(grids) * w + (len(grids) - 1) * gap, h + head), "white")
    draw = ImageDraw.Draw(img)
    settings = " " + " ".join(run["set"]) if run["set"] else ""
    for i, (grid, e) in enumerate(zip(grids, epochs, strict=True)):
        img.paste(grid, (i * (w + gap), head))
        draw.text((i * (w + gap) + 4, 8), f"{model}{settings} after {e} epochs ({e / budget_epochs:g}x, "
                  f"{e * per_epoch / 1000:.0f}k images)", fill="black")
    img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.convert("L").save(out, optimize=True)  # the grids are grey: a third of the bytes
    print(f"wrote {out} ({img.width}x{img.height})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("tag")
    ap.add_argument("out")
    ap.add_argument("--budget-epochs", type=int, required=True, help="the default run's epochs (1x)")
    ap.add_argument("--samples", default=None, help="also write the run's sample grids side by side to this PNG")
    ap.add_argument("--grid-epochs", nargs="+", type=int, default=[], help="the grids' epochs, left to right")
    ap.add_argument("--width", type=int, default=1200, help="width of the samples PNG in pixels")
    args = ap.parse_args()
    if args.samples and not args.grid_epochs:
        ap.error("--samples needs --grid-epochs (the epochs of the run's --grids)")
    runs = [json.loads(line) for line in (REPO / "bench/results/learn.jsonl").open()]
    run = [r for r in runs if r["model"] == args.model and r["tag"] == args.tag][-1]
    from components.evaluation.curves import draw
    from pipelines.train import write_history

    per_epoch = run["history"][0]["images_seen"]
    marks = {f"{m}x": m * args.budget_epochs * per_epoch for m in (1, 2, 4)}
    with tempfile.TemporaryDirectory() as d:
        write_history(Path(d) / "h.csv", run["history"])
        png = draw(Path(d) / "h.csv", Path(args.out), f"{args.model}: quality over training "
                   f"({' '.join(run['set']) or 'defaults'}); 1x = {args.budget_epochs} epochs, the default", marks)
    print(f"wrote {png}; budgets (images): {marks}")
    if args.samples:
        strip(args.model, args.tag, run, args.grid_epochs, args.budget_epochs, Path(args.samples), args.width)


if __name__ == "__main__":
    main()
