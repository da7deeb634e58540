"""Do channels-last, torch.compile or bf16 make CPU training steps faster? Each against the plain eager fp32 loop.

    uv run python bench/cpu_speed.py [--models dcgan sngan] [--images 4096] [--epochs 3] [--threads 1]

GenZoo's training loop in one process (no Ray), on the same prepared dSprites images, batch size and seed, one
family at a time, once per variant: the baseline (fp32, eager, NCHW: what the default CPU run uses), channels-last
(NHWC), `torch.compile` of each sub-network (Inductor's C++ backend: needs a C++ compiler), both, and bf16 autocast;
the baseline runs again last, so the two baseline figures show the machine's drift over the run. Steady-state
images/s come from the epochs after the first; the first epoch's seconds show compilation. --threads 1 is what a
main-job worker gets on a 2-core machine. Prints a markdown table of ratios to the baseline and writes
bench/results/cpu_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from harness import _project, device_variants  # noqa: E402

BASELINE = ("fp32", False, False)
VARIANTS = [("fp32", False, True), ("fp32", True, False), ("fp32", True, True), ("bf16", False, False)]
LABELS = {"fp32_eager": "channels-last", "fp32_compiled_nchw": "compiled", "fp32_compiled": "compiled + channels-last",
          "bf16_eager_nchw": "bf16 autocast"}


def main() -> None:
    from components.models import MODELS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=list(MODELS),
                    help="default: the default run's families trained on the data")
    ap.add_argument("--images", type=int, default=4096, help="images per epoch")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per variant; the first is warm-up (compilation)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a main-job worker on 2 cores: 1)")
    ap.add_argument("--out", default=str(REPO / "bench/results"))
    args = ap.parse_args()
    if args.epochs < 2:
        ap.error("--epochs: at least 2 (the first epoch is warm-up)")
    models = args.models or [m for m, f in MODELS.items() if f.default_run and not f.needs]

    import torch

    from components.config import load_config
    from components.data import load_spec
    from components.data.sources import prepare

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="genzoo-cpu-speed-"))
    try:
        params = load_config(_project(tmp, args.images), models=models)
        print(f"[cpu_speed] preparing {args.images} dSprites images in {tmp}", flush=True)
        prepare(params)
        data_dir = params.path(params.data.out_dir)
        spec = load_spec(data_dir)
        result = {"date": time.strftime("%Y-%m-%d"), "command": " ".join(["python", "bench/cpu_speed.py", *sys.argv[1:]]),
                  "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
                             f"{torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}",
                  "images": args.images, "epochs": args.epochs, "threads": args.threads, "models": {}}
        for name in models:
            cfg = params.model_config_for(name).model_dump()
            print(f"[cpu_speed] {name}: baseline, channels-last, compiled, both, bf16, baseline again", flush=True)
            rows = device_variants(name, cfg, spec, data_dir, args.images, args.epochs, "cpu", [BASELINE, *VARIANTS])
            again = device_variants(name, cfg, spec, data_dir, args.images, args.epochs, "cpu", [BASELINE])
            rows["fp32_eager_nchw_again"] = again["fp32_eager_nchw"]
            result["models"][name] = rows
            print(row(name, rows), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cpu_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n" + table(result) + f"\nWritten: {out / 'cpu_speed.json'}", flush=True)


def row(name: str, rows: dict) -> str:
    """One family: baseline images/s (first / again), then each variant's ratio to their mean and its first epoch."""
    base = (rows["fp32_eager_nchw"]["images_per_s"] + rows["fp32_eager_nchw_again"]["images_per_s"]) / 2
    cells = [f"{rows[k]['images_per_s'] / base:.2f} ({rows[k]['first_epoch_s']:.0f} s)" for k in LABELS]
    return (f"| {name} | {rows['fp32_eager_nchw']['images_per_s']:.0f} / {rows['fp32_eager_nchw_again']['images_per_s']:.0f}"
            f" ({rows['fp32_eager_nchw']['first_epoch_s']:.0f} s) | " + " | ".join(cells) + " |")


def table(result: dict) -> str:
    head = ("| model | baseline img/s, first / again (first epoch) | "
            + " | ".join(f"{v} (first epoch)" for v in LABELS.values()) + " |")
    lines = [f"{result['machine']}; {result['images']} images an epoch, {result['epochs']} epochs, "
             f"{result['threads']} thread(s); ratios to the mean baseline", "", head,
             "|" + "---|" * (2 + len(LABELS))]
    lines += [row(name, rows) for name, rows in result["models"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
